//! The audit trail: every mutation (every POST but shows and the caller's own record) is
//! recorded with who asked, the operation (the path), the request with its secrets redacted,
//! the status and error, the remote address, the time and the organisations concerned. Shows
//! are recorded only when they fail with a status other than 403 (upstream's rule: denied
//! shows are routine, other failures are worth a trace). Logins are recorded like mutations,
//! under the name they tried, with the password redacted.
//!
//! Handlers (and the region proxy) tell the recorder what it cannot see in the request through
//! the [`AuditCtx`] in the request's extensions: the caller (set by the `Principal`
//! extractor) and the organisations concerned (a top-level `"org"` field is taken on its own).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::MAX_BODY;
use super::error::{ApiError, ErrorMessage};
use super::state::McState;
use crate::model::AuditEntry;

const REDACTED: &str = "<redacted>";

/// Whether a JSON field holds a secret, by its name (ASCII case, `_` and `-` ignored).
fn is_secret(field: &str) -> bool {
    let f: String = field
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    const PARTS: &[&str] = &[
        "password",
        "passhash",
        "secret",
        "token",
        "totp",
        "privatekey",
        "credential",
        "accessvars",
        "authorization",
        "cookie",
    ];
    PARTS.iter().any(|p| f.contains(p)) || f.ends_with("apikey")
}

/// A copy of `body` with every secret-named field's value, at any depth, replaced by
/// `"<redacted>"`.
pub fn redact(body: &Value) -> Value {
    match body {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret(k) {
                        Value::String(REDACTED.into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[derive(Debug, Default)]
struct Info {
    user: String,
    orgs: Vec<String>,
}

/// What a handler adds to its request's audit entry.
#[derive(Clone, Debug, Default)]
pub struct AuditCtx(Arc<Mutex<Info>>);

impl AuditCtx {
    /// Who asked (the `Principal` extractor sets it; login sets the name tried).
    pub fn set_user(&self, user: String) {
        if let Ok(mut i) = self.0.lock() {
            i.user = user;
        }
    }

    /// An organisation the request concerns (duplicates ignoring case are dropped).
    pub fn add_org(&self, org: &str) {
        if let Ok(mut i) = self.0.lock()
            && !org.is_empty()
            && !i.orgs.iter().any(|o| o.eq_ignore_ascii_case(org))
        {
            i.orgs.push(org.to_string());
        }
    }

    fn take(&self) -> Info {
        self.0
            .lock()
            .map(|mut i| std::mem::take(&mut *i))
            .unwrap_or_default()
    }
}

/// Put in a response's extensions by a handler that records its request itself, so that it is
/// not recorded twice: the region proxy, whose streamed mutations end (and gRPC calls report
/// their status) after the response's head is sent.
#[derive(Clone, Copy, Debug)]
pub struct SelfRecorded;

/// The remote address of a connection (axum connect info; see `server::run`).
#[derive(Clone, Copy, Debug)]
pub struct RemoteAddr(pub SocketAddr);

/// Shows and the caller's own record: a segment `show` or `current`, or a region method
/// `Show...` (`/api/v1/auth/ctrl/ShowApp`).
fn is_show(path: &str) -> bool {
    path.split('/')
        .any(|s| s == "show" || s == "current" || s.starts_with("Show"))
}

/// The request body as recorded: redacted JSON, or a note of its size.
fn recorded_body(bytes: &[u8]) -> (String, Option<Value>) {
    if bytes.is_empty() {
        return (String::new(), None);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => (redact(&v).to_string(), Some(v)),
        // Unparsable text may hold anything: never record it raw.
        Err(_) => (format!("<{} bytes, not JSON>", bytes.len()), None),
    }
}

/// Middleware: buffers the request body (at most [`MAX_BODY`] bytes: 413 beyond), runs the
/// request and records it as the module doc says.
pub async fn record(State(state): State<Arc<McState>>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let remote = req
        .extensions()
        .get::<ConnectInfo<RemoteAddr>>()
        .map(|c| c.0.0.to_string())
        .unwrap_or_default();
    let path = req.uri().path().to_string();
    let (mut parts, body) = req.into_parts();
    let ctx = AuditCtx::default();
    parts.extensions.insert(ctx.clone());
    let (resp, bytes) = match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => {
            let req = Request::from_parts(parts, Body::from(bytes.clone()));
            (next.run(req).await, bytes)
        }
        Err(_) => {
            let e = ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {MAX_BODY} bytes, or unreadable"),
            );
            (e.into_response(), Default::default())
        }
    };
    let status = resp.status();
    if resp.extensions().get::<SelfRecorded>().is_some() {
        return resp;
    }
    if is_show(&path) && (status.is_success() || status.as_u16() == 403) {
        return resp;
    }
    let (request, json) = recorded_body(&bytes);
    let info = ctx.take();
    let mut orgs = info.orgs;
    if let Some(org) = json
        .as_ref()
        .and_then(|v| v.get("org"))
        .and_then(Value::as_str)
        && !org.is_empty()
        && !orgs.iter().any(|o| o.eq_ignore_ascii_case(org))
    {
        orgs.push(org.to_string());
    }
    let error = resp
        .extensions()
        .get::<ErrorMessage>()
        .map(|m| m.0.clone())
        .unwrap_or_default();
    state
        .audit(AuditEntry {
            seq: 0,
            time_ms: McState::now_ms(),
            username: info.user,
            orgs,
            operation: path,
            request,
            status: status.as_u16(),
            error,
            remote,
        })
        .await;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_secrets_at_any_depth_ignoring_case() {
        let body = json!({
            "username": "alice",
            "Password": "hunter2",
            "passhash": "x",
            "apikeyid": "id-1",
            "ApiKey": "s3cret",
            "nested": {"list": [{"new_password": "p", "token": "t"}], "Secret": 1},
            "app": {"key": {"organization": "devA"}, "access_vars": {"a": "b"}},
        });
        let r = redact(&body);
        assert_eq!(
            r,
            json!({
                "username": "alice",
                "Password": REDACTED,
                "passhash": REDACTED,
                "apikeyid": "id-1",
                "ApiKey": REDACTED,
                "nested": {"list": [{"new_password": REDACTED, "token": REDACTED}],
                           "Secret": REDACTED},
                "app": {"key": {"organization": "devA"}, "access_vars": REDACTED},
            })
        );
    }

    #[test]
    fn shows_are_recognised() {
        assert!(is_show("/api/v1/auth/user/show"));
        assert!(is_show("/api/v1/auth/user/show/apikey"));
        assert!(is_show("/api/v1/auth/user/current"));
        assert!(is_show("/api/v1/auth/ctrl/ShowApp"));
        assert!(!is_show("/api/v1/auth/ctrl/CreateApp"));
        assert!(!is_show("/api/v1/auth/org/create"));
    }

    #[test]
    fn non_json_bodies_are_not_recorded_raw() {
        assert_eq!(recorded_body(b"password=x").0, "<10 bytes, not JSON>");
        assert_eq!(recorded_body(b"").0, "");
    }
}
