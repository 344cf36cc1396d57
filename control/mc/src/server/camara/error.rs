//! CAMARA's error body `{"status", "code", "message"}` (ErrorInfo), and how the MC's own
//! errors (authorisation, the controller's refusals) become one.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::server::audit::SelfRecorded;
use crate::server::error::{ApiError, ErrorMessage};
use crate::store::McStoreError;

/// An error answered to a CAMARA client. The message names the field, object or permission at
/// fault and never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct CamaraError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The failure was already recorded in the audit log (by a mutation's own entry).
    pub recorded: bool,
}

impl CamaraError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        CamaraError {
            status,
            code,
            message: edge_auth::camara::bounded_message(message.into()),
            recorded: false,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
    }
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "PERMISSION_DENIED", message)
    }
    /// The body contradicts the token (another organisation named, say).
    pub fn token_context(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "INVALID_TOKEN_CONTEXT", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// Only where the spec documents 501 for the operation.
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, "NOT_IMPLEMENTED", message)
    }

    /// An MC error as CAMARA's, 409 with `conflict` as its code. An unreachable controller
    /// (502) is 503 UNAVAILABLE: the spec has no 502.
    pub fn from_api(e: ApiError, conflict: &'static str) -> CamaraError {
        let (status, code) = match e.status.as_u16() {
            400 | 413 => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
            401 => (e.status, "UNAUTHENTICATED"),
            403 => (e.status, "PERMISSION_DENIED"),
            404 => (e.status, "NOT_FOUND"),
            409 => (e.status, conflict),
            429 => (e.status, "TOO_MANY_REQUESTS"),
            501 => (e.status, "NOT_IMPLEMENTED"),
            502..=504 => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        };
        Self::new(status, code, e.message)
    }

    /// The error as one of `statuses` (those the spec lists for the operation): any other
    /// becomes 500 INTERNAL, keeping its message.
    pub fn within(self, statuses: &[u16]) -> CamaraError {
        if statuses.contains(&self.status.as_u16()) {
            return self;
        }
        CamaraError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "INTERNAL",
            ..self
        }
    }

    /// Marks the error as already audited.
    pub fn recorded(self) -> CamaraError {
        CamaraError {
            recorded: true,
            ..self
        }
    }
}

impl From<ApiError> for CamaraError {
    fn from(e: ApiError) -> CamaraError {
        CamaraError::from_api(e, "CONFLICT")
    }
}

impl From<McStoreError> for CamaraError {
    fn from(e: McStoreError) -> CamaraError {
        ApiError::from(e).into()
    }
}

impl IntoResponse for CamaraError {
    fn into_response(self) -> Response {
        let body = edge_auth::camara::error_body(self.status.as_u16(), self.code, &self.message);
        let mut resp = (self.status, Json(body)).into_response();
        resp.extensions_mut().insert(ErrorMessage(self.message));
        if self.recorded {
            resp.extensions_mut().insert(SelfRecorded);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mc_errors_map_to_camara_codes() {
        let e = |s: u16| ApiError::new(StatusCode::from_u16(s).unwrap(), "m");
        let code = |s: u16| {
            let c = CamaraError::from_api(e(s), "ALREADY_EXISTS");
            (c.status.as_u16(), c.code)
        };
        assert_eq!(code(400), (400, "INVALID_ARGUMENT"));
        assert_eq!(code(401), (401, "UNAUTHENTICATED"));
        assert_eq!(code(403), (403, "PERMISSION_DENIED"));
        assert_eq!(code(404), (404, "NOT_FOUND"));
        assert_eq!(code(409), (409, "ALREADY_EXISTS"));
        assert_eq!(code(502), (503, "UNAVAILABLE"));
        assert_eq!(code(500), (500, "INTERNAL"));
        let e = CamaraError::not_found("gone").within(&[400, 403, 503]);
        assert_eq!(
            (e.status.as_u16(), e.code, e.message.as_str()),
            (500, "INTERNAL", "gone")
        );
        let e = CamaraError::denied("no").within(&[400, 403, 503]);
        assert_eq!(e.code, "PERMISSION_DENIED");
    }
}
