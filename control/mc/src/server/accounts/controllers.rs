//! `/api/v1/auth/controller/{create,show,delete}`: the region registry. Managing it is for
//! admins (controllers:manage on ""); any logged-in user may list the regions, and sees the
//! addresses only with controllers:view (as upstream blanks them).

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{deny, message};
use crate::model::Controller;
use crate::rbac::{Action, Resource, enforce};
use crate::server::auth::Principal;
use crate::server::body::Json;
use crate::server::error::ApiError;
use crate::server::state::McState;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerView {
    region: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    notifyaddr: String,
}

fn may(state: &McState, principal: &Principal, action: Action) -> Result<(), ApiError> {
    deny(enforce(
        &state.grants(),
        principal.subject(),
        "",
        Resource::Controllers,
        action,
    ))
}

pub async fn create(
    State(state): State<Arc<McState>>,
    principal: Principal,
    Json(req): Json<ControllerView>,
) -> Result<Json<Value>, ApiError> {
    may(&state, &principal, Action::Manage)?;
    if req.region.trim().is_empty() || req.address.trim().is_empty() {
        return Err(ApiError::bad_request(
            "\"region\" and \"address\" must not be empty",
        ));
    }
    let c = Controller {
        region: req.region,
        address: req.address,
        notify_addr: req.notifyaddr,
    };
    state.store.create_controller(&c).await?;
    Ok(message(format!(
        "controller for region {} created",
        c.region
    )))
}

pub async fn show(
    State(state): State<Arc<McState>>,
    principal: Principal,
) -> Result<Json<Vec<ControllerView>>, ApiError> {
    let full = may(&state, &principal, Action::View).is_ok();
    let list = state.store.list_controllers().await?;
    Ok(Json(
        list.into_iter()
            .map(|c| ControllerView {
                region: c.region,
                address: if full { c.address } else { String::new() },
                notifyaddr: if full { c.notify_addr } else { String::new() },
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    region: String,
}

pub async fn delete(
    State(state): State<Arc<McState>>,
    principal: Principal,
    Json(req): Json<Region>,
) -> Result<Json<Value>, ApiError> {
    may(&state, &principal, Action::Manage)?;
    if !state.store.delete_controller(&req.region).await? {
        return Err(ApiError::not_found(format!(
            "controller for region {:?} not found",
            req.region
        )));
    }
    Ok(message(format!(
        "controller for region {} deleted",
        req.region
    )))
}
