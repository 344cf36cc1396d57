//! grpc-gateway's conventions, shared by every REST front end (the DME's client API and the
//! controller's API mirror): the HTTP status a gRPC code maps to, and the error body.

use tonic::Code;

/// grpc-gateway's mapping of gRPC codes to HTTP statuses.
pub fn http_status(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::Cancelled => 499,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::PermissionDenied => 403,
        Code::Unauthenticated => 401,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::Unknown | Code::Internal | Code::DataLoss => 500,
    }
}

/// grpc-gateway v1's error body: `{"error", "code", "message", "details"}`.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub code: i32,
    pub message: &'a str,
    pub details: [(); 0],
}

impl<'a> ErrorBody<'a> {
    pub fn new(code: Code, message: &'a str) -> Self {
        Self {
            error: message,
            code: code as i32,
            message,
            details: [],
        }
    }
}
