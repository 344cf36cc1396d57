//! Server ids and encoded connection ids: fixed-size values, no allocation.

use std::fmt;
use std::str::FromStr;

use crate::{CidConfig, MAX_CID_LEN, MAX_SERVER_ID_LEN};

/// A server's id: 1 to 15 bytes, written as hex (`"0a01"`). Must have its config's
/// `server_id_len` to be encoded; [`encode`] checks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId {
    len: u8,
    bytes: [u8; MAX_SERVER_ID_LEN],
}

/// Why bytes or text are not a server id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ServerIdError {
    #[error("server id is empty")]
    Empty,
    #[error("server id is {0} bytes, more than the 15 allowed")]
    TooLong(usize),
    #[error("server id hex has an odd number of digits ({0})")]
    OddDigits(usize),
    #[error("server id hex has a non-hex character at position {0}")]
    NotHex(usize),
}

impl ServerId {
    pub fn new(bytes: &[u8]) -> Result<Self, ServerIdError> {
        if bytes.is_empty() {
            return Err(ServerIdError::Empty);
        }
        if bytes.len() > MAX_SERVER_ID_LEN {
            return Err(ServerIdError::TooLong(bytes.len()));
        }
        let mut id = Self {
            len: bytes.len() as u8,
            bytes: [0; MAX_SERVER_ID_LEN],
        };
        id.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(id)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false (a server id has at least one byte); here because `len` is.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl FromStr for ServerId {
    type Err = ServerIdError;

    /// Hex digits, either case, an even number of them, no prefix or separators.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.as_bytes();
        if s.is_empty() {
            return Err(ServerIdError::Empty);
        }
        if !s.len().is_multiple_of(2) {
            return Err(ServerIdError::OddDigits(s.len()));
        }
        if s.len() / 2 > MAX_SERVER_ID_LEN {
            return Err(ServerIdError::TooLong(s.len() / 2));
        }
        let mut buf = [0u8; MAX_SERVER_ID_LEN];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0]).ok_or(ServerIdError::NotHex(2 * i))?;
            let lo = hex_val(pair[1]).ok_or(ServerIdError::NotHex(2 * i + 1))?;
            buf[i] = hi << 4 | lo;
        }
        Self::new(&buf[..s.len() / 2])
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerId({self})")
    }
}

/// An encoded connection id (8 to 20 bytes, held inline).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cid {
    len: u8,
    bytes: [u8; MAX_CID_LEN],
}

impl Cid {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::ops::Deref for Cid {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cid(")?;
        self.as_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))?;
        f.write_str(")")
    }
}

/// Why [`encode`] refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("server id is {got} bytes, the config wants {want}")]
    ServerIdLen { got: usize, want: usize },
    #[error("nonce is {got} bytes, the config wants {want}")]
    NonceLen { got: usize, want: usize },
}

/// The CID `first octet ‖ server id ‖ nonce` for `cfg`. The nonce must be `cfg.nonce_len()`
/// random bytes (the caller's RNG: this crate does no I/O).
pub fn encode(cfg: &CidConfig, server_id: &ServerId, nonce: &[u8]) -> Result<Cid, EncodeError> {
    let (sid, nlen) = (cfg.server_id_len(), cfg.nonce_len());
    if server_id.len() != sid {
        return Err(EncodeError::ServerIdLen {
            got: server_id.len(),
            want: sid,
        });
    }
    if nonce.len() != nlen {
        return Err(EncodeError::NonceLen {
            got: nonce.len(),
            want: nlen,
        });
    }
    let mut cid = Cid {
        len: cfg.cid_len() as u8,
        bytes: [0; MAX_CID_LEN],
    };
    cid.bytes[0] = cfg.first_octet();
    cid.bytes[1..1 + sid].copy_from_slice(server_id.as_bytes());
    cid.bytes[1 + sid..1 + sid + nlen].copy_from_slice(nonce);
    Ok(cid)
}
