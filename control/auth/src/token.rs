//! The JWT codec and login tokens: JWTs signed with Ed25519 (JWS `alg` "EdDSA", RFC 8037), carrying the signing
//! key's id (`kid`) in the header so keys rotate: the newest key signs, older ones still
//! verify until retired. Signatures are asymmetric so that other components (the DME, the
//! controllers) can verify MC tokens from the published public keys ([`SigningKeys::jwks`],
//! [`Verifier::from_jwks`]) without being able to mint them. A small codec on `ring`,
//! `base64` and `serde_json`; no JWT crate.
//!
//! # Token
//! `base64url(header) . base64url(claims) . base64url(signature)`, unpadded, with header
//! `{"alg":"EdDSA","typ":"JWT","kid":"<kid>"}` and [`Claims`]
//! `{"sub","iat","exp","authtype":"password"|"apikey","org"?}` (`org` for API-key tokens:
//! the key's organisation). Access tokens use the same codec with header type `at+jwt`
//! ([`crate::access`]). Upstream signed HS512 with a Vault secret and named the subject
//! `username`; the claims here are the registered JWT names.
//!
//! # Key file
//! Text, one key per line, `KID BASE64-PKCS8` (standard base64 of the Ed25519 private key's
//! PKCS#8 v2 document as `ring` generates it); the **first** line signs, the others verify
//! only (the DME's cookie-key file has the same shape). `#` comments and blank lines are
//! ignored. Written with mode 0600 through a temporary file and a rename; it holds secrets and
//! never belongs in the repository.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// How the token's subject logged in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthType {
    /// A user with a password: `sub` is the user name.
    Password,
    /// An API key: `sub` is the key id, `org` its organisation.
    ApiKey,
}

/// A token's claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user name, or the API key id.
    pub sub: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds: the token is refused from this second on.
    pub exp: i64,
    pub authtype: AuthType,
    /// The key's organisation, for API-key tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

/// Token lifetimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenConfig {
    pub user_ttl_secs: i64,
    pub apikey_ttl_secs: i64,
}

impl Default for TokenConfig {
    /// Upstream's: 24 h for users, 4 h for API keys.
    fn default() -> Self {
        TokenConfig {
            user_ttl_secs: 24 * 3600,
            apikey_ttl_secs: 4 * 3600,
        }
    }
}

impl Claims {
    /// A user's claims, valid for the configured lifetime from `now`.
    pub fn user(name: &str, now: i64, cfg: &TokenConfig) -> Claims {
        Claims {
            sub: name.to_string(),
            iat: now,
            exp: now + cfg.user_ttl_secs,
            authtype: AuthType::Password,
            org: None,
        }
    }

    /// An API key's claims.
    pub fn api_key(id: &str, org: &str, now: i64, cfg: &TokenConfig) -> Claims {
        Claims {
            sub: id.to_string(),
            iat: now,
            exp: now + cfg.apikey_ttl_secs,
            authtype: AuthType::ApiKey,
            org: Some(org.to_string()),
        }
    }
}

/// Why a token was refused; every one is HTTP 401.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token found")]
    Missing,
    #[error("invalid token: {0}")]
    Malformed(&'static str),
    #[error("invalid token: signed with unknown key id {0:?}")]
    UnknownKid(String),
    #[error("invalid token: bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired { exp: i64 },
}

/// Why a key ring could not be made, loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("token key file has no key")]
    Empty,
    #[error("token key file line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("duplicate token key id {0:?}")]
    DuplicateKid(String),
    #[error("invalid JWKS: {0}")]
    Jwks(String),
    #[error("cannot generate a key: {0}")]
    Generate(String),
    #[error("token key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The header type of login tokens.
const LOGIN_TYP: &str = "JWT";

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    pair: Ed25519KeyPair,
}

/// The MC's token keys: the first signs, all verify.
pub struct SigningKeys {
    keys: Vec<SigningKey>,
    verifier: Verifier,
}

impl fmt::Debug for SigningKeys {
    /// Key ids only: never the private keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field(
                "kids",
                &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn random_kid(rng: &SystemRandom) -> Result<String, KeyError> {
    let mut b = [0u8; 8];
    rng.fill(&mut b)
        .map_err(|_| KeyError::Generate("no randomness".into()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

impl SigningKeys {
    /// A ring of one freshly generated key with a random id.
    pub fn generate() -> Result<SigningKeys, KeyError> {
        let mut k = SigningKeys {
            keys: Vec::new(),
            verifier: Verifier::default(),
        };
        k.rotate()?;
        Ok(k)
    }

    /// Generates a new key with a random id, which signs from now on; the previous keys keep
    /// verifying. Returns the new key's id.
    pub fn rotate(&mut self) -> Result<String, KeyError> {
        let rng = SystemRandom::new();
        let kid = random_kid(&rng)?;
        let doc = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| KeyError::Generate("Ed25519 key generation failed".into()))?;
        self.push_front(kid.clone(), doc.as_ref().to_vec())
            .map_err(KeyError::Generate)?;
        Ok(kid)
    }

    fn push_front(&mut self, kid: String, pkcs8: Vec<u8>) -> Result<(), String> {
        self.insert(0, kid, pkcs8)
    }

    fn insert(&mut self, at: usize, kid: String, pkcs8: Vec<u8>) -> Result<(), String> {
        if !valid_kid(&kid) {
            return Err(format!(
                "key id {kid:?} must be 1-64 of letters, digits, \"_\", \".\", \"-\""
            ));
        }
        if self.keys.iter().any(|k| k.kid == kid) {
            return Err(format!("duplicate key id {kid:?}"));
        }
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|e| format!("not an Ed25519 PKCS#8 v2 key: {e}"))?;
        self.verifier
            .keys
            .insert(kid.clone(), pair.public_key().as_ref().to_vec());
        self.keys.insert(at, SigningKey { kid, pkcs8, pair });
        Ok(())
    }

    /// Drops a verification key (tokens it signed stop verifying). The signing key cannot be
    /// retired: rotate first. Returns whether it was there.
    pub fn retire(&mut self, kid: &str) -> bool {
        match self.keys.iter().position(|k| k.kid == kid) {
            Some(i) if i > 0 => {
                self.keys.remove(i);
                self.verifier.keys.remove(kid);
                true
            }
            _ => false,
        }
    }

    /// The id of the signing key.
    pub fn signing_kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// Every key id, the signing one first.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// Signs `claims` with the newest key.
    pub fn sign(&self, claims: &Claims) -> String {
        self.sign_typed(LOGIN_TYP, claims)
    }

    /// Signs any claims with the newest key under the header type `typ` (the type keeps a
    /// token of one kind from being accepted as another: see [`crate::access`]).
    pub fn sign_typed<C: Serialize>(&self, typ: &str, claims: &C) -> String {
        let key = &self.keys[0];
        let header = Header {
            alg: "EdDSA".into(),
            typ: Some(typ.into()),
            kid: Some(key.kid.clone()),
        };
        let mut out = B64.encode(serde_json::to_vec(&header).expect("header serialises"));
        out.push('.');
        out.push_str(&B64.encode(serde_json::to_vec(claims).expect("claims serialise")));
        let sig = key.pair.sign(out.as_bytes());
        out.push('.');
        out.push_str(&B64.encode(sig.as_ref()));
        out
    }

    /// Verifies a token at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        self.verifier.verify(token, now)
    }

    /// The public keys alone, for verifying elsewhere.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The public keys as a JWKS document (RFC 7517/8037): `{"keys": [{"kty": "OKP", "crv":
    /// "Ed25519", "x", "kid", "alg": "EdDSA", "use": "sig"}, ...]}`, the signing key first.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": B64.encode(k.pair.public_key().as_ref()),
                    "kid": k.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Parses a key file's text (see the module doc).
    pub fn from_file_contents(text: &str) -> Result<SigningKeys, KeyError> {
        let mut k = SigningKeys {
            keys: Vec::new(),
            verifier: Verifier::default(),
        };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: String| KeyError::Line {
                line: i + 1,
                reason,
            };
            let mut parts = line.split_whitespace();
            let (Some(kid), Some(b64), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(err("expected `KID BASE64-PKCS8`".into()));
            };
            let pkcs8 = STANDARD
                .decode(b64)
                .map_err(|e| err(format!("bad base64: {e}")))?;
            let at = k.keys.len();
            k.insert(at, kid.to_string(), pkcs8).map_err(err)?;
        }
        if k.keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(k)
    }

    /// The key file's text.
    pub fn to_file_contents(&self) -> String {
        let mut s = String::from(
            "# Edgeplane MC token keys (secret): KID BASE64-PKCS8 per line, the first signs.\n",
        );
        for k in &self.keys {
            s.push_str(&format!("{} {}\n", k.kid, STANDARD.encode(&k.pkcs8)));
        }
        s
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<SigningKeys, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_file_contents(&text)
    }

    /// Writes the key file (mode 0600, through a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(self.to_file_contents().as_bytes())
            .map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// Public keys by id: verifies tokens, cannot sign them.
#[derive(Clone, Debug, Default)]
pub struct Verifier {
    keys: HashMap<String, Vec<u8>>,
}

impl Verifier {
    /// From a JWKS document as [`SigningKeys::jwks`] publishes it (keys other than OKP/Ed25519
    /// are skipped; an empty result is an error).
    pub fn from_jwks(jwks: &serde_json::Value) -> Result<Verifier, KeyError> {
        let bad = |s: &str| KeyError::Jwks(s.to_string());
        let list = jwks
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| bad("no \"keys\" array"))?;
        let mut v = Verifier::default();
        for k in list {
            let field = |name| k.get(name).and_then(|x| x.as_str());
            if field("kty") != Some("OKP") || field("crv") != Some("Ed25519") {
                continue;
            }
            let kid = field("kid").ok_or_else(|| bad("key without \"kid\""))?;
            let x = B64
                .decode(field("x").ok_or_else(|| bad("key without \"x\""))?)
                .map_err(|_| bad("\"x\" is not base64url"))?;
            if x.len() != 32 {
                return Err(bad("\"x\" is not a 32-byte Ed25519 key"));
            }
            if v.keys.insert(kid.to_string(), x).is_some() {
                return Err(KeyError::DuplicateKid(kid.to_string()));
            }
        }
        if v.keys.is_empty() {
            return Err(bad("no Ed25519 key"));
        }
        Ok(v)
    }

    /// Verifies a login token at `now`: its shape, algorithm, type, key id, signature, claims
    /// and expiry, in that order (claims are parsed only once the signature holds). An access
    /// token (type `at+jwt`) is refused: it is not a login.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let payload = self.verified_payload(token, |typ| {
            typ.is_none_or(|t| t.eq_ignore_ascii_case(LOGIN_TYP))
        })?;
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed("bad claims"))?;
        if claims.authtype == AuthType::ApiKey && claims.org.is_none() {
            return Err(TokenError::Malformed("API-key token without org"));
        }
        if now >= claims.exp {
            return Err(TokenError::Expired { exp: claims.exp });
        }
        Ok(claims)
    }

    /// Checks a token's shape, algorithm, header type (`typ_ok`), key id and signature, and
    /// returns its decoded claims bytes; the caller parses them and checks expiry.
    pub(crate) fn verified_payload(
        &self,
        token: &str,
        typ_ok: impl Fn(Option<&str>) -> bool,
    ) -> Result<Vec<u8>, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed("too long"));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("not three dot-separated parts"));
        };
        let header: Header = B64
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed("bad header"))?;
        if header.alg != "EdDSA" {
            return Err(TokenError::Malformed("algorithm is not EdDSA"));
        }
        if !typ_ok(header.typ.as_deref()) {
            return Err(TokenError::Malformed("wrong token type"));
        }
        let kid = header.kid.ok_or(TokenError::Malformed("no key id"))?;
        let public = self
            .keys
            .get(&kid)
            .ok_or_else(|| TokenError::UnknownKid(kid.clone()))?;
        let sig = B64
            .decode(s)
            .map_err(|_| TokenError::Malformed("bad signature encoding"))?;
        let signed = &token[..h.len() + 1 + c.len()];
        UnparsedPublicKey::new(&ED25519, public)
            .verify(signed.as_bytes(), &sig)
            .map_err(|_| TokenError::BadSignature)?;
        B64.decode(c)
            .map_err(|_| TokenError::Malformed("bad claims encoding"))
    }

    /// The key ids it verifies.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests;
