//! The one error type every RPC returns, mapped to a gRPC status or, for REST, to the HTTP status
//! and JSON body grpc-gateway would produce.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tonic::Code;

/// A failed request: a gRPC code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, message)
    }
    pub fn unimplemented(what: &str) -> Self {
        Self::new(
            Code::Unimplemented,
            format!("{what} is not implemented by this DME"),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        Self::new(e.code, e.message)
    }
}

/// grpc-gateway's mapping of gRPC codes to HTTP statuses (`edge_api::gateway`).
pub fn http_status(code: Code) -> StatusCode {
    StatusCode::from_u16(edge_api::gateway::http_status(code))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = edge_api::gateway::ErrorBody::new(self.code, &self.message);
        (http_status(self.code), axum::Json(body)).into_response()
    }
}
