//! The controller's gRPC service (`edgeplane.v1.Controller`) served by the MC on its own
//! listener, so `edgectl` and other gRPC clients work through the MC unchanged: the token in
//! `authorization: Bearer <token>` metadata, the region in `x-edgeplane-region` (default: the
//! only registered region), the same authorisation, forwarding and filtering as the REST face.

use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use edge_api::pb::{self, controller_server::ControllerServer};
use futures::Stream;
use serde_json::Value;
use tonic::codegen::Service;
use tonic::{Code, Status};

use super::forward::{self, Mutation, PendingAudit};
use crate::model::Controller;
use crate::server::audit::{RemoteAddr, SelfRecorded, redact};
use crate::server::auth::Principal;
use crate::server::error::ApiError;
use crate::server::state::McState;

/// The metadata naming the region a call is for.
pub const REGION_HEADER: &str = "x-edgeplane-region";

/// Serves one gRPC call of the controller's service. The calls record themselves in the audit
/// log (their status is in the trailers, after the response's head).
pub async fn handle(State(state): State<Arc<McState>>, req: Request) -> Response {
    let mut svc = ControllerServer::new(McController { state });
    let resp = match svc.call(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let mut resp = resp.map(Body::new);
    resp.extensions_mut().insert(SelfRecorded);
    resp
}

/// An MC error as a gRPC status: 401 and 403 as UNAUTHENTICATED and PERMISSION_DENIED with
/// the same message, the rest by grpc-gateway's mapping read backwards.
pub fn to_status(e: &ApiError) -> Status {
    let code = match e.status.as_u16() {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::AlreadyExists,
        413 | 429 => Code::ResourceExhausted,
        499 => Code::Cancelled,
        502 | 503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        501 => Code::Unimplemented,
        _ => Code::Internal,
    };
    Status::new(code, e.message.clone())
}

pub struct McController {
    state: Arc<McState>,
}

type Progress = Pin<Box<dyn Stream<Item = Result<pb::Progress, Status>> + Send>>;
type Objects = Pin<Box<dyn Stream<Item = Result<pb::Object, Status>> + Send>>;

/// Who calls, for which region, from where.
struct Call {
    principal: Principal,
    controller: Controller,
    remote: String,
}

impl McController {
    async fn call<T>(&self, req: &tonic::Request<T>) -> Result<Call, ApiError> {
        let principal = authenticate(&self.state, req.metadata())?;
        let region = match req.metadata().get(REGION_HEADER) {
            Some(v) => v
                .to_str()
                .map_err(|_| ApiError::bad_request(format!("{REGION_HEADER}: not text")))?
                .to_string(),
            None => self.state.regions.only_region().await?,
        };
        let controller = self.state.regions.controller(&region).await?;
        let remote = req
            .extensions()
            .get::<ConnectInfo<RemoteAddr>>()
            .map(|c| c.0.0.to_string())
            .unwrap_or_default();
        Ok(Call {
            principal,
            controller,
            remote,
        })
    }

    /// A mutation: authorised, started, its progress relayed; recorded in the audit log when
    /// it ends (or is refused).
    async fn mutate<T: serde::Serialize>(
        &self,
        req: tonic::Request<T>,
        op: &str,
        to_mutation: impl FnOnce(T) -> Result<Mutation, ApiError>,
    ) -> Result<tonic::Response<Progress>, Status> {
        let call = self.call(&req).await;
        let request = serde_json::to_value(req.get_ref())
            .map(|v| redact(&v).to_string())
            .unwrap_or_default();
        let mut audit = PendingAudit {
            user: String::new(),
            orgs: Vec::new(),
            operation: format!("/edgeplane.v1.Controller/{op}"),
            request,
            remote: String::new(),
        };
        let started = match call {
            Ok(call) => {
                audit.user = call.principal.audit_name();
                audit.remote = call.remote.clone();
                let m = to_mutation(req.into_inner());
                match m {
                    Ok(m) => forward::mutate(
                        &self.state,
                        &call.principal,
                        &call.controller,
                        m,
                        &mut audit.orgs,
                    )
                    .await
                    .map(|s| (s, call.controller)),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match started {
            Ok((stream, c)) => {
                let rx = forward::spawn_progress(self.state.clone(), c, stream, audit);
                let out = futures::stream::unfold(rx, |mut rx| async move {
                    let item = rx.recv().await?;
                    Some((item.map_err(|e| to_status(&e)), rx))
                });
                Ok(tonic::Response::new(Box::pin(out)))
            }
            Err(e) => {
                audit
                    .finish(&self.state, e.status.as_u16(), e.message.clone())
                    .await;
                Err(to_status(&e))
            }
        }
    }
}

/// The principal a call's bearer token names (401 without one).
fn authenticate(state: &McState, md: &tonic::metadata::MetadataMap) -> Result<Principal, ApiError> {
    let v = md
        .get("authorization")
        .ok_or_else(|| ApiError::unauthorized("no bearer token found"))?;
    let v = v
        .to_str()
        .map_err(|_| ApiError::unauthorized("authorization: not text"))?;
    let token = v
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("no bearer token found"))?;
    state.authenticate(token)
}

fn required<T>(v: Option<T>, what: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::bad_request(format!("{what}: required")))
}

#[tonic::async_trait]
impl pb::controller_server::Controller for McController {
    type CreateStream = Progress;
    type UpdateStream = Progress;
    type DeleteStream = Progress;
    type ShowStream = Objects;

    async fn create(
        &self,
        req: tonic::Request<pb::CreateRequest>,
    ) -> Result<tonic::Response<Progress>, Status> {
        self.mutate(req, "Create", |r| {
            Ok(Mutation::Create(required(r.object, "object")?))
        })
        .await
    }

    async fn update(
        &self,
        req: tonic::Request<pb::UpdateRequest>,
    ) -> Result<tonic::Response<Progress>, Status> {
        self.mutate(req, "Update", |r| {
            Ok(Mutation::Update(required(r.object, "object")?, r.fields))
        })
        .await
    }

    async fn delete(
        &self,
        req: tonic::Request<pb::DeleteRequest>,
    ) -> Result<tonic::Response<Progress>, Status> {
        self.mutate(req, "Delete", |r| {
            Ok(Mutation::Delete(required(r.key, "key")?))
        })
        .await
    }

    async fn show(
        &self,
        req: tonic::Request<pb::ShowRequest>,
    ) -> Result<tonic::Response<Objects>, Status> {
        let call = self.call(&req).await.map_err(|e| to_status(&e))?;
        let objects = forward::show(
            &self.state,
            &call.principal,
            &call.controller,
            req.into_inner(),
        )
        .await
        .map_err(|e| to_status(&e))?;
        let out = futures::stream::iter(objects.into_iter().map(Ok));
        Ok(tonic::Response::new(Box::pin(out)))
    }

    async fn revision(
        &self,
        req: tonic::Request<pb::RevisionRequest>,
    ) -> Result<tonic::Response<pb::RevisionReply>, Status> {
        let call = self.call(&req).await.map_err(|e| to_status(&e))?;
        forward::revision(&self.state, &call.principal, &call.controller)
            .await
            .map(tonic::Response::new)
            .map_err(|e| to_status(&e))
    }

    async fn relay(
        &self,
        req: tonic::Request<pb::RelayRequest>,
    ) -> Result<tonic::Response<pb::RelayReply>, Status> {
        let request: Value = serde_json::to_value(req.get_ref()).unwrap_or_default();
        let call = self.call(&req).await;
        let mut audit = PendingAudit {
            user: String::new(),
            orgs: Vec::new(),
            operation: "/edgeplane.v1.Controller/Relay".into(),
            request: redact(&request).to_string(),
            remote: String::new(),
        };
        let r = match call {
            Ok(call) => {
                audit.user = call.principal.audit_name();
                audit.remote = call.remote;
                forward::relay(
                    &self.state,
                    &call.principal,
                    &call.controller,
                    req.into_inner(),
                    &mut audit.orgs,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let (status, error) = match &r {
            Ok(_) => (200, String::new()),
            Err(e) => (e.status.as_u16(), e.message.clone()),
        };
        audit.finish(&self.state, status, error).await;
        r.map(tonic::Response::new).map_err(|e| to_status(&e))
    }
}
