//! `/api/v1/auth/user/{show,current,delete,newpass}`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{blocking, deny, message};
use crate::auth::{check_password, hash_password};
use crate::model::{User, name_key};
use crate::rbac::{Action, AuthorizedOrgs, Resource, Role, Subject, authorized_orgs, enforce};
use crate::server::audit::AuditCtx;
use crate::server::auth::Principal;
use crate::server::body::Json;
use crate::server::error::ApiError;
use crate::server::state::McState;
use crate::store::UserUpdate;

/// A user as shown: never the password hash or the failure counters.
#[derive(Serialize)]
pub struct UserView {
    name: String,
    email: String,
    locked: bool,
    created_at: i64,
}

impl From<&User> for UserView {
    fn from(u: &User) -> UserView {
        UserView {
            name: u.name.clone(),
            email: u.email.clone(),
            locked: u.locked,
            created_at: u.created_at,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ShowUsers {
    /// Only the members of this organisation (needs users:view there).
    #[serde(default)]
    org: Option<String>,
    /// Only this user.
    #[serde(default)]
    name: Option<String>,
}

/// The users the caller may see: everyone for admins (users:view on ""), else the members of
/// the organisations where the caller holds users:view, and always the caller.
pub async fn show(
    State(state): State<Arc<McState>>,
    principal: Principal,
    Json(req): Json<ShowUsers>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let grants = state.grants();
    let subject = principal.subject();
    let visible: Option<BTreeSet<String>> = match &req.org {
        Some(org) => {
            deny(enforce(
                &grants,
                subject,
                org,
                Resource::Users,
                Action::View,
            ))?;
            Some(members(&state, org).await?)
        }
        None => match authorized_orgs(&grants, subject, Resource::Users, Action::View) {
            AuthorizedOrgs::All => None,
            AuthorizedOrgs::Orgs(orgs) => {
                let mut names = BTreeSet::from([name_key(&principal.name)]);
                for org in &orgs {
                    names.extend(members(&state, org).await?);
                }
                Some(names)
            }
        },
    };
    let users = state.store.list_users().await?;
    Ok(Json(
        users
            .iter()
            .filter(|u| {
                visible
                    .as_ref()
                    .is_none_or(|v| v.contains(&name_key(&u.name)))
            })
            .filter(|u| {
                req.name
                    .as_ref()
                    .is_none_or(|n| n.eq_ignore_ascii_case(&u.name))
            })
            .map(UserView::from)
            .collect(),
    ))
}

/// Name keys of the users holding a role in `org`.
async fn members(state: &McState, org: &str) -> Result<BTreeSet<String>, ApiError> {
    Ok(state
        .store
        .grants_in_org(org)
        .await?
        .iter()
        .map(|g| name_key(&g.subject))
        .collect())
}

/// The caller (an API key's owner for key tokens).
pub async fn current(
    State(state): State<Arc<McState>>,
    principal: Principal,
) -> Result<Json<UserView>, ApiError> {
    let user = state
        .store
        .user(&principal.name)
        .await?
        .ok_or_else(|| ApiError::unauthorized("user no longer exists"))?;
    Ok(Json(UserView::from(&user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Named {
    name: String,
}

/// Deletes a user: oneself, or anyone for an admin (users:manage on ""). Refused for the last
/// manager of an organisation (or the last AdminManager).
pub async fn delete(
    State(state): State<Arc<McState>>,
    principal: Principal,
    Json(req): Json<Named>,
) -> Result<Json<Value>, ApiError> {
    principal.require_password_login("delete users")?;
    let _serial = state.lock_mutations().await;
    let grants = state.grants();
    if !principal.name.eq_ignore_ascii_case(&req.name) {
        deny(enforce(
            &grants,
            Subject::User(&principal.name),
            "",
            Resource::Users,
            Action::Manage,
        ))?;
    }
    for g in state.store.grants_of_subject(&req.name).await? {
        let Ok(role) = g.role.parse::<Role>() else {
            continue;
        };
        if role.is_manager() && grants_holders(&state, &g.org, role).await? <= 1 {
            return Err(ApiError::bad_request(format!(
                "Error: Cannot delete the last remaining manager for the org {:?}",
                g.org
            )));
        }
    }
    if !state.store.delete_user(&req.name).await? {
        return Err(ApiError::not_found(format!(
            "user {:?} not found",
            req.name
        )));
    }
    state.refresh_grants().await?;
    Ok(message(format!("user {} deleted", req.name)))
}

/// How many users hold `role` in `org`, from the store (the rule must not rest on a stale
/// snapshot).
async fn grants_holders(state: &McState, org: &str, role: Role) -> Result<usize, ApiError> {
    let list = if org.is_empty() {
        state.store.grants().await?
    } else {
        state.store.grants_in_org(org).await?
    };
    Ok(list
        .iter()
        .filter(|g| g.org.eq_ignore_ascii_case(org) && g.role == role.as_str())
        .count())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPass {
    password: String,
}

/// Sets the caller's password (password logins only), with the admin strength rule for
/// anyone holding an admin role.
pub async fn newpass(
    State(state): State<Arc<McState>>,
    principal: Principal,
    Extension(_ctx): Extension<AuditCtx>,
    Json(req): Json<NewPass>,
) -> Result<Json<Value>, ApiError> {
    principal.require_password_login("change passwords")?;
    let admin = !state.grants().roles(&principal.name, "").is_empty();
    check_password(
        &req.password,
        admin,
        &[&principal.name],
        &state.config.strength,
    )
    .map_err(|e| ApiError::bad_request(format!("Invalid password: {e}")))?;
    let params = state.config.hash;
    let pw = req.password;
    let passhash = blocking(move || hash_password(&pw, params))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let update = UserUpdate {
        passhash: Some(passhash),
        ..UserUpdate::default()
    };
    state.store.update_user(&principal.name, &update).await?;
    Ok(message("password updated"))
}
