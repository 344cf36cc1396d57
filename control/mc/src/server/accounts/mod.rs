//! The account routes: login and user creation (open), and under `/api/v1/auth/` users,
//! organisations, roles, API keys, the audit log and the region registry. Every route is a
//! POST with a JSON body (upstream's mcctl shapes); unknown fields are refused.

pub mod apikeys;
pub mod audit_log;
pub mod bootstrap;
pub mod controllers;
pub mod login;
pub mod orgs;
pub mod roles;
pub mod users;

use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};

use super::body::Json;
use super::error::ApiError;
use super::state::McState;
use crate::rbac::Decision;

pub fn routes() -> Router<Arc<McState>> {
    const A: &str = "/api/v1/auth";
    Router::new()
        .route("/api/v1/login", post(login::login))
        .route("/api/v1/usercreate", post(login::usercreate))
        .route(&format!("{A}/user/show"), post(users::show))
        .route(&format!("{A}/user/current"), post(users::current))
        .route(&format!("{A}/user/delete"), post(users::delete))
        .route(&format!("{A}/user/newpass"), post(users::newpass))
        .route(&format!("{A}/user/create/apikey"), post(apikeys::create))
        .route(&format!("{A}/user/show/apikey"), post(apikeys::show))
        .route(&format!("{A}/user/delete/apikey"), post(apikeys::delete))
        .route(&format!("{A}/org/create"), post(orgs::create))
        .route(&format!("{A}/org/show"), post(orgs::show))
        .route(&format!("{A}/org/delete"), post(orgs::delete))
        .route(&format!("{A}/role/adduser"), post(roles::adduser))
        .route(&format!("{A}/role/removeuser"), post(roles::removeuser))
        .route(&format!("{A}/role/show"), post(roles::show))
        .route(
            &format!("{A}/role/assignment/show"),
            post(roles::assignments),
        )
        .route(&format!("{A}/role/perms/show"), post(roles::perms))
        .route(&format!("{A}/audit/show"), post(audit_log::show))
        .route(&format!("{A}/controller/create"), post(controllers::create))
        .route(&format!("{A}/controller/show"), post(controllers::show))
        .route(&format!("{A}/controller/delete"), post(controllers::delete))
}

/// `{"message": text}`, upstream's reply when there is nothing else to say.
pub(crate) fn message(text: impl Into<String>) -> Json<Value> {
    Json(json!({ "message": text.into() }))
}

/// A denial as 403 with the enforcer's reason (which names the missing permission).
pub(crate) fn deny(d: Decision) -> Result<(), ApiError> {
    match d {
        Decision::Allow => Ok(()),
        Decision::Deny { reason } => Err(ApiError::forbidden(format!("Forbidden: {reason}"))),
    }
}

/// Runs CPU-heavy work (Argon2) off the async workers, a few at a time: each hash takes
/// 19 MiB and a core for ~20 ms, so a flood of logins must queue here rather than start
/// hundreds of blocking threads and exhaust memory.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        tokio::sync::Semaphore::new(cores * 2)
    });
    let _slot = slots
        .acquire()
        .await
        .map_err(|e| ApiError::internal(format!("hash slots closed: {e}")))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}")))
}
