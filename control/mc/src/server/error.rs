//! The MC's error reply: an HTTP status and upstream's body `{"message": "..."}`. Which status
//! means what is listed in the [server module doc](super).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::McStoreError;

/// An error answered to the client. The message is shown to the caller as is: it names the
/// field, object or permission at fault and never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    /// 400: the request is malformed or breaks a rule (the message names the field).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 401: no usable credentials (token missing, forged, expired, unknown key id; bad login).
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    /// 403: authenticated, but not allowed (the message names the missing permission).
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    /// 404: the named object does not exist.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// 409: the name or grant is already taken.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::CONFLICT, message)
    }
    /// 500: a fault of the MC; the details go to the log, not to the caller.
    pub fn internal(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<McStoreError> for ApiError {
    fn from(e: McStoreError) -> ApiError {
        let message = e.to_string();
        match e {
            McStoreError::AlreadyExists { .. }
            | McStoreError::NameTaken { .. }
            | McStoreError::RoleConflict { .. } => ApiError::conflict(message),
            McStoreError::NotFound { .. } => ApiError::not_found(message),
            McStoreError::InvalidArgument(_) => ApiError::bad_request(message),
            McStoreError::Unavailable(_) => {
                tracing::error!("mc store: {message}");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
            }
            McStoreError::Backend(_) => {
                tracing::error!("mc store: {message}");
                ApiError::internal("internal store error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            Json(serde_json::json!({ "message": self.message })),
        )
            .into_response();
        // The audit layer records the message without parsing the body.
        resp.extensions_mut().insert(ErrorMessage(self.message));
        resp
    }
}

/// The message of an error response, for the audit log.
#[derive(Clone, Debug)]
pub struct ErrorMessage(pub String);
