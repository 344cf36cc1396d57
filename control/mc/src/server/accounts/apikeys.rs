//! `/api/v1/auth/user/{create,show,delete}/apikey`: password logins only (403 for a key's
//! token: a leaked key cannot mint more). A key's permissions must be a subset of its
//! creator's in its organisation (403 naming what is not held).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::message;
use crate::auth::apikey::{generate, hash_secret};
use crate::model::{ApiKey, name_key};
use crate::rbac::{Action, KeyError, Resource, Subject, check_key_permissions, enforce, to_model};
use crate::server::audit::AuditCtx;
use crate::server::auth::Principal;
use crate::server::body::Json;
use crate::server::error::ApiError;
use crate::server::state::McState;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PermArg {
    resource: String,
    action: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCreate {
    org: String,
    #[serde(default)]
    description: String,
    permissions: Vec<PermArg>,
}

pub async fn create(
    State(state): State<Arc<McState>>,
    principal: Principal,
    Extension(ctx): Extension<AuditCtx>,
    Json(req): Json<KeyCreate>,
) -> Result<Json<Value>, ApiError> {
    principal.require_password_login("manage API keys")?;
    ctx.add_org(&req.org);
    let grants = state.grants();
    let requested: Vec<(&str, &str)> = req
        .permissions
        .iter()
        .map(|p| (p.resource.as_str(), p.action.as_str()))
        .collect();
    let perms = check_key_permissions(&grants, &principal.name, &req.org, &requested).map_err(
        |e| match e {
            KeyError::NotHeld(_) => ApiError::forbidden(e.to_string()),
            _ => ApiError::bad_request(e.to_string()),
        },
    )?;
    // Holding the permissions there means the caller may know whether the org exists.
    let org = state
        .org(&req.org)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("organisation {:?} not found", req.org)))?;
    if state.store.count_api_keys(&principal.name).await? >= state.config.max_api_keys {
        return Err(ApiError::bad_request(format!(
            "API key limit reached: at most {} per user",
            state.config.max_api_keys
        )));
    }
    let new = generate();
    let key = ApiKey {
        id: new.id.clone(),
        org: org.name,
        username: principal.name.clone(),
        description: req.description,
        secret_hash: hash_secret(&new.id, &new.secret),
        permissions: to_model(&perms),
        created_at: McState::now_secs(),
    };
    state.store.create_api_key(&key).await?;
    state.refresh_grants().await?;
    Ok(Json(json!({ "id": new.id, "apikey": new.secret })))
}

#[derive(Serialize)]
pub struct KeyView {
    id: String,
    org: String,
    username: String,
    description: String,
    permissions: Vec<PermArg>,
    created_at: i64,
}

pub async fn show(
    State(state): State<Arc<McState>>,
    principal: Principal,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    principal.require_password_login("manage API keys")?;
    let keys = state.store.api_keys_of_user(&principal.name).await?;
    Ok(Json(
        keys.into_iter()
            .map(|k| KeyView {
                id: k.id,
                org: k.org,
                username: k.username,
                description: k.description,
                permissions: k
                    .permissions
                    .into_iter()
                    .map(|(resource, action)| PermArg { resource, action })
                    .collect(),
                created_at: k.created_at,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyId {
    id: String,
}

/// Deletes one of the caller's keys (an admin may delete anyone's). Another user's key is
/// 404, as if it did not exist.
pub async fn delete(
    State(state): State<Arc<McState>>,
    principal: Principal,
    Extension(ctx): Extension<AuditCtx>,
    Json(req): Json<KeyId>,
) -> Result<Json<Value>, ApiError> {
    principal.require_password_login("manage API keys")?;
    let not_found = || ApiError::not_found(format!("API key {:?} not found", req.id));
    let key = state.store.api_key(&req.id).await?.ok_or_else(not_found)?;
    ctx.add_org(&key.org);
    let admin = enforce(
        &state.grants(),
        Subject::User(&principal.name),
        "",
        Resource::Users,
        Action::Manage,
    )
    .is_allowed();
    if name_key(&key.username) != name_key(&principal.name) && !admin {
        return Err(not_found());
    }
    if !state.store.delete_api_key(&key.id).await? {
        return Err(not_found());
    }
    state.refresh_grants().await?;
    Ok(message(format!("API key {} deleted", key.id)))
}
