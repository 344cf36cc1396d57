//! Authentication primitives, free of I/O except reading and writing the token key file:
//! - [`password`]: Argon2id hashes (PHC strings), constant-time verification, strength rules
//!   (length and a zxcvbn crack-time estimate, stricter for admins);
//! - [`names`]: the rules for user and organisation names;
//! - [`lockout`]: the failed-login lockout as a pure state machine;
//! - [`token`]: login tokens, JWTs signed with rotating Ed25519 keys, published as JWKS;
//! - [`apikey`]: API-key ids and secrets, and the stored hash of a secret.
//!
//! Who may do what once authenticated is [`crate::rbac`]'s concern.

pub mod apikey;
pub mod lockout;
pub mod names;
pub mod password;
/// The codec lives in `edge-auth`, shared with the verifiers of the MC's tokens.
pub use edge_auth::token;

pub use lockout::{Gate, LockoutConfig, LoginFailures};
pub use names::{NameError, valid_name};
pub use password::{
    HashParams, PasswordError, StrengthPolicy, check_password, hash_password, needs_rehash,
    verify_password,
};
pub use token::{AuthType, Claims, SigningKeys, TokenConfig, TokenError, Verifier};
