//! The MC as an OAuth 2.0 authorisation server for the CAMARA APIs (two-legged): the
//! client-credentials grant (RFC 6749 §4.4) at `POST /oauth2/token`, the signing keys at
//! `GET /.well-known/jwks.json`, and the discovery document at
//! `GET /.well-known/openid-configuration` (also served as RFC 8414's
//! `/.well-known/oauth-authorization-server`).
//!
//! The client is an MC API key: `client_id` is the key id, `client_secret` the key's secret,
//! sent by HTTP Basic (`client_secret_basic`, each part form-urlencoded first as RFC 6749
//! §2.3.1 says) or as form fields (`client_secret_post`), never both. They are checked by the
//! API-key login's own verification ([`verify_api_key`]); API keys have no lockout (their
//! secrets are 256 random bits, see `accounts::login`). The request is audited like a login,
//! under the client id; its body is form-encoded, so the audit log records only its size.
//!
//! # Scopes
//! Each scope stands for a permission the key must hold in its organisation ([`permission`]):
//! - `simple-edge-discovery:read`, `location-verification:verify`, `location-retrieval:read`:
//!   `apps:view`. They serve the developer's app clients and reveal no instance of theirs, so
//!   the weakest developer right is enough (every developer role has it).
//! - `application-endpoint-discovery:app-endpoints:read`: `appinsts:view` (it returns the
//!   addresses of the organisation's instances).
//! - EAM `apps:read` → `apps:view`; `apps:write`, `apps:delete` → `apps:manage`;
//!   `instances:read` → `appinsts:view`; `instances:write`, `instances:delete` →
//!   `appinsts:manage`; `edge-cloud-zones:read` → `cloudlets:view`.
//! - EAM `clusters:read` → `clusterinsts:view` (a CAMARA cluster is a ClusterInst).
//! - EAM `deployments:read` → `appinsts:view`; `deployments:write`, `deployments:update`,
//!   `deployments:delete` → `appinsts:manage`: a deployment is a set of app instances (one app
//!   on several zones), so it asks for the instance rights. (This MC creates no deployment: see
//!   `camara::deployments`.)
//!
//! No `scope` asked: every scope the key may have (`invalid_scope` if none). A scope asked
//! that is unknown or not held: `invalid_scope` naming it (no partial grant: the client sees
//! at once what it cannot have).
//!
//! # Errors (RFC 6749 §5.2), body `{"error", "error_description"}`
//! 400 `invalid_request` (wrong content type, a parameter given twice, no `grant_type`, two
//! client authentication methods or two different client ids), 400 `unsupported_grant_type`,
//! 400 `invalid_scope`, 401 `invalid_client` (no, unknown or wrong credentials, a key whose
//! owner is gone or locked; with `WWW-Authenticate: Basic realm="edgeplane"` unless the client
//! authenticated by form fields), 500 `server_error`, 503 `temporarily_unavailable`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edge_auth::{ACCESS_TYP, AccessClaims, scopes};
use serde_json::json;

use super::accounts::login::verify_api_key;
use super::audit::AuditCtx;
use super::error::ApiError;
use super::state::McState;
use crate::rbac::{Action, Decision, Resource, Subject, enforce};

pub const TOKEN_PATH: &str = "/oauth2/token";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

pub fn routes() -> axum::Router<Arc<McState>> {
    axum::Router::new()
        .route(TOKEN_PATH, post(token))
        .route(JWKS_PATH, get(jwks))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/oauth-authorization-server", get(discovery))
}

/// The permission a scope stands for (module doc); `None` for a scope this MC does not grant.
pub fn permission(scope: &str) -> Option<(Resource, Action)> {
    use scopes as s;
    Some(match scope {
        s::SIMPLE_EDGE_DISCOVERY | s::LOCATION_VERIFICATION | s::LOCATION_RETRIEVAL => {
            (Resource::Apps, Action::View)
        }
        s::APP_ENDPOINT_DISCOVERY => (Resource::AppInsts, Action::View),
        s::EAM_APPS_READ => (Resource::Apps, Action::View),
        s::EAM_APPS_WRITE | s::EAM_APPS_DELETE => (Resource::Apps, Action::Manage),
        s::EAM_INSTANCES_READ => (Resource::AppInsts, Action::View),
        s::EAM_INSTANCES_WRITE | s::EAM_INSTANCES_DELETE => (Resource::AppInsts, Action::Manage),
        s::EAM_ZONES_READ => (Resource::Cloudlets, Action::View),
        s::EAM_CLUSTERS_READ => (Resource::ClusterInsts, Action::View),
        s::EAM_DEPLOYMENTS_READ => (Resource::AppInsts, Action::View),
        s::EAM_DEPLOYMENTS_WRITE | s::EAM_DEPLOYMENTS_UPDATE | s::EAM_DEPLOYMENTS_DELETE => {
            (Resource::AppInsts, Action::Manage)
        }
        _ => return None,
    })
}

/// An error of the token endpoint.
#[derive(Debug, PartialEq, Eq)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// Add `WWW-Authenticate: Basic` (the client did not authenticate by form fields).
    challenge: bool,
}

impl OAuthError {
    fn request(description: impl Into<String>) -> OAuthError {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
    fn scope(description: impl Into<String>) -> OAuthError {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }
    fn client(description: impl Into<String>, challenge: bool) -> OAuthError {
        OAuthError {
            challenge,
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
        }
    }
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
            challenge: false,
        }
    }

    /// A failure of the MC's own (store) as the OAuth error for it; a refused credential as
    /// `invalid_client`.
    fn from_api(e: ApiError, challenge: bool) -> OAuthError {
        match e.status {
            StatusCode::UNAUTHORIZED => Self::client(e.message, challenge),
            StatusCode::SERVICE_UNAVAILABLE => Self::new(e.status, "temporarily_unavailable", ""),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", ""),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut resp = (self.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        if self.challenge {
            h.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"edgeplane\""),
            );
        }
        let message = format!("{}: {}", self.error, self.description);
        resp.extensions_mut()
            .insert(super::error::ErrorMessage(message));
        resp
    }
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte.
pub(crate) fn form_decode(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The form's parameters; a parameter given twice is refused (RFC 6749 §3.2), empty values
/// count as absent (§3.1).
fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let text = std::str::from_utf8(body).map_err(|_| OAuthError::request("body: not UTF-8"))?;
    let mut params = HashMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || OAuthError::request("body: malformed form encoding");
        let (k, v) = (
            form_decode(k).ok_or_else(bad)?,
            form_decode(v).ok_or_else(bad)?,
        );
        if params.contains_key(&k) {
            return Err(OAuthError::request(format!(
                "parameter {k:?} given more than once"
            )));
        }
        if !v.is_empty() {
            params.insert(k, v);
        }
    }
    Ok(params)
}

/// The client id and secret of `Authorization: Basic` (`None` without that header).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(v) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::client("Authorization: malformed Basic credentials", true);
    let v = v.to_str().map_err(|_| bad())?.trim();
    let (scheme, b64) = v.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::client(
            "Authorization: only the Basic scheme authenticates a client here",
            true,
        ));
    }
    let raw = STANDARD.decode(b64.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some((
        form_decode(id).ok_or_else(bad)?,
        form_decode(secret).ok_or_else(bad)?,
    )))
}

/// How the client authenticated.
struct Client {
    id: String,
    secret: String,
    basic: bool,
}

impl std::fmt::Debug for Client {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("basic", &self.basic)
            .finish_non_exhaustive()
    }
}

/// The one client authentication of the request (Basic or form fields, not both).
fn client_of(
    basic: Option<(String, String)>,
    form: &HashMap<String, String>,
) -> Result<Client, OAuthError> {
    let (form_id, form_secret) = (form.get("client_id"), form.get("client_secret"));
    match basic {
        Some(_) if form_secret.is_some() => Err(OAuthError::request(
            "more than one client authentication method (Basic and client_secret)",
        )),
        Some((id, _)) if form_id.is_some_and(|f| *f != id) => Err(OAuthError::request(
            "client_id differs from the Basic credentials' client id",
        )),
        Some((id, secret)) => Ok(Client {
            id,
            secret,
            basic: true,
        }),
        None => match (form_id, form_secret) {
            (Some(id), Some(secret)) => Ok(Client {
                id: id.clone(),
                secret: secret.clone(),
                basic: false,
            }),
            (Some(_), None) => Err(OAuthError::client("client_secret is required", false)),
            _ => Err(OAuthError::client(
                "client authentication required (HTTP Basic or client_id and client_secret)",
                true,
            )),
        },
    }
}

/// The scopes granted to key `key_id` of `org` for `requested` (space-separated; `None`: all
/// it may have), in [`scopes::ALL`]'s order.
fn grant_scopes(
    state: &McState,
    key_id: &str,
    org: &str,
    requested: Option<&str>,
) -> Result<Vec<&'static str>, OAuthError> {
    let grants = state.grants();
    let held = |scope: &str| {
        permission(scope).is_some_and(|(r, a)| {
            enforce(&grants, Subject::Key(key_id), org, r, a) == Decision::Allow
        })
    };
    let Some(requested) = requested else {
        let all: Vec<_> = scopes::ALL.into_iter().filter(|s| held(s)).collect();
        if all.is_empty() {
            return Err(OAuthError::scope(format!(
                "API key {key_id} holds the permission of no scope in {org}"
            )));
        }
        return Ok(all);
    };
    let asked: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
    for s in &asked {
        let Some((r, a)) = permission(s) else {
            return Err(OAuthError::scope(format!("unknown scope {s:?}")));
        };
        if !held(s) {
            return Err(OAuthError::scope(format!(
                "scope {s:?} needs {r}:{a} in {org}, which API key {key_id} does not hold"
            )));
        }
    }
    Ok(scopes::ALL
        .into_iter()
        .filter(|s| asked.contains(s))
        .collect())
}

fn check_content_type(headers: &HeaderMap) -> Result<(), OAuthError> {
    let essence = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim());
    match essence {
        Some(e) if e.eq_ignore_ascii_case("application/x-www-form-urlencoded") => Ok(()),
        _ => Err(OAuthError::request(
            "Content-Type must be application/x-www-form-urlencoded",
        )),
    }
}

/// `POST /oauth2/token`: the client-credentials grant (module doc).
pub async fn token(
    State(state): State<Arc<McState>>,
    ctx: Option<Extension<AuditCtx>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    check_content_type(&headers)?;
    let form = parse_form(&body)?;
    let client = client_of(basic_credentials(&headers)?, &form)?;
    if let Some(Extension(ctx)) = &ctx {
        ctx.set_user(client.id.clone());
    }
    match form.get("grant_type").map(String::as_str) {
        None => return Err(OAuthError::request("grant_type is required")),
        Some("client_credentials") => {}
        Some(other) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant_type {other:?}: only client_credentials is supported"),
            ));
        }
    }
    let key = verify_api_key(&state, &client.id, &client.secret)
        .await
        .map_err(|e| OAuthError::from_api(e, client.basic))?;
    if let Some(Extension(ctx)) = &ctx {
        ctx.add_org(&key.org);
    }
    // The key's owner must still be able to act (not deleted, not locked).
    state
        .key_principal(&key.id)
        .map_err(|e| OAuthError::from_api(e, client.basic))?;
    let granted = grant_scopes(
        &state,
        &key.id,
        &key.org,
        form.get("scope").map(String::as_str),
    )?;
    let now = McState::now_secs();
    let ttl = state.config.access_ttl_secs;
    let claims = AccessClaims {
        iss: state.config.issuer.clone(),
        sub: key.id.clone(),
        client_id: key.id.clone(),
        org: key.org.clone(),
        scope: granted.join(" "),
        iat: now,
        exp: now + ttl,
        jti: crate::auth::apikey::generate().id,
    };
    let body = json!({
        "access_token": state.keys.sign_typed(ACCESS_TYP, &claims),
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": claims.scope,
    });
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// `GET /.well-known/jwks.json`: the public signing keys.
pub async fn jwks(State(state): State<Arc<McState>>) -> Response {
    axum::Json(state.keys.jwks()).into_response()
}

/// The discovery document (OpenID Connect Discovery / RFC 8414 metadata).
pub async fn discovery(State(state): State<Arc<McState>>) -> Response {
    let iss = &state.config.issuer;
    axum::Json(json!({
        "issuer": iss,
        "token_endpoint": format!("{iss}{TOKEN_PATH}"),
        "jwks_uri": format!("{iss}{JWKS_PATH}"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes::ALL,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_maps_to_a_permission() {
        for s in scopes::ALL {
            assert!(permission(s).is_some(), "{s}");
        }
        assert_eq!(permission("edge-application-management:apps"), None);
        assert_eq!(
            permission(scopes::EAM_INSTANCES_WRITE),
            Some((Resource::AppInsts, Action::Manage))
        );
        assert_eq!(
            permission(scopes::EAM_CLUSTERS_READ),
            Some((Resource::ClusterInsts, Action::View))
        );
        assert_eq!(
            permission(scopes::EAM_DEPLOYMENTS_READ),
            Some((Resource::AppInsts, Action::View))
        );
        for s in [
            scopes::EAM_DEPLOYMENTS_WRITE,
            scopes::EAM_DEPLOYMENTS_UPDATE,
            scopes::EAM_DEPLOYMENTS_DELETE,
        ] {
            assert_eq!(
                permission(s),
                Some((Resource::AppInsts, Action::Manage)),
                "{s}"
            );
        }
    }

    #[test]
    fn forms_decode_and_refuse_duplicates() {
        let f = parse_form(b"grant_type=client_credentials&scope=a+b%3Ac&x=").unwrap();
        assert_eq!(f["grant_type"], "client_credentials");
        assert_eq!(f["scope"], "a b:c");
        assert!(!f.contains_key("x"));
        let e = parse_form(b"scope=a&scope=b").unwrap_err();
        assert_eq!(e.error, "invalid_request");
        assert!(e.description.contains("scope"), "{e:?}");
        assert!(parse_form(b"a=%zz").is_err());
        assert!(parse_form(b"a=%4").is_err());
    }

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn one_client_authentication_method() {
        let basic = || Some(("id".to_string(), "s".to_string()));
        assert!(client_of(basic(), &form(&[])).unwrap().basic);
        assert!(client_of(basic(), &form(&[("client_id", "id")])).is_ok());
        let e = client_of(basic(), &form(&[("client_secret", "s")])).unwrap_err();
        assert_eq!(e.error, "invalid_request");
        let e = client_of(basic(), &form(&[("client_id", "other")])).unwrap_err();
        assert_eq!(e.error, "invalid_request");
        let c = client_of(None, &form(&[("client_id", "id"), ("client_secret", "s")])).unwrap();
        assert!(!c.basic);
        let e = client_of(None, &form(&[])).unwrap_err();
        assert_eq!((e.status, e.challenge), (StatusCode::UNAUTHORIZED, true));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode("a%3Ab:c%2Bd+e"));
        h.insert(AUTHORIZATION, v.parse().unwrap());
        assert_eq!(
            basic_credentials(&h).unwrap(),
            Some(("a:b".to_string(), "c+d e".to_string()))
        );
        h.insert(AUTHORIZATION, "Bearer x".parse().unwrap());
        assert_eq!(basic_credentials(&h).unwrap_err().error, "invalid_client");
    }
}
