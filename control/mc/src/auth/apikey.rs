//! API-key credentials: an id (a random UUID, as upstream) and a secret of 256 random bits,
//! shown once to the user; only a hash of the secret is stored.
//!
//! # Why a fast hash
//! Slow password hashes exist because passwords are guessable: an attacker holding the hash
//! tries likely passwords first. A secret of 256 uniformly random bits has no likely values,
//! so finding one from its hash takes about 2²⁵⁵ evaluations of any hash, fast or slow; a slow
//! hash would add nothing to that but cost 19 MiB and tens of milliseconds per API-key login
//! (a lever for denial of service). The hash is HMAC-SHA256 keyed with the key's id, so a hash
//! belongs to its row (copying it under another id does not make a working key); it is
//! compared in constant time. Stored as `hmac-sha256$<base64>`; an Argon2id PHC string (as
//! [`crate::model::ApiKey::secret_hash`] once described) also verifies.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

const PREFIX: &str = "hmac-sha256$";

/// A new key's credentials: give `secret` to the user once, store `id` and [`hash_secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for NewApiKey {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Generates an id (UUID version 4 text) and a secret (32 random bytes, base64url, 43
/// characters).
pub fn generate() -> NewApiKey {
    let rng = SystemRandom::new();
    let mut id = [0u8; 16];
    let mut secret = [0u8; 32];
    rng.fill(&mut id).expect("system randomness");
    rng.fill(&mut secret).expect("system randomness");
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    NewApiKey {
        id: format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        ),
        secret: URL_SAFE_NO_PAD.encode(secret),
    }
}

fn tag_key(id: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, id.as_bytes())
}

/// The stored form of a key's secret.
pub fn hash_secret(id: &str, secret: &str) -> String {
    let tag = hmac::sign(&tag_key(id), secret.as_bytes());
    format!("{PREFIX}{}", STANDARD_NO_PAD.encode(tag.as_ref()))
}

/// Whether `secret` is the one of key `id` whose stored hash is `stored` (constant-time).
pub fn verify_secret(id: &str, secret: &str, stored: &str) -> bool {
    if let Some(b64) = stored.strip_prefix(PREFIX) {
        let Ok(tag) = STANDARD_NO_PAD.decode(b64) else {
            return false;
        };
        return hmac::verify(&tag_key(id), secret.as_bytes(), &tag).is_ok();
    }
    if stored.starts_with("$argon2id$") {
        return super::password::verify_password(secret, stored) == Ok(true);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_hash_verify() {
        let k = generate();
        assert_eq!(k.id.len(), 36);
        assert_eq!(k.id.as_bytes()[14], b'4', "UUID version 4: {}", k.id);
        assert!(
            matches!(k.id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'),
            "{}",
            k.id
        );
        assert_eq!(k.secret.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(&k.secret).unwrap().len(), 32);
        let other = generate();
        assert_ne!(k.id, other.id);
        assert_ne!(k.secret, other.secret);
        assert!(!format!("{k:?}").contains(&k.secret));

        let h = hash_secret(&k.id, &k.secret);
        assert!(h.starts_with("hmac-sha256$"));
        assert!(verify_secret(&k.id, &k.secret, &h));
        assert!(!verify_secret(&k.id, &other.secret, &h));
        // The hash is bound to its key id.
        assert!(!verify_secret(&other.id, &k.secret, &h));
        assert!(!verify_secret(&k.id, &k.secret, "hmac-sha256$!!"));
        assert!(!verify_secret(&k.id, &k.secret, ""));
        assert!(!verify_secret(&k.id, &k.secret, "plain"));
    }

    #[test]
    fn argon2_stored_secrets_verify() {
        use super::super::password::{HashParams, hash_password};
        let k = generate();
        let h = hash_password(&k.secret, HashParams::TEST).unwrap();
        assert!(verify_secret(&k.id, &k.secret, &h));
        assert!(!verify_secret(&k.id, "wrong", &h));
    }
}
