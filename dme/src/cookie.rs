//! Session and edge-events cookies: JWTs signed with HMAC-SHA512 (HS512), with the upstream
//! claims so a decoded token looks familiar. Keys carry an id (`kid`, in the JWT header and, as
//! upstream, inside the `key` claim) so keys can be rotated: the first key signs, every key in the
//! ring verifies. Verification is on every request's path: it decodes into stack buffers and
//! hands borrowed claims to a closure, allocating nothing.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
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

/// HS512 keys by id; the first one signs.
pub struct KeyRing {
    keys: Vec<(String, hmac::Key)>,
}

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
                Ok((kid, hmac::Key::new(hmac::HMAC_SHA512, &secret)))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
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

    fn signer(&self) -> &(String, hmac::Key) {
        &self.keys[0]
    }

    fn key(&self, kid: &str) -> Option<&hmac::Key> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    }

    /// Signs `claims` as a JWT.
    pub fn sign<C: Serialize>(&self, claims: &C) -> String {
        let (kid, key) = self.signer();
        let header = Header {
            alg: "HS512".into(),
            typ: Some("JWT".into()),
            kid: Some(kid.into()),
        };
        // Serialising plain structs of strings and numbers cannot fail.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 100);
        B64.encode_string(&header, &mut token);
        token.push('.');
        B64.encode_string(&payload, &mut token);
        let tag = hmac::sign(key, token.as_bytes());
        token.push('.');
        B64.encode_string(tag.as_ref(), &mut token);
        token
    }

    /// Verifies a session cookie (signature, then expiry against `now` in Unix seconds) and
    /// passes its borrowed `key` claim to `f`.
    pub fn verify_session<R>(
        &self,
        token: &str,
        now: i64,
        f: impl for<'b> FnOnce(&SessionKeyRef<'b>) -> R,
    ) -> Result<R, CookieError> {
        self.verify_with(token, |payload| {
            let claims: Claims<SessionKeyRef<'_>> = serde_json::from_slice(payload)
                .map_err(|_| CookieError::Malformed("claims are not valid"))?;
            if claims.exp <= now {
                return Err(CookieError::Expired);
            }
            Ok(f(&claims.key))
        })
    }

    /// Verifies an edge-events cookie and returns its `key` claim.
    pub fn verify_edge_events(&self, token: &str, now: i64) -> Result<EdgeEventsKey, CookieError> {
        self.verify_with_claims(token, now)
    }

    /// Verifies any token this ring signed and returns its owned `key` claim.
    pub fn verify_with_claims<K: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        now: i64,
    ) -> Result<K, CookieError> {
        self.verify_with(token, |payload| {
            let claims: Claims<K> = serde_json::from_slice(payload)
                .map_err(|_| CookieError::Malformed("claims are not valid"))?;
            if claims.exp <= now {
                return Err(CookieError::Expired);
            }
            Ok(claims.key)
        })
    }

    /// Checks the header and the signature, then hands the decoded payload to `f`.
    fn verify_with<R>(
        &self,
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
        let mut hbuf = [0u8; 256];
        let hlen = decode(h, &mut hbuf)?;
        let header: Header<'_> = serde_json::from_slice(&hbuf[..hlen])
            .map_err(|_| CookieError::Malformed("header is not JSON"))?;
        if header.alg != "HS512" {
            return Err(CookieError::Algorithm);
        }
        let key = match header.kid.as_deref() {
            Some(kid) => self.key(kid).ok_or(CookieError::UnknownKey)?,
            None if self.keys.len() == 1 => &self.keys[0].1,
            None => return Err(CookieError::UnknownKey),
        };
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

/// A location inside an edge-events cookie (upstream `Loc` JSON names).
#[derive(Serialize, Deserialize, Default, Debug, Clone, Copy, PartialEq)]
pub struct CookieLoc {
    pub latitude: f64,
    pub longitude: f64,
}

/// The edge-events cookie's `key` claim: which instance the client was sent to, and where the
/// client was then.
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct EdgeEventsKey {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub appinstname: String,
    /// Not in upstream's cookie; added so two instances on one cluster stay distinguishable.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub appinstorg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub clusterorg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub clustername: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cloudletorg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cloudletname: String,
    pub location: CookieLoc,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kid: String,
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
mod tests {
    use super::*;

    fn ring(kid: &str, byte: u8) -> KeyRing {
        KeyRing::new(vec![(kid.into(), vec![byte; 64])]).unwrap()
    }

    fn session(exp: i64) -> Claims<SessionKey> {
        Claims {
            iat: 0,
            exp,
            key: SessionKey {
                orgname: "o".into(),
                appname: "a".into(),
                appvers: "1".into(),
                ..Default::default()
            },
        }
    }

    fn verify(r: &KeyRing, token: &str, now: i64) -> Result<String, CookieError> {
        r.verify_session(token, now, |k| {
            format!("{}/{}/{}", k.orgname, k.appname, k.appvers)
        })
    }

    #[test]
    fn round_trip_and_expiry() {
        let r = ring("1", 1);
        let t = r.sign(&session(100));
        assert_eq!(verify(&r, &t, 99).as_deref(), Ok("o/a/1"));
        assert_eq!(verify(&r, &t, 100), Err(CookieError::Expired));
        assert_eq!(verify(&r, &t, 5000), Err(CookieError::Expired));
    }

    #[test]
    fn forged_and_garbage_tokens_are_rejected() {
        let r = ring("1", 1);
        let t = r.sign(&session(100));
        // Another secret under the same key id: bad signature.
        assert_eq!(verify(&ring("1", 2), &t, 0), Err(CookieError::Signature));
        // Unknown key id.
        let other =
            KeyRing::new(vec![("9".into(), vec![1; 64]), ("8".into(), vec![1; 64])]).unwrap();
        assert_eq!(verify(&other, &t, 0), Err(CookieError::UnknownKey));
        // Tampered claims: swap in a payload naming another app, keep the signature.
        let parts: Vec<&str> = t.split('.').collect();
        let evil = B64
            .encode(br#"{"iat":0,"exp":99999,"key":{"orgname":"x","appname":"a","appvers":"1"}}"#);
        let forged = format!("{}.{}.{}", parts[0], evil, parts[2]);
        assert_eq!(verify(&r, &forged, 0), Err(CookieError::Signature));
        // alg=none is refused before any key is consulted.
        let none = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), parts[1]);
        assert_eq!(verify(&r, &none, 0), Err(CookieError::Algorithm));
        for bad in ["", "x", "a.b", "a.b.c", "....", "é.é.é"] {
            assert!(verify(&r, bad, 0).is_err(), "{bad:?}");
        }
        assert_eq!(verify(&r, "", 0), Err(CookieError::Missing));
        let long = "a".repeat(10_000);
        assert!(matches!(
            verify(&r, &format!("{long}.{long}.{long}"), 0),
            Err(CookieError::Malformed(_))
        ));
    }

    #[test]
    fn rotation_verifies_old_keys_and_signs_with_the_first() {
        let old = ring("old", 3);
        let t_old = old.sign(&session(100));
        let rotated = KeyRing::new(vec![
            ("new".into(), vec![4; 64]),
            ("old".into(), vec![3; 64]),
        ])
        .unwrap();
        assert!(verify(&rotated, &t_old, 0).is_ok());
        let t_new = rotated.sign(&session(100));
        assert!(verify(&rotated, &t_new, 0).is_ok());
        assert_eq!(verify(&old, &t_new, 0), Err(CookieError::UnknownKey));
    }

    #[test]
    fn key_files_parse_and_reject_bad_lines() {
        let secret = base64::engine::general_purpose::STANDARD.encode([9u8; 48]);
        let text = format!("# keys\n2 {secret}\n\n1 {secret}  # older\n");
        let r = KeyRing::parse_file("keys.txt", &text).unwrap();
        assert!(r.sign(&session(1)).contains('.'));
        let err = KeyRing::parse_file("keys.txt", "1 !!!notbase64")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "cookie key file keys.txt: line 1: secret is not base64"
        );
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 8]);
        assert!(matches!(
            KeyRing::parse_file("k", &format!("a {short}")),
            Err(KeyError::TooShort(_))
        ));
        assert!(matches!(
            KeyRing::parse_file("k", "# nothing"),
            Err(KeyError::Empty)
        ));
        assert!(KeyRing::parse_file("k", "onlykid").is_err());
    }
}
