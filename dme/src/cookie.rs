//! Session cookies and platform client tokens: JWTs signed with HMAC (session cookies HS512 as
//! upstream, see [`Purpose`]), and the keys of the compact edge-events cookies
//! ([`crate::edge_cookie`]). JWTs keep the upstream claims so a decoded token
//! looks familiar. Keys carry an id (`kid`, in the JWT header and, as
//! upstream, inside the `key` claim) so keys can be rotated: the first key signs, every key in the
//! ring verifies. Verification is on every request's path: it decodes into stack buffers and
//! hands borrowed claims to a closure, allocating nothing.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;

use crate::hmac_mid::HmacKey;
use serde::{Deserialize, Serialize};

/// Why a cookie was rejected. Messages are shown to clients (gRPC `Unauthenticated`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    #[error("missing session cookie")]
    Missing,
    #[error("malformed cookie: {0}")]
    Malformed(&'static str),
    #[error("cookie signed with unsupported algorithm")]
    Algorithm,
    #[error("cookie signed with unknown key id")]
    UnknownKey,
    #[error("invalid cookie signature")]
    Signature,
    #[error("cookie expired")]
    Expired,
}

/// Why a key ring could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cookie key ring is empty")]
    Empty,
    #[error("cookie key {0:?} is shorter than 32 bytes")]
    TooShort(String),
    #[error("cookie key file {path}: line {line}: {reason}")]
    File {
        path: String,
        line: usize,
        reason: String,
    },
}

/// What a token is for. Each purpose signs with its own key, derived from the ring's secret, so
/// a token issued for one purpose never verifies as another (upstream signed all of them with
/// one key and told them apart only by the shape of their claims).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The session cookie: HS512 with the secret itself, exactly as upstream, so DMEs that share
    /// a region's secret accept each other's cookies.
    Session = 0,
    /// The edge-events cookie in every FindCloudlet reply: HMAC-SHA256 with a derived key over
    /// a compact binary token ([`crate::edge_cookie`]), not a JWT. It is only ever read back by a
    /// DME, and one is signed per found instance, so its cost is on the hot path; SHA-256 is
    /// the cheaper hash on CPUs with SHA extensions.
    EdgeEvents = 1,
    /// The platform client token (GetAppOfficialFqdn → PlatformFindCloudlet): HS512, derived key.
    ClientToken = 2,
}

const PURPOSES: [Purpose; 3] = [Purpose::Session, Purpose::EdgeEvents, Purpose::ClientToken];

impl Purpose {
    fn alg(self) -> &'static str {
        match self {
            Self::EdgeEvents => "HS256",
            Self::Session | Self::ClientToken => "HS512",
        }
    }

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Self::EdgeEvents => hmac::HMAC_SHA256,
            Self::Session | Self::ClientToken => hmac::HMAC_SHA512,
        }
    }

    /// The key bytes for this purpose from a ring secret (the secret itself for sessions, as
    /// upstream; derived for the others, so a token of one kind never verifies as another).
    fn key_bytes(self, secret: &[u8]) -> Vec<u8> {
        let label: &[u8] = match self {
            Self::Session => return secret.to_vec(),
            Self::EdgeEvents => b"edgeplane dme edge-events cookie v1",
            Self::ClientToken => b"edgeplane dme platform client token v1",
        };
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA512, secret), label)
            .as_ref()
            .to_vec()
    }
}

/// One key of the ring: its id, a key per purpose, and the base64 JWT header per purpose (the
/// same bytes for every token, so signing does not re-encode it and verification recognises it
/// without decoding).
struct RingKey {
    kid: String,
    keys: [hmac::Key; 3],
    headers: [String; 3],
    /// The edge-events key as saved HMAC-SHA256 states ([`crate::edge_cookie`]).
    edge: HmacKey,
    /// First bytes of SHA-256 of the kid: names the key inside edge-events cookies.
    fp: [u8; 4],
}

impl RingKey {
    fn new(kid: String, secret: &[u8]) -> Self {
        let bytes = PURPOSES.map(|p| p.key_bytes(secret));
        let keys = PURPOSES.map(|p| hmac::Key::new(p.algorithm(), &bytes[p as usize]));
        let edge = HmacKey::new(&bytes[Purpose::EdgeEvents as usize]);
        let headers = PURPOSES.map(|p| {
            let header = Header {
                alg: p.alg().into(),
                typ: Some("JWT".into()),
                kid: Some(kid.as_str().into()),
            };
            // Serialising a struct of strings cannot fail.
            B64.encode(serde_json::to_vec(&header).unwrap_or_default())
        });
        let digest = ring::digest::digest(&ring::digest::SHA256, kid.as_bytes());
        let mut fp = [0u8; 4];
        fp.copy_from_slice(&digest.as_ref()[..4]);
        Self {
            kid,
            keys,
            headers,
            edge,
            fp,
        }
    }
}

/// Keys by id; the first one signs, every one verifies.
pub struct KeyRing {
    keys: Vec<RingKey>,
    /// Unique per ring built in this process: what is derived from a ring's keys and cached
    /// elsewhere (edge-cookie prefixes) records it, so it is never used with another ring.
    id: u64,
}

/// Source of [`KeyRing::id`].
static NEXT_RING_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl KeyRing {
    /// Builds a ring from `(kid, secret)` pairs; the first signs.
    pub fn new(keys: Vec<(String, Vec<u8>)>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        let keys = keys
            .into_iter()
            .map(|(kid, secret)| {
                if secret.len() < 32 {
                    return Err(KeyError::TooShort(kid));
                }
                Ok(RingKey::new(kid, &secret))
            })
            .collect::<Result<_, _>>()?;
        let id = NEXT_RING_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Self { keys, id })
    }

    /// This ring's process-unique id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// A ring with one random key: cookies then live as long as this process.
    pub fn random() -> Self {
        use rand::RngCore;
        let mut secret = vec![0u8; 64];
        rand::rng().fill_bytes(&mut secret);
        // A 64-byte secret cannot be too short.
        Self::new(vec![("1".into(), secret)]).unwrap_or_else(|_| unreachable!())
    }

    /// Parses a key file: one key per line, `KID SECRET` with SECRET in base64 (standard or
    /// URL-safe); `#` starts a comment. The first key signs.
    pub fn parse_file(path: &str, text: &str) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |reason: &str| KeyError::File {
                path: path.into(),
                line: i + 1,
                reason: reason.into(),
            };
            let (kid, secret) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| err("expected `KID SECRET`"))?;
            let secret = secret.trim();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(secret)
                .or_else(|_| B64.decode(secret.trim_end_matches('=')))
                .map_err(|_| err("secret is not base64"))?;
            keys.push((kid.to_string(), bytes));
        }
        Self::new(keys)
    }

    /// Signs `claims` as a session cookie.
    pub fn sign<C: Serialize>(&self, claims: &C) -> String {
        self.sign_for(Purpose::Session, claims)
    }

    /// Signs `claims` as a JWT for `purpose` with the first key.
    pub fn sign_for<C: Serialize>(&self, purpose: Purpose, claims: &C) -> String {
        let signer = &self.keys[0];
        let header = &signer.headers[purpose as usize];
        // Claims are a few hundred bytes: serialise them on the stack, not in a Vec.
        let mut stack = [0u8; 1024];
        let mut cursor = std::io::Cursor::new(&mut stack[..]);
        let heap;
        let payload: &[u8] = if serde_json::to_writer(&mut cursor, claims).is_ok() {
            let n = usize::try_from(cursor.position()).unwrap_or(0);
            &stack[..n]
        } else {
            // Too big for the stack buffer (or, impossibly for plain structs, unserialisable).
            heap = serde_json::to_vec(claims).unwrap_or_default();
            &heap
        };
        let tag_len = purpose.algorithm().digest_algorithm().output_len();
        let mut token = String::with_capacity(
            header.len() + 2 + payload.len().div_ceil(3) * 4 + tag_len.div_ceil(3) * 4,
        );
        token.push_str(header);
        token.push('.');
        B64.encode_string(payload, &mut token);
        let tag = hmac::sign(&signer.keys[purpose as usize], token.as_bytes());
        token.push('.');
        B64.encode_string(tag.as_ref(), &mut token);
        token
    }

    /// The fingerprint of the signing key, carried in edge-events cookies.
    pub fn edge_fingerprint(&self) -> [u8; 4] {
        self.keys[0].fp
    }

    /// The truncated edge-events MAC of `msg` (at most one SHA-256 block after padding) under
    /// the key with fingerprint `fp`, or the signing key; `None` if no key has it.
    pub fn edge_mac(&self, fp: Option<[u8; 4]>, msg: &[u8]) -> Option<[u8; 16]> {
        let key = match fp {
            None => &self.keys[0],
            Some(fp) => self.keys.iter().find(|k| k.fp == fp)?,
        };
        let full = key.edge.sign(&key.edge.absorb(&[]), msg);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full[..16]);
        Some(tag)
    }

    /// Verifies a session cookie (signature, then expiry against `now` in Unix seconds) and
    /// passes its borrowed `key` claim to `f`.
    pub fn verify_session<R>(
        &self,
        token: &str,
        now: i64,
        f: impl for<'b> FnOnce(&SessionKeyRef<'b>) -> R,
    ) -> Result<R, CookieError> {
        self.verify_session_claims(token, now, |claims| f(&claims.key))
    }

    /// [`Self::verify_session`], handing over all the claims (for caches that need `exp`).
    pub fn verify_session_claims<R>(
        &self,
        token: &str,
        now: i64,
        f: impl for<'b> FnOnce(&Claims<SessionKeyRef<'b>>) -> R,
    ) -> Result<R, CookieError> {
        self.verify_with(Purpose::Session, token, |payload| {
            let claims: Claims<SessionKeyRef<'_>> = serde_json::from_slice(payload)
                .map_err(|_| CookieError::Malformed("claims are not valid"))?;
            if claims.exp <= now {
                return Err(CookieError::Expired);
            }
            Ok(f(&claims))
        })
    }

    /// Verifies a token this ring signed for `purpose` and returns its owned `key` claim.
    pub fn verify_claims<K: serde::de::DeserializeOwned>(
        &self,
        purpose: Purpose,
        token: &str,
        now: i64,
    ) -> Result<K, CookieError> {
        self.verify_with(purpose, token, |payload| {
            let claims: Claims<K> = serde_json::from_slice(payload)
                .map_err(|_| CookieError::Malformed("claims are not valid"))?;
            if claims.exp <= now {
                return Err(CookieError::Expired);
            }
            Ok(claims.key)
        })
    }

    /// The key that must have signed a token with header `h` for `purpose`.
    fn key_for(&self, purpose: Purpose, h: &str) -> Result<&hmac::Key, CookieError> {
        let p = purpose as usize;
        // Our own headers are recognised as they are, without decoding.
        if let Some(k) = self.keys.iter().find(|k| k.headers[p] == h) {
            return Ok(&k.keys[p]);
        }
        let mut hbuf = [0u8; 256];
        let hlen = decode(h, &mut hbuf)?;
        let header: Header<'_> = serde_json::from_slice(&hbuf[..hlen])
            .map_err(|_| CookieError::Malformed("header is not JSON"))?;
        if header.alg != purpose.alg() {
            return Err(CookieError::Algorithm);
        }
        match header.kid.as_deref() {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid == kid)
                .map(|k| &k.keys[p])
                .ok_or(CookieError::UnknownKey),
            None if self.keys.len() == 1 => Ok(&self.keys[0].keys[p]),
            None => Err(CookieError::UnknownKey),
        }
    }

    /// Checks the header and the signature, then hands the decoded payload to `f`.
    fn verify_with<R>(
        &self,
        purpose: Purpose,
        token: &str,
        f: impl FnOnce(&[u8]) -> Result<R, CookieError>,
    ) -> Result<R, CookieError> {
        if token.is_empty() {
            return Err(CookieError::Missing);
        }
        let mut parts = token.splitn(3, '.');
        let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CookieError::Malformed("expected three dot-separated parts"));
        };
        let key = self.key_for(purpose, h)?;
        let mut sbuf = [0u8; 96];
        let slen = decode(s, &mut sbuf)?;
        let signed = &token[..h.len() + 1 + p.len()];
        hmac::verify(key, signed.as_bytes(), &sbuf[..slen]).map_err(|_| CookieError::Signature)?;
        let mut pbuf = [0u8; MAX_PAYLOAD];
        let plen = decode(p, &mut pbuf)?;
        f(&pbuf[..plen])
    }
}

/// Largest accepted decoded claims payload; real cookies are a few hundred bytes.
const MAX_PAYLOAD: usize = 2048;

fn decode(part: &str, buf: &mut [u8]) -> Result<usize, CookieError> {
    if part.len() > buf.len() * 4 / 3 + 4 {
        return Err(CookieError::Malformed("cookie too long"));
    }
    B64.decode_slice(part, buf)
        .map_err(|_| CookieError::Malformed("not base64url"))
}

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    kid: Option<Cow<'a, str>>,
}

/// Registered claims plus the upstream `key` claim.
#[derive(Serialize, Deserialize)]
pub struct Claims<K> {
    pub iat: i64,
    pub exp: i64,
    pub key: K,
}

/// The session cookie's `key` claim (upstream JSON names, empty fields omitted).
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peerip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orgname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub appname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub appvers: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uniqueidtype: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uniqueid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kid: String,
}

/// A location inside a token (upstream `Loc` JSON names).
#[derive(Serialize, Deserialize, Default, Debug, Clone, Copy, PartialEq)]
pub struct CookieLoc {
    pub latitude: f64,
    pub longitude: f64,
}

/// Borrowed view of a session key, for allocation-free verification.
#[derive(Deserialize, Debug)]
pub struct SessionKeyRef<'a> {
    #[serde(borrow, default)]
    pub peerip: Cow<'a, str>,
    #[serde(borrow, default)]
    pub orgname: Cow<'a, str>,
    #[serde(borrow, default)]
    pub appname: Cow<'a, str>,
    #[serde(borrow, default)]
    pub appvers: Cow<'a, str>,
    #[serde(borrow, default)]
    pub uniqueidtype: Cow<'a, str>,
    #[serde(borrow, default)]
    pub uniqueid: Cow<'a, str>,
}

#[cfg(test)]
mod tests;
