//! QUIC connection IDs that carry a server id, in the manner of the IETF QUIC-LB draft's
//! plaintext algorithm, so that a UDP load balancer can route every packet of a connection to
//! the server that owns it, even after the client's address changed (connection migration).
//!
//! # What this crate owns
//! - **The CID layout** ([`CidConfig`], validated): one first octet, then the server id, then a
//!   random nonce, 8 to 20 bytes in all. The first octet holds the config id in its top 3 bits
//!   (`0b111` is reserved: "unroutable") and the CID's length minus one in its low 5 bits (the
//!   draft's length self-encoding; a CID is at most 20 bytes, so the value fits). The length
//!   minus one is also the number of bytes after the first octet.
//! - **Encoding** ([`encode`] → [`Cid`], no allocation) and **server ids** ([`ServerId`], 1 to 15
//!   bytes, hex text).
//! - **The load balancer's decoder** ([`route_key`]): the destination CID of a datagram's first
//!   QUIC packet (RFC 9000 §17: long header with its explicit DCID length, short header with the
//!   configured length) checked against the config, and its server id bytes. It never panics and
//!   never allocates; whatever it cannot read is `None`, and the load balancer falls back to its
//!   flow table (a client's first Initial carries a DCID the client chose at random).
//! - Behind the cargo feature `quinn`: [`QuicLbCidGenerator`], quinn's `ConnectionIdGenerator`
//!   issuing such CIDs with fresh random nonces.
//!
//! # What it does not own
//! No I/O, sockets or clocks: the load balancer's flow table, backend choice and proxying live in
//! `dataplane`, the QUIC servers in their crates. Server ids are assigned by whoever configures
//! both sides (the routes file names each backend's id; the server is given the same). The
//! draft's encrypted algorithms (stream and block cipher) are not implemented: the server id is
//! in the clear, so an on-path observer can tell which server a connection is on, as with the
//! draft's plaintext algorithm. Nonces are random, so CIDs of one connection stay unlinkable
//! beyond the server id.

mod cid;
mod decode;
#[cfg(feature = "quinn")]
mod quinn_gen;

pub use cid::{Cid, EncodeError, ServerId, ServerIdError, encode};
pub use decode::{dcid, route_key, server_id_of};
#[cfg(feature = "quinn")]
pub use quinn_gen::QuicLbCidGenerator;

/// Longest connection id QUIC version 1 allows (RFC 9000 §17.2).
pub const MAX_CID_LEN: usize = 20;
/// Longest server id (the draft allows 1 to 15 bytes).
pub const MAX_SERVER_ID_LEN: usize = 15;
/// Shortest nonce: fewer random bytes would let an observer link a connection's CIDs.
pub const MIN_NONCE_LEN: usize = 4;
/// Shortest CID: the length RFC 9000 §7.2 demands of a client's first random CID, so that a
/// server's CIDs are no easier to guess than the client's.
pub const MIN_CID_LEN: usize = 8;
/// The config id the draft reserves for CIDs that carry no routing information.
pub const UNROUTABLE_CONFIG_ID: u8 = 0b111;

/// How the CIDs of one set of servers are laid out. Shared by the servers (which encode) and the
/// load balancer (which decodes); built only through [`CidConfig::new`], so always valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CidConfig {
    config_id: u8,
    server_id_len: u8,
    nonce_len: u8,
}

/// Why a [`CidConfig`] is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("config id {0} is out of range 0..=6 (7 marks unroutable connection ids)")]
    ConfigId(u8),
    #[error("server id length {0} is out of range 1..=15")]
    ServerIdLen(u8),
    #[error("nonce length {0} is below the minimum of 4 bytes")]
    NonceTooShort(u8),
    #[error(
        "connection id length 1 + {server_id_len} + {nonce_len} exceeds QUIC's maximum of 20 bytes"
    )]
    TooLong { server_id_len: u8, nonce_len: u8 },
    #[error(
        "connection id length 1 + {server_id_len} + {nonce_len} is below the minimum of 8 bytes"
    )]
    TooShort { server_id_len: u8, nonce_len: u8 },
}

impl CidConfig {
    /// A config with config id `config_id` (0..=6), server ids of `server_id_len` bytes (1..=15)
    /// and nonces of `nonce_len` bytes (at least 4); the CID is `1 + server_id_len + nonce_len`
    /// bytes, 8 to 20.
    pub fn new(config_id: u8, server_id_len: u8, nonce_len: u8) -> Result<Self, ConfigError> {
        if config_id >= UNROUTABLE_CONFIG_ID {
            return Err(ConfigError::ConfigId(config_id));
        }
        if server_id_len == 0 || usize::from(server_id_len) > MAX_SERVER_ID_LEN {
            return Err(ConfigError::ServerIdLen(server_id_len));
        }
        if usize::from(nonce_len) < MIN_NONCE_LEN {
            return Err(ConfigError::NonceTooShort(nonce_len));
        }
        let len = 1 + usize::from(server_id_len) + usize::from(nonce_len);
        if len > MAX_CID_LEN {
            return Err(ConfigError::TooLong {
                server_id_len,
                nonce_len,
            });
        }
        if len < MIN_CID_LEN {
            return Err(ConfigError::TooShort {
                server_id_len,
                nonce_len,
            });
        }
        Ok(Self {
            config_id,
            server_id_len,
            nonce_len,
        })
    }

    pub fn config_id(&self) -> u8 {
        self.config_id
    }

    pub fn server_id_len(&self) -> usize {
        usize::from(self.server_id_len)
    }

    pub fn nonce_len(&self) -> usize {
        usize::from(self.nonce_len)
    }

    /// Total CID length: first octet, server id, nonce (8..=20).
    pub fn cid_len(&self) -> usize {
        1 + self.server_id_len() + self.nonce_len()
    }

    /// The first octet of every CID of this config: config id, then the length minus one.
    pub fn first_octet(&self) -> u8 {
        // cid_len ≤ 20, so cid_len − 1 fits the 5 low bits.
        (self.config_id << 5) | (self.cid_len() as u8 - 1)
    }
}

#[cfg(test)]
mod tests;
