//! The one path both faces of the region API take: authorise, call the region's controller
//! with the caller named, map its refusals, stream mutations' progress (and record them in the
//! audit log when they end), filter shows.

use std::sync::Arc;

use axum::http::StatusCode;
use edge_api::pb::{self, object::Obj, object_key::Key};
use futures::StreamExt;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::authz::{self, Orgs, ShowScope};
use crate::model::{AuditEntry, Controller, name_key};
use crate::rbac::Action;
use crate::server::auth::Principal;
use crate::server::error::ApiError;
use crate::server::state::McState;

/// Whom the MC speaks for, as the controller logs it ([`edge_api::CALLER_HEADER`]).
pub fn caller(p: &Principal) -> String {
    match &p.key {
        Some(k) => format!("apikey:{} (user:{})", k.id, p.name),
        None => format!("user:{}", p.name),
    }
}

/// `req` with the caller header set (a value that is not valid metadata is left out: names
/// are checked at creation, so that does not happen).
pub fn with_caller<T>(mut req: tonic::Request<T>, caller: &str) -> tonic::Request<T> {
    if let Ok(v) = caller.parse() {
        req.metadata_mut().insert(edge_api::CALLER_HEADER, v);
    }
    req
}

/// A refusal or failure of the controller as the MC answers it: transport failures (the
/// controller down, a TLS refusal) are 502 naming the region and the cause; the controller's
/// own statuses keep their meaning (grpc-gateway's mapping).
pub fn upstream_error(c: &Controller, s: &Status) -> ApiError {
    use std::error::Error;
    // The controller's own statuses come over the wire and have no source; tonic attaches
    // the transport error to the ones it makes itself.
    if s.source().is_some() || (s.code() == tonic::Code::Unavailable && s.message().is_empty()) {
        let mut cause = s.message().to_string();
        let mut src = s.source();
        while let Some(e) = src {
            cause.push_str(&format!(": {e}"));
            src = e.source();
        }
        return ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "controller of region {} at {} unreachable: {cause}",
                c.region, c.address
            ),
        );
    }
    let status = StatusCode::from_u16(edge_api::gateway::http_status(s.code()))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::new(status, s.message())
}

/// The organisations named, as the store has them (unknown ones are left out).
async fn lookup(state: &McState, names: &[&str]) -> Result<Orgs, ApiError> {
    let mut orgs = Orgs::new();
    for n in names.iter().filter(|n| !n.is_empty()) {
        if let Some(o) = state.org(n).await? {
            orgs.insert(name_key(n), o);
        }
    }
    Ok(orgs)
}

/// A change asked of a region.
#[derive(Clone, Debug)]
pub enum Mutation {
    Create(pb::Object),
    Update(pb::Object, Vec<String>),
    Delete(pb::ObjectKey),
}

/// The organisation that owns an operator code now (`None`: no such code). Its key is the code
/// alone, so only the stored object says whose it is.
async fn code_owner(
    client: &mut pb::controller_client::ControllerClient<tonic::transport::Channel>,
    c: &Controller,
    code: &str,
    caller: &str,
) -> Result<Option<String>, ApiError> {
    let req = pb::ShowRequest {
        kind: pb::ObjectKind::OperatorCode as i32,
        key: Some(pb::ObjectKey {
            key: Some(Key::OperatorCode(pb::OperatorCodeKey { code: code.into() })),
        }),
        organization: String::new(),
    };
    let mut s = client
        .show(with_caller(tonic::Request::new(req), caller))
        .await
        .map_err(|s| upstream_error(c, &s))?
        .into_inner();
    while let Some(o) = s.next().await {
        if let Some(Obj::OperatorCode(oc)) = o.map_err(|s| upstream_error(c, &s))?.obj {
            return Ok(Some(oc.organization));
        }
    }
    Ok(None)
}

/// The authorisation request of a mutation (looking up an operator code's owner).
async fn request_of(
    m: &Mutation,
    client: &mut pb::controller_client::ControllerClient<tonic::transport::Channel>,
    c: &Controller,
    caller: &str,
) -> Result<authz::Request, ApiError> {
    let code = |o: &pb::Object| match &o.obj {
        Some(Obj::OperatorCode(oc)) => Some(oc.code.clone()),
        _ => None,
    };
    match m {
        Mutation::Create(o) => authz::manage_object(o, None),
        Mutation::Update(o, _) => {
            let current = match code(o) {
                Some(code) => code_owner(client, c, &code, caller).await?,
                None => None,
            };
            authz::manage_object(o, current)
        }
        Mutation::Delete(k) => {
            let (kind, org) = authz::key_org_of(k)
                .ok_or_else(|| ApiError::bad_request("key: required, with one kind"))?;
            let org = match (org, &k.key) {
                (Some(org), _) => org.to_string(),
                (None, Some(Key::OperatorCode(oc))) => code_owner(client, c, &oc.code, caller)
                    .await?
                    .ok_or_else(|| {
                        ApiError::not_found(format!("OperatorCode {} not found", oc.code))
                    })?,
                (None, _) => return Err(ApiError::bad_request("key: required")),
            };
            Ok(authz::Request {
                action: Action::Manage,
                kind,
                org,
                app_org: String::new(),
                current_org: None,
            })
        }
    }
}

/// Authorises `m` for `p` and starts it on `c`'s controller: its progress stream, and the
/// organisations concerned (for the audit log), which are known even when it is refused.
pub async fn mutate(
    state: &McState,
    p: &Principal,
    c: &Controller,
    m: Mutation,
    orgs_out: &mut Vec<String>,
) -> Result<Streaming<pb::Progress>, ApiError> {
    let mut client = state.regions.client(c)?;
    let who = caller(p);
    let req = request_of(&m, &mut client, c, &who).await?;
    for o in [&req.org, &req.app_org]
        .into_iter()
        .chain(req.current_org.as_ref())
    {
        if !o.is_empty() && !orgs_out.iter().any(|x| x.eq_ignore_ascii_case(o)) {
            orgs_out.push(o.clone());
        }
    }
    let names: Vec<&str> = orgs_out.iter().map(String::as_str).collect();
    let orgs = lookup(state, &names).await?;
    authz::authorize(&state.grants(), p.subject(), &req, &orgs)?;
    let call = match m {
        Mutation::Create(o) => {
            let r = pb::CreateRequest { object: Some(o) };
            client
                .create(with_caller(tonic::Request::new(r), &who))
                .await
        }
        Mutation::Update(o, fields) => {
            let r = pb::UpdateRequest {
                object: Some(o),
                fields,
            };
            client
                .update(with_caller(tonic::Request::new(r), &who))
                .await
        }
        Mutation::Delete(k) => {
            let r = pb::DeleteRequest { key: Some(k) };
            client
                .delete(with_caller(tonic::Request::new(r), &who))
                .await
        }
    };
    call.map(tonic::Response::into_inner)
        .map_err(|s| upstream_error(c, &s))
}

/// An audit entry waiting for its mutation's outcome.
pub struct PendingAudit {
    pub user: String,
    pub orgs: Vec<String>,
    pub operation: String,
    /// Already redacted.
    pub request: String,
    pub remote: String,
}

impl PendingAudit {
    pub async fn finish(self, state: &McState, status: u16, error: String) {
        state
            .audit(AuditEntry {
                seq: 0,
                time_ms: McState::now_ms(),
                username: self.user,
                orgs: self.orgs,
                operation: self.operation,
                request: self.request,
                status,
                error,
                remote: self.remote,
            })
            .await;
    }
}

/// Relays the controller's progress in a task: each line, then the outcome (an error item
/// ends the channel: the controller's refusal, a broken stream, or a stream that ended
/// without its final `done` message). The mutation is recorded in the audit log at its end.
pub fn spawn_progress(
    state: Arc<McState>,
    c: Controller,
    mut stream: Streaming<pb::Progress>,
    audit: PendingAudit,
) -> mpsc::Receiver<Result<pb::Progress, ApiError>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut outcome = Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "controller of region {} ended the stream without a result",
                c.region
            ),
        ));
        while let Some(item) = stream.next().await {
            match item {
                Ok(p) => {
                    let done = p.done;
                    // A caller who went away does not stop the change: keep reading.
                    let _ = tx.send(Ok(p)).await;
                    if done {
                        outcome = Ok(());
                        break;
                    }
                }
                Err(s) => {
                    outcome = Err(upstream_error(&c, &s));
                    break;
                }
            }
        }
        let (status, error) = match &outcome {
            Ok(()) => (200, String::new()),
            Err(e) => (e.status.as_u16(), e.message.clone()),
        };
        if let Err(e) = outcome {
            let _ = tx.send(Err(e)).await;
        }
        audit.finish(&state, status, error).await;
    });
    rx
}

/// The objects `req` selects that `p` may view. A show of a kind `p` may view nowhere is 403.
pub async fn show(
    state: &McState,
    p: &Principal,
    c: &Controller,
    req: pb::ShowRequest,
) -> Result<Vec<pb::Object>, ApiError> {
    let kind = pb::ObjectKind::try_from(req.kind)
        .map_err(|_| ApiError::bad_request(format!("kind: unknown value {}", req.kind)))?;
    let all: Orgs = state
        .store
        .list_orgs()
        .await?
        .into_iter()
        .map(|o| (name_key(&o.name), o))
        .collect();
    let scope = ShowScope::new(&state.grants(), p.subject(), &all);
    if !scope.any(kind) {
        let resource =
            authz::resource(kind, Action::View).map_or("objects".into(), |r| r.to_string());
        return Err(ApiError::forbidden(format!(
            "Forbidden: {} lacks {resource}:view in every organisation",
            p.subject()
        )));
    }
    let mut client = state.regions.client(c)?;
    let mut s = client
        .show(with_caller(tonic::Request::new(req), &caller(p)))
        .await
        .map_err(|s| upstream_error(c, &s))?
        .into_inner();
    let mut out = Vec::new();
    while let Some(o) = s.next().await {
        let o = o.map_err(|s| upstream_error(c, &s))?;
        if scope.allows(&o) {
            out.push(o);
        }
    }
    Ok(out)
}

/// The authorisation of a relayed request: manage on the instance's app instances.
pub async fn relay(
    state: &McState,
    p: &Principal,
    c: &Controller,
    req: pb::RelayRequest,
    orgs_out: &mut Vec<String>,
) -> Result<pb::RelayReply, ApiError> {
    let key = req.request.as_ref().and_then(|r| r.key.as_ref());
    let org = match key.and_then(authz::key_org_of) {
        Some((pb::ObjectKind::AppInst, Some(org))) => org.to_string(),
        _ => {
            return Err(ApiError::bad_request(
                "request.key: an app instance's key is required",
            ));
        }
    };
    orgs_out.push(org.clone());
    let orgs = lookup(state, &[&org]).await?;
    let areq = authz::Request {
        action: Action::Manage,
        kind: pb::ObjectKind::AppInst,
        org,
        app_org: String::new(),
        current_org: None,
    };
    authz::authorize(&state.grants(), p.subject(), &areq, &orgs)?;
    let mut client = state.regions.client(c)?;
    client
        .relay(with_caller(tonic::Request::new(req), &caller(p)))
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| upstream_error(c, &s))
}

/// The region's store revision (any logged-in user: it reveals nothing of any organisation).
pub async fn revision(
    state: &McState,
    p: &Principal,
    c: &Controller,
) -> Result<pb::RevisionReply, ApiError> {
    let mut client = state.regions.client(c)?;
    client
        .revision(with_caller(
            tonic::Request::new(pb::RevisionRequest {}),
            &caller(p),
        ))
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| upstream_error(c, &s))
}
