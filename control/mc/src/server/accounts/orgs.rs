//! `/api/v1/auth/org/{create,show,delete}`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{deny, message};
use crate::auth::valid_name;
use crate::model::{Grant, Org, OrgType};
use crate::rbac::{Action, AuthorizedOrgs, Resource, Role, authorized_orgs, enforce};
use crate::server::audit::AuditCtx;
use crate::server::auth::Principal;
use crate::server::body::Json;
use crate::server::error::ApiError;
use crate::server::state::McState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgCreate {
    name: String,
    #[serde(rename = "type")]
    org_type: String,
}

/// Creates an organisation; its creator becomes its DeveloperManager or OperatorManager.
pub async fn create(
    State(state): State<Arc<McState>>,
    principal: Principal,
    Extension(ctx): Extension<AuditCtx>,
    Json(req): Json<OrgCreate>,
) -> Result<Json<Value>, ApiError> {
    principal.require_password_login("create organisations")?;
    ctx.add_org(&req.name);
    valid_name(&req.name).map_err(|e| ApiError::bad_request(format!("Invalid name: {e}")))?;
    let (org_type, role) = match req.org_type.as_str() {
        "developer" => (OrgType::Developer, Role::DeveloperManager),
        "operator" => (OrgType::Operator, Role::OperatorManager),
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid type {other:?}: must be \"developer\" or \"operator\""
            )));
        }
    };
    let org = Org {
        name: req.name.clone(),
        org_type,
        delete_in_progress: false,
        created_at: McState::now_secs(),
    };
    state.store.create_org(&org).await?;
    let grant = Grant {
        subject: principal.name.clone(),
        org: org.name.clone(),
        role: role.to_string(),
    };
    if let Err(e) = state.store.add_grant(&grant).await {
        // An organisation nobody manages would be stuck: take it back.
        let _ = state.store.delete_org(&org.name).await;
        return Err(e.into());
    }
    state.refresh_grants().await?;
    Ok(message(format!("organisation {} created", org.name)))
}

#[derive(Serialize)]
pub struct OrgView {
    name: String,
    #[serde(rename = "type")]
    org_type: OrgType,
    delete_in_progress: bool,
    created_at: i64,
}

/// The organisations where the caller may view membership (users:view): all for admins; an
/// empty list, not 403, when none.
pub async fn show(
    State(state): State<Arc<McState>>,
    principal: Principal,
) -> Result<Json<Vec<OrgView>>, ApiError> {
    let grants = state.grants();
    let allowed = authorized_orgs(&grants, principal.subject(), Resource::Users, Action::View);
    let orgs = state.store.list_orgs().await?;
    Ok(Json(
        orgs.into_iter()
            .filter(|o| match &allowed {
                AuthorizedOrgs::All => true,
                AuthorizedOrgs::Orgs(set) => set.iter().any(|s| s.eq_ignore_ascii_case(&o.name)),
            })
            .map(|o| OrgView {
                name: o.name,
                org_type: o.org_type,
                delete_in_progress: o.delete_in_progress,
                created_at: o.created_at,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgName {
    name: String,
}

/// Deletes an organisation (users:manage there: its managers and admins) unless a region
/// still holds its objects (400 naming them). Marked delete-in-progress meanwhile, so that
/// creates naming it are refused; the mark is cleared if the delete does not happen.
pub async fn delete(
    State(state): State<Arc<McState>>,
    principal: Principal,
    Extension(ctx): Extension<AuditCtx>,
    Json(req): Json<OrgName>,
) -> Result<Json<Value>, ApiError> {
    ctx.add_org(&req.name);
    let _serial = state.lock_mutations().await;
    let grants = state.grants();
    deny(enforce(
        &grants,
        principal.subject(),
        &req.name,
        Resource::Users,
        Action::Manage,
    ))?;
    let org = state
        .org(&req.name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("organisation {:?} not found", req.name)))?;
    state
        .store
        .set_org_delete_in_progress(&org.name, true)
        .await?;
    let result = delete_unused(&state, &org).await;
    if result.is_err() {
        let _ = state
            .store
            .set_org_delete_in_progress(&org.name, false)
            .await;
    }
    result?;
    state.refresh_grants().await?;
    Ok(message(format!("organisation {} deleted", org.name)))
}

async fn delete_unused(state: &McState, org: &Org) -> Result<(), ApiError> {
    let in_use: Vec<String> = state
        .regions
        .org_in_use(&org.name)
        .await?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(region, n)| format!("{n} objects in region {region}"))
        .collect();
    if !in_use.is_empty() {
        return Err(ApiError::bad_request(format!(
            "organisation {} is in use: {}",
            org.name,
            in_use.join(", ")
        )));
    }
    if !state.store.delete_org(&org.name).await? {
        return Err(ApiError::not_found(format!(
            "organisation {:?} not found",
            org.name
        )));
    }
    Ok(())
}
