//! The operations this MC does not carry out. Creating a deployment answers the 501 the spec
//! documents for it. The others need a scope this MC never grants (`scopes::ALL` has no
//! deployments or clusters scope), so they answer 403 PERMISSION_DENIED after the token is
//! checked, saying why; the spec documents no 501 for them.

use axum::http::Method;

use super::auth::Caller;
use super::error::CamaraError;

const DEPLOYMENTS: &str = "edge-application-management:deployments";
const CLUSTERS_READ: &str = "edge-application-management:clusters:read";

fn ungranted(scope: &str, why: &str) -> CamaraError {
    CamaraError::denied(format!(
        "the access token lacks the scope {scope}, which this platform does not grant: {why}"
    ))
}

// The `Caller` arguments authenticate the request (401 before anything else).

/// `POST /deployments`: 501.
pub async fn create_deployment(_caller: Caller) -> CamaraError {
    CamaraError::not_implemented(
        "application deployments are not implemented: create an instance per zone",
    )
}

/// `GET /deployments`.
pub async fn deployments(_caller: Caller) -> CamaraError {
    ungranted(
        &format!("{DEPLOYMENTS}:read"),
        "deployments are not implemented",
    )
}

/// `DELETE` and `PATCH /deployments/{id}`.
pub async fn deployment(method: Method, _caller: Caller) -> CamaraError {
    let action = if method == Method::PATCH {
        "update"
    } else {
        "delete"
    };
    ungranted(
        &format!("{DEPLOYMENTS}:{action}"),
        "deployments are not implemented",
    )
}

/// `GET /clusters`.
pub async fn clusters(_caller: Caller) -> CamaraError {
    ungranted(
        CLUSTERS_READ,
        "instances are placed on zones without a named Kubernetes cluster",
    )
}
