//! `/api/v1/auth/audit/show`: the caller's own entries, or an organisation's for those who may
//! view it (users:view there: its members, and admins).

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;

use super::deny;
use crate::model::AuditEntry;
use crate::rbac::{Action, Resource, enforce};
use crate::server::auth::Principal;
use crate::server::body::Json;
use crate::server::error::ApiError;
use crate::server::state::McState;
use crate::store::{AuditQuery, MAX_AUDIT_LIMIT};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditShow {
    #[serde(default)]
    org: Option<String>,
    /// 1 ..= 10 000, default 100.
    #[serde(default)]
    limit: Option<usize>,
    /// Entries older than this sequence number (paging back).
    #[serde(default)]
    before: Option<u64>,
}

pub async fn show(
    State(state): State<Arc<McState>>,
    principal: Principal,
    Json(req): Json<AuditShow>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let limit = req.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_AUDIT_LIMIT {
        return Err(ApiError::bad_request(format!(
            "Invalid limit {limit}: must be within 1..={MAX_AUDIT_LIMIT}"
        )));
    }
    let mut query = AuditQuery {
        limit,
        before_seq: req.before,
        ..AuditQuery::default()
    };
    match req.org.filter(|o| !o.is_empty()) {
        Some(org) => {
            deny(enforce(
                &state.grants(),
                principal.subject(),
                &org,
                Resource::Users,
                Action::View,
            ))?;
            query.org = Some(org);
        }
        None => query.user = Some(principal.audit_name()),
    }
    Ok(Json(state.store.query_audit(&query).await?))
}
