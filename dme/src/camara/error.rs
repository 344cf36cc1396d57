//! CAMARA's error body `{status, code, message}` (Commonalities' ErrorInfo), with the HTTP
//! status it names. The codes are the specs' own; each operation uses only those its spec lists.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A refused CAMARA request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CamaraError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl CamaraError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        CamaraError {
            status,
            code,
            message: edge_auth::camara::bounded_message(message.into()),
        }
    }

    /// 400 INVALID_ARGUMENT: the request does not follow the schema.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }

    /// 401 UNAUTHENTICATED: no, a malformed, forged or expired token.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
    }

    /// 403 PERMISSION_DENIED: the token lacks the operation's scope.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "PERMISSION_DENIED", message)
    }

    /// 404 NOT_FOUND: no such resource (an app, a zone).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// 404 IDENTIFIER_NOT_FOUND: the network does not know the device.
    pub fn unknown_device(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "IDENTIFIER_NOT_FOUND", message)
    }

    /// 422 with a spec's code (MISSING_IDENTIFIER, UNSUPPORTED_IDENTIFIER, ...).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 429 TOO_MANY_REQUESTS.
    pub fn too_many(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", message)
    }

    pub fn body(&self) -> serde_json::Value {
        edge_auth::camara::error_body(self.status.as_u16(), self.code, &self.message)
    }
}

impl std::fmt::Display for CamaraError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for CamaraError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: the scheme the client should use.
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"edgeplane\""),
            );
        }
        resp
    }
}
