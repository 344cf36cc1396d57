//! CAMARA Edge Application Management 0.1.0-alpha.1 on the MC, under
//! `/edge-application-management/v0.1alpha1`: the region API's apps, app instances and
//! cloudlets seen as CAMARA's applications, application instances and edge cloud zones.
//!
//! Every request carries an access token of this MC (`oauth`); it names an API key, whose
//! principal the request runs as, through the region API's own path ([`forward`]: the same
//! authorisation, `x-edgeplane-caller`, filtering and audit), so the token's scope is needed
//! on top of exactly the permissions the native API asks for. Errors are CAMARA's
//! `{status, code, message}`; `x-correlator` is checked against the spec's pattern (400
//! otherwise) and echoed in every response.
//!
//! # Regions
//! A zone is a cloudlet of some region; its id says which. An application is created in every
//! registered region (an instance can then be put on any zone), listed once (from the first
//! region that has it) and deleted from every region that has it. Instances are listed from
//! every region, or the one named by `region`.
//!
//! # Layout
//! `auth`: the caller, body and query parsing; `error`: the error body; `apps`, `instances`,
//! `zones`, `clusters`: the operations; `deployments`: not implemented (POST answers the
//! documented 501, so the list is empty and every id is 404).

pub mod apps;
pub mod auth;
pub mod clusters;
pub mod deployments;
pub mod error;
pub mod instances;
pub mod zones;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use edge_api::pb;
use serde_json::Value;

use self::auth::Caller;
use self::error::CamaraError;
use super::audit::redact;
use super::region::forward::{self, Mutation, PendingAudit};
use super::state::McState;
use crate::model::Controller;

pub const BASE: &str = "/edge-application-management/v0.1alpha1";
use edge_auth::camara::X_CORRELATOR as CORRELATOR;

/// How long an instance's create or delete is waited for before 202 is answered: long enough
/// for the controller to accept or refuse it (its refusals come at once), not for the CRM.
const ACCEPT_WAIT: Duration = Duration::from_secs(5);

pub fn routes() -> axum::Router<Arc<McState>> {
    let p = |s: &str| format!("{BASE}{s}");
    axum::Router::new()
        .route(&p("/apps"), post(apps::submit).get(apps::list))
        .route(
            &p("/apps/{app_id}"),
            get(apps::get_one).delete(apps::delete),
        )
        .route(
            &p("/appinstances"),
            post(instances::create).get(instances::list),
        )
        .route(&p("/appinstances/{id}"), delete(instances::delete))
        .route(&p("/edge-cloud-zones"), get(zones::list))
        .route(&p("/clusters"), get(clusters::list))
        .route(
            &p("/deployments"),
            post(deployments::create).get(deployments::list),
        )
        .route(
            &p("/deployments/{id}"),
            delete(deployments::delete).patch(deployments::update),
        )
        .route(&p("/{*rest}"), any(no_such_path))
        .layer(axum::middleware::from_fn(correlator))
}

async fn no_such_path() -> CamaraError {
    CamaraError::not_found("no such path in Edge Application Management v0.1alpha1")
}

/// Checks `x-correlator` and echoes it in the response (an invalid one is refused, not
/// echoed).
async fn correlator(req: Request, next: Next) -> Response {
    let given: Option<HeaderValue> = req.headers().get(CORRELATOR).cloned();
    if let Some(v) = &given
        && !edge_auth::camara::valid_correlator(v.as_bytes())
    {
        // Read the body first (bounded): a reply before the client finished sending would
        // reset a connection still carrying a large body, and the client would see no 400.
        let _ = axum::body::to_bytes(req.into_body(), crate::server::MAX_BODY).await;
        return CamaraError::invalid("x-correlator: must match ^[a-zA-Z0-9-_:;.\\/<>{}]{0,256}$")
            .into_response();
    }
    let mut resp = next.run(req).await;
    if let Some(v) = given {
        resp.headers_mut().insert(CORRELATOR, v);
    }
    resp
}

/// The registered regions, or only `name` (none when no region has that name: a filter that
/// matches nothing).
async fn regions(state: &McState, name: Option<&str>) -> Result<Vec<Controller>, CamaraError> {
    let all = state.store.list_controllers().await?;
    Ok(all
        .into_iter()
        .filter(|c| name.is_none_or(|n| c.region == n))
        .collect())
}

/// The objects of `kind` of `org` ("" for any) in region `c` that the caller may view.
async fn show(
    state: &McState,
    caller: &Caller,
    c: &Controller,
    kind: pb::ObjectKind,
    org: &str,
) -> Result<Vec<pb::Object>, CamaraError> {
    let req = pb::ShowRequest {
        kind: kind as i32,
        key: None,
        organization: org.to_string(),
    };
    Ok(forward::show(state, &caller.principal, c, req).await?)
}

/// How long a mutation is waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// Until it ends (apps: no CRM, it ends at once).
    Done,
    /// Until the controller refused it or [`ACCEPT_WAIT`] passed (instances: 202).
    Accepted,
}

/// Runs `m` in region `c` as the caller, through the region API's path (authorisation,
/// audit entry when it ends, recorded under `operation` with `request` redacted). `conflict`
/// is the code of a 409.
async fn mutate(
    state: &Arc<McState>,
    caller: &Caller,
    c: Controller,
    m: Mutation,
    (operation, request): (&str, &Value),
    (wait, conflict): (Wait, &'static str),
) -> Result<(), CamaraError> {
    let mut orgs = Vec::new();
    let stream = forward::mutate(state, &caller.principal, &c, m, &mut orgs)
        .await
        .map_err(|e| CamaraError::from_api(e, conflict))?;
    let audit = PendingAudit {
        user: caller.principal.audit_name(),
        orgs,
        operation: operation.to_string(),
        request: redact(request).to_string(),
        remote: caller.remote.clone(),
    };
    let mut rx = forward::spawn_progress(state.clone(), c, stream, audit);
    let failed = |e| CamaraError::from_api(e, conflict).recorded();
    match wait {
        Wait::Done => loop {
            match rx.recv().await {
                Some(Ok(p)) if p.done => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(failed(e)),
                None => {
                    return Err(CamaraError::new(
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        "INTERNAL",
                        "the change ended without a result",
                    ));
                }
            }
        },
        // The progress task keeps reading (and audits) after this returns.
        Wait::Accepted => match tokio::time::timeout(ACCEPT_WAIT, rx.recv()).await {
            Ok(Some(Err(e))) => Err(failed(e)),
            _ => Ok(()),
        },
    }
}

/// A response with the audit entries of its mutations already written.
fn self_recorded(mut resp: Response) -> Response {
    resp.extensions_mut().insert(super::audit::SelfRecorded);
    resp
}
