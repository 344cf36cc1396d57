//! Signed tokens, shared by the master controller that issues them and the components that
//! verify them.
//!
//! Owns: the JWT codec on Ed25519 with rotating keys published as JWKS ([`token`]: the MC's
//! login tokens), OAuth 2.0 access tokens and the CAMARA scopes ([`access`]), and where a
//! verifier gets the MC's public keys ([`jwks`]: a fixed set, a file, or the MC's JWKS URL),
//! the CAMARA fronts' shared wire rules ([`camara`]: `x-correlator`, the error body), and the
//! cache of verified tokens ([`cache`]) that takes the signature check off repeated
//! requests (the DME's session cookies use it too).
//! Does not own: who may get a token or what a principal may do (the MC's `auth` and `rbac`),
//! nor the HTTP endpoints that issue tokens (the MC's server) or take them (the DME's CAMARA
//! front).

pub mod access;
pub mod cache;
pub mod camara;
pub mod jwks;
pub mod token;

pub use access::{ACCESS_TYP, AccessClaims, scopes};
pub use jwks::{JwksError, KeySource, VerifiedAccess};
pub use token::{AuthType, Claims, KeyError, SigningKeys, TokenConfig, TokenError, Verifier};
