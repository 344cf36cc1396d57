//! OAuth 2.0 access tokens for the CAMARA APIs (RFC 9068's JWT profile, two-legged): the MC
//! issues them to an API key by the client-credentials grant (RFC 6749 §4.4); the DME and the
//! MC's own CAMARA front verify them with the MC's published keys and check their scopes.
//!
//! An access token is signed by the same keys as a login token but carries the header type
//! `at+jwt`, and each verifier accepts only its own type: a login token is never an access
//! token, nor the reverse.

use serde::{Deserialize, Serialize};

use crate::token::{TokenError, Verifier};

/// The header type of access tokens (RFC 9068 §2.1).
pub const ACCESS_TYP: &str = "at+jwt";

/// The CAMARA scopes this platform grants, with what each lets a token do.
pub mod scopes {
    pub const SIMPLE_EDGE_DISCOVERY: &str = "simple-edge-discovery:read";
    pub const APP_ENDPOINT_DISCOVERY: &str = "application-endpoint-discovery:app-endpoints:read";
    pub const LOCATION_VERIFICATION: &str = "location-verification:verify";
    pub const LOCATION_RETRIEVAL: &str = "location-retrieval:read";
    pub const EAM_APPS_READ: &str = "edge-application-management:apps:read";
    pub const EAM_APPS_WRITE: &str = "edge-application-management:apps:write";
    pub const EAM_APPS_DELETE: &str = "edge-application-management:apps:delete";
    pub const EAM_INSTANCES_READ: &str = "edge-application-management:instances:read";
    pub const EAM_INSTANCES_WRITE: &str = "edge-application-management:instances:write";
    pub const EAM_INSTANCES_DELETE: &str = "edge-application-management:instances:delete";
    pub const EAM_ZONES_READ: &str = "edge-application-management:edge-cloud-zones:read";
    pub const EAM_CLUSTERS_READ: &str = "edge-application-management:clusters:read";
    pub const EAM_DEPLOYMENTS_READ: &str = "edge-application-management:deployments:read";
    pub const EAM_DEPLOYMENTS_WRITE: &str = "edge-application-management:deployments:write";
    pub const EAM_DEPLOYMENTS_UPDATE: &str = "edge-application-management:deployments:update";
    pub const EAM_DEPLOYMENTS_DELETE: &str = "edge-application-management:deployments:delete";

    /// Every scope, in a stable order.
    pub const ALL: [&str; 16] = [
        SIMPLE_EDGE_DISCOVERY,
        APP_ENDPOINT_DISCOVERY,
        LOCATION_VERIFICATION,
        LOCATION_RETRIEVAL,
        EAM_APPS_READ,
        EAM_APPS_WRITE,
        EAM_APPS_DELETE,
        EAM_INSTANCES_READ,
        EAM_INSTANCES_WRITE,
        EAM_INSTANCES_DELETE,
        EAM_ZONES_READ,
        EAM_CLUSTERS_READ,
        EAM_DEPLOYMENTS_READ,
        EAM_DEPLOYMENTS_WRITE,
        EAM_DEPLOYMENTS_UPDATE,
        EAM_DEPLOYMENTS_DELETE,
    ];
}

/// An access token's claims (RFC 9068 §2.2, plus the key's organisation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The issuer: the MC's public URL.
    pub iss: String,
    /// The client: the API key id (two-legged: there is no end user).
    pub sub: String,
    pub client_id: String,
    /// The API key's organisation: the developer (or operator) the client acts for.
    pub org: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

impl AccessClaims {
    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

impl Verifier {
    /// Verifies an access token at `now`: signature by a published key, header type `at+jwt`,
    /// claims and expiry. Scopes are the caller's to check ([`AccessClaims::has_scope`]).
    pub fn verify_access(&self, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
        let payload = self.verified_payload(token, |typ| {
            typ.is_some_and(|t| {
                t.eq_ignore_ascii_case(ACCESS_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
            })
        })?;
        let claims: AccessClaims =
            serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed("bad claims"))?;
        if now >= claims.exp {
            return Err(TokenError::Expired { exp: claims.exp });
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Claims, SigningKeys, TokenConfig};

    const NOW: i64 = 1_800_000_000;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "https://mc.example".into(),
            sub: "key-1".into(),
            client_id: "key-1".into(),
            org: "DevA".into(),
            scope: format!(
                "{} {}",
                scopes::SIMPLE_EDGE_DISCOVERY,
                scopes::LOCATION_RETRIEVAL
            ),
            iat: NOW,
            exp: NOW + 3600,
            jti: "j1".into(),
        }
    }

    #[test]
    fn access_tokens_round_trip_and_carry_scopes() {
        let keys = SigningKeys::generate().unwrap();
        let t = keys.sign_typed(ACCESS_TYP, &claims());
        let got = keys.verifier().verify_access(&t, NOW).unwrap();
        assert_eq!(got, claims());
        assert!(got.has_scope(scopes::SIMPLE_EDGE_DISCOVERY));
        assert!(got.has_scope(scopes::LOCATION_RETRIEVAL));
        assert!(!got.has_scope(scopes::LOCATION_VERIFICATION));
        // A prefix of a granted scope is not granted.
        assert!(!got.has_scope("simple-edge-discovery"));
        assert_eq!(
            keys.verifier().verify_access(&t, NOW + 3600),
            Err(TokenError::Expired { exp: NOW + 3600 })
        );
    }

    #[test]
    fn login_and_access_tokens_are_not_interchangeable() {
        let keys = SigningKeys::generate().unwrap();
        let access = keys.sign_typed(ACCESS_TYP, &claims());
        let login = keys.sign(&Claims::user("alice", NOW, &TokenConfig::default()));
        assert_eq!(
            keys.verify(&access, NOW),
            Err(TokenError::Malformed("wrong token type"))
        );
        assert_eq!(
            keys.verifier().verify_access(&login, NOW),
            Err(TokenError::Malformed("wrong token type"))
        );
    }

    #[test]
    fn another_issuers_key_is_refused() {
        let keys = SigningKeys::generate().unwrap();
        let other = SigningKeys::generate().unwrap();
        let t = other.sign_typed(ACCESS_TYP, &claims());
        assert!(matches!(
            keys.verifier().verify_access(&t, NOW),
            Err(TokenError::UnknownKid(_))
        ));
    }
}
