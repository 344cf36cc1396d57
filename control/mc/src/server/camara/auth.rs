//! Who calls a CAMARA API: an OAuth access token of this MC (`Authorization: Bearer`, verified
//! with the MC's own keys, issued by this issuer), turned back into the principal of its API
//! key so that the region API's authorisation applies unchanged. Also the request body and
//! query parsers, whose failures are CAMARA's 400.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use edge_auth::AccessClaims;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::CamaraError;
use crate::server::audit::{AuditCtx, RemoteAddr};
use crate::server::auth::Principal;
use crate::server::oauth::form_decode;
use crate::server::state::McState;

/// An authenticated CAMARA caller.
pub struct Caller {
    /// The API key's principal: its owner, acting with the key's permissions only.
    pub principal: Principal,
    /// The key's organisation (the application provider).
    pub org: String,
    pub claims: AccessClaims,
    /// The peer address, for the audit log.
    pub remote: String,
}

impl Caller {
    /// 403 PERMISSION_DENIED unless the token carries `scope`.
    pub fn require(&self, scope: &str) -> Result<(), CamaraError> {
        if self.claims.has_scope(scope) {
            return Ok(());
        }
        Err(CamaraError::denied(format!(
            "the access token lacks the scope {scope}"
        )))
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<Arc<McState>> for Caller {
    type Rejection = CamaraError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<McState>,
    ) -> Result<Caller, CamaraError> {
        let token = bearer(parts).ok_or_else(|| {
            CamaraError::unauthenticated("an access token is required (Authorization: Bearer)")
        })?;
        let claims = state
            .keys
            .verifier()
            .verify_access(token, McState::now_secs())
            .map_err(|e| CamaraError::unauthenticated(format!("invalid access token: {e}")))?;
        if claims.iss != state.config.issuer {
            return Err(CamaraError::unauthenticated(format!(
                "invalid access token: issued by {:?}, not this MC",
                claims.iss
            )));
        }
        let principal = state
            .key_principal(&claims.sub)
            .map_err(|e| CamaraError::unauthenticated(e.message))?;
        let org = principal.key.as_ref().map_or("", |k| &k.org).to_string();
        if !org.eq_ignore_ascii_case(&claims.org) {
            return Err(CamaraError::unauthenticated(
                "invalid access token: its organisation is not its API key's",
            ));
        }
        if let Some(ctx) = parts.extensions.get::<AuditCtx>() {
            ctx.set_user(principal.audit_name());
            ctx.add_org(&org);
        }
        let remote = parts
            .extensions
            .get::<ConnectInfo<RemoteAddr>>()
            .map(|c| c.0.0.to_string())
            .unwrap_or_default();
        Ok(Caller {
            principal,
            org,
            claims,
            remote,
        })
    }
}

/// A JSON request body; any failure is 400 INVALID_ARGUMENT naming it.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = CamaraError;

    async fn from_request(req: Request, state: &S) -> Result<Body<T>, CamaraError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| CamaraError::invalid(format!("cannot read the request body: {e}")))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| CamaraError::invalid(format!("invalid request body: {e}")))
    }
}

/// For an optional member (`#[serde(default, deserialize_with = "non_null")]`): absent is
/// `None`, `null` is refused like any value not of the member's type (the schemas give a type
/// and never `nullable`). Unknown members are ignored everywhere (no schema forbids them).
pub fn non_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The query parameters of `raw`, each at most once, among `known` (400 otherwise).
pub fn query(raw: Option<&str>, known: &[&str]) -> Result<HashMap<String, String>, CamaraError> {
    let mut out = HashMap::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || CamaraError::invalid("query: malformed encoding");
        let (k, v) = (
            form_decode(k).ok_or_else(bad)?,
            form_decode(v).ok_or_else(bad)?,
        );
        if !known.contains(&k.as_str()) {
            return Err(CamaraError::invalid(format!(
                "unknown query parameter {k:?} (known: {})",
                known.join(", ")
            )));
        }
        if out.insert(k.clone(), v).is_some() {
            return Err(CamaraError::invalid(format!(
                "query parameter {k:?} given more than once"
            )));
        }
    }
    Ok(out)
}

/// The `region` query parameter, if given: an `EdgeCloudRegion` (a string of at most 64
/// characters; no pattern). 400 otherwise.
pub fn region_param(q: &HashMap<String, String>) -> Result<Option<&str>, CamaraError> {
    const MAX_LEN: usize = 64;
    match q.get("region") {
        Some(r) if r.chars().count() > MAX_LEN => Err(CamaraError::invalid(format!(
            "region: at most {MAX_LEN} characters"
        ))),
        r => Ok(r.map(String::as_str)),
    }
}

/// The id query parameter `name`, if given, checked with [`spec_id`].
pub fn id_param(q: &HashMap<String, String>, name: &str) -> Result<Option<u128>, CamaraError> {
    q.get(name).map(|v| spec_id(name, v)).transpose()
}

/// The spec's id pattern (AppId, AppDeploymentId, EdgeCloudZoneId, KubernetesClusterRef, ...):
/// `^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, i.e. lower-case
/// hex of an RFC 9562 UUID of version 1 to 5. 400 naming `what` otherwise. Every id of a path,
/// query or body is checked with it (the ids this MC makes are version 5, lower case).
pub fn spec_id(what: &str, id: &str) -> Result<u128, CamaraError> {
    let b = id.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            14 => (b'1'..=b'5').contains(&c),
            19 => b"89ab".contains(&c),
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        });
    ok.then(|| edge_model::camara_id::parse(id))
        .flatten()
        .ok_or_else(|| {
            CamaraError::invalid(format!(
                "{what}: {id:?} must match ^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[1-5][0-9a-f]{{3}}-[89ab][0-9a-f]{{3}}-[0-9a-f]{{12}}$"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let q = query(Some("region=eu&status=active"), &["region", "status"]).unwrap();
        assert_eq!(q["region"], "eu");
        assert!(query(Some("colour=red"), &["region"]).is_err());
        assert!(query(Some("region=a&region=b"), &["region"]).is_err());
        assert!(query(None, &["region"]).unwrap().is_empty());
        let q = query(Some(&format!("region={}", "r".repeat(64))), &["region"]).unwrap();
        assert_eq!(region_param(&q).unwrap().map(str::len), Some(64));
        let q = query(Some(&format!("region={}", "0".repeat(65))), &["region"]).unwrap();
        let e = region_param(&q).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "INVALID_ARGUMENT"));
        assert!(e.message.starts_with("region"), "{e}");
        let q = query(
            Some("appId=642F6105-7015-4af1-a4d1-e1ecb8437abc"),
            &["appId"],
        )
        .unwrap();
        assert!(
            id_param(&q, "appId")
                .unwrap_err()
                .message
                .starts_with("appId")
        );
        assert_eq!(id_param(&q, "appInstanceId").unwrap(), None);
    }

    #[test]
    fn spec_ids() {
        let id = "642f6105-7015-4af1-a4d1-e1ecb8437abc";
        assert_eq!(spec_id("x", id).ok(), edge_model::camara_id::parse(id));
        for bad in [
            "",
            "642F6105-7015-4af1-a4d1-e1ecb8437abc",
            "642f6105-7015-6af1-a4d1-e1ecb8437abc",
            "642f6105-7015-0af1-a4d1-e1ecb8437abc",
            "642f6105-7015-4af1-c4d1-e1ecb8437abc",
            "642f6105-7015-4af1-a4d1-e1ecb8437ab",
            "642f6105+7015-4af1-a4d1-e1ecb8437abc",
            "642f6105-7015-4af1-a4d1-e1ecb8437abcd",
        ] {
            let e = spec_id("clusterRef", bad).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (400, "INVALID_ARGUMENT"),
                "{bad}"
            );
            assert!(e.message.starts_with("clusterRef"), "{e}");
        }
    }
}
