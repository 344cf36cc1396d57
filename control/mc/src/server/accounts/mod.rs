//! The account routes: login and user creation (open), and under `/api/v1/auth/` users,
//! organisations, roles, API keys, the audit log and the region registry.

pub mod bootstrap;

use std::sync::Arc;

use axum::Router;

use super::state::McState;

pub fn routes() -> Router<Arc<McState>> {
    Router::new()
}
