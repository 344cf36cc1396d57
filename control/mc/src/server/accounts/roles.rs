//! `/api/v1/auth/role/{adduser,removeuser,show,assignment/show,perms/show}`.
//!
//! Grants follow [`crate::rbac::can_grant`] / [`crate::rbac::can_remove`]: the caller needs
//! users:manage in the organisation (403), admin roles only on "", a developer role only in a
//! developer organisation and an operator role only in an operator one (400), one role per
//! user and organisation (409), and the last manager stays (400). An organisation that does
//! not exist is 403 for a caller without users:manage on it (every non-admin: no fishing for
//! names) and 404 for an admin; an unknown user is 404.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{deny, message};
use crate::model::Grant;
use crate::rbac::{
    Action, GrantError, Removal, Resource, Role, can_grant, can_remove, enforce, policies,
};
use crate::server::audit::AuditCtx;
use crate::server::auth::Principal;
use crate::server::body::Json;
use crate::server::error::ApiError;
use crate::server::state::McState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleArg {
    org: String,
    username: String,
    role: String,
}

fn grant_error(e: &GrantError) -> ApiError {
    match e {
        GrantError::Forbidden { .. } => ApiError::forbidden(e.to_string()),
        GrantError::AlreadyHasRole { .. } => ApiError::conflict(e.to_string()),
        _ => ApiError::bad_request(e.to_string()),
    }
}

/// The checks both routes share: the role's name, the caller's users:manage on the
/// organisation, the organisation's and the user's existence. Returns the role, the
/// organisation (name as stored and type; `None` for "") and the user's stored name.
async fn resolve(
    state: &McState,
    principal: &Principal,
    req: &RoleArg,
) -> Result<(Role, Option<crate::model::Org>, String), ApiError> {
    let role: Role = req
        .role
        .parse()
        .map_err(|e| ApiError::bad_request(format!("Invalid role: {e}")))?;
    let org =
        if req.org.is_empty() {
            None
        } else {
            deny(enforce(
                &state.grants(),
                principal.subject(),
                &req.org,
                Resource::Users,
                Action::Manage,
            ))?;
            Some(state.org(&req.org).await?.ok_or_else(|| {
                ApiError::not_found(format!("organisation {:?} not found", req.org))
            })?)
        };
    let user = state
        .store
        .user(&req.username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {:?} not found", req.username)))?;
    Ok((role, org, user.name))
}

pub async fn adduser(
    State(state): State<Arc<McState>>,
    principal: Principal,
    Extension(ctx): Extension<AuditCtx>,
    Json(req): Json<RoleArg>,
) -> Result<Json<Value>, ApiError> {
    ctx.add_org(&req.org);
    let _serial = state.lock_mutations().await;
    let (role, org, user) = resolve(&state, &principal, &req).await?;
    if org.as_ref().is_some_and(|o| o.delete_in_progress) {
        return Err(ApiError::bad_request(format!(
            "Operation not allowed for org {} with delete in progress",
            req.org
        )));
    }
    let target = org.as_ref().map(|o| (o.name.as_str(), o.org_type));
    can_grant(&state.grants(), principal.subject(), &user, target, role)
        .map_err(|e| grant_error(&e))?;
    let grant = Grant {
        subject: user.clone(),
        org: org.map(|o| o.name).unwrap_or_default(),
        role: role.to_string(),
    };
    state.store.add_grant(&grant).await?;
    state.refresh_grants().await?;
    Ok(message(format!("Role {role} added to user {user}")))
}

pub async fn removeuser(
    State(state): State<Arc<McState>>,
    principal: Principal,
    Extension(ctx): Extension<AuditCtx>,
    Json(req): Json<RoleArg>,
) -> Result<Json<Value>, ApiError> {
    ctx.add_org(&req.org);
    let _serial = state.lock_mutations().await;
    let (role, org, user) = resolve(&state, &principal, &req).await?;
    let org = org.map(|o| o.name).unwrap_or_default();
    match can_remove(&state.grants(), principal.subject(), &user, &org, role)
        .map_err(|e| grant_error(&e))?
    {
        Removal::Absent => Ok(message(format!("User {user} does not hold role {role}"))),
        Removal::Remove => {
            let grant = Grant {
                subject: user.clone(),
                org,
                role: role.to_string(),
            };
            state.store.remove_grant(&grant).await?;
            state.refresh_grants().await?;
            Ok(message(format!("Role {role} removed from user {user}")))
        }
    }
}

/// Every role name.
pub async fn show(_principal: Principal) -> Json<Vec<&'static str>> {
    Json(Role::ALL.iter().map(|r| r.as_str()).collect())
}

#[derive(Serialize)]
pub struct RoleView {
    org: String,
    username: String,
    role: String,
}

/// The caller's own role assignments.
pub async fn assignments(
    State(state): State<Arc<McState>>,
    principal: Principal,
) -> Result<Json<Vec<RoleView>>, ApiError> {
    let grants = state.store.grants_of_subject(&principal.name).await?;
    Ok(Json(
        grants
            .into_iter()
            .map(|g| RoleView {
                org: g.org,
                username: g.subject,
                role: g.role,
            })
            .collect(),
    ))
}

#[derive(Serialize)]
pub struct PermView {
    role: &'static str,
    resource: &'static str,
    action: &'static str,
}

/// The policy table: role → resource/action.
pub async fn perms(_principal: Principal) -> Json<Vec<PermView>> {
    Json(
        policies()
            .into_iter()
            .map(|(role, p)| PermView {
                role: role.as_str(),
                resource: p.resource.as_str(),
                action: p.action.as_str(),
            })
            .collect(),
    )
}
