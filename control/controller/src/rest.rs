//! The REST/JSON mirror of the controller API, for automation that speaks HTTP rather than gRPC.
//!
//! Every route is a `POST` whose body is the proto JSON (pbjson: proto field names, enums by
//! name, unknown fields rejected) of the matching gRPC request:
//!
//! | path | body | reply |
//! |---|---|---|
//! | `/api/v1/create` | `pb::CreateRequest` `{"object": {"cloudlet": {...}}}` | `{"messages": [..], "revision": N}` |
//! | `/api/v1/update` | `pb::UpdateRequest` `{"object": {..}, "fields": [..]}` | same |
//! | `/api/v1/delete` | `pb::DeleteRequest` `{"key": {"cloudlet": {..}}}` | same |
//! | `/api/v1/show` | `pb::ShowRequest` (empty body: everything) | `{"objects": [pb::Object..]}` |
//! | `/api/v1/revision` | empty or `{}` (GET also works) | `{"revision": N}` |
//!
//! A mutation answers once its lifecycle settled (the gRPC stream's progress messages, collected,
//! the last one being the gRPC stream's `done` message). `revision` is a JSON number here, not
//! the proto3 JSON string of a `uint64`, because it is this API's own reply shape and a number is
//! what `jq` users compare.
//!
//! Errors use grpc-gateway's body `{"error","code","message","details"}` and its gRPC → HTTP
//! status mapping, as the DME's REST front end does (400 invalid argument and failed
//! precondition, 404 not found, 409 already exists / aborted, 503 store unavailable).
//!
//! Every operation goes through [`Core`], exactly as the gRPC service does.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use edge_api::pb;
use edge_model::{Object, ObjectKey};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tonic::Code;

use crate::api::{Core, Settled};
use crate::error::{ControlError, describe};

/// Largest accepted request body: one object, or a show filter.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A failed request: a gRPC code and a message, rendered grpc-gateway style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestError {
    pub code: Code,
    pub message: String,
}

impl RestError {
    fn invalid(message: impl std::fmt::Display) -> Self {
        Self {
            code: Code::InvalidArgument,
            message: message.to_string(),
        }
    }
}

impl From<ControlError> for RestError {
    fn from(e: ControlError) -> Self {
        Self {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// grpc-gateway's mapping of gRPC codes to HTTP statuses (`edge_api::gateway`).
pub fn http_status(code: Code) -> StatusCode {
    StatusCode::from_u16(edge_api::gateway::http_status(code))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = edge_api::gateway::ErrorBody::new(self.code, &self.message);
        (http_status(self.code), axum::Json(body)).into_response()
    }
}

/// Decodes a proto-JSON body; an empty body is the default request where `empty_ok`.
fn decode<T: DeserializeOwned + Default>(body: &[u8], empty_ok: bool) -> Result<T, RestError> {
    if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    // axum's Json decoder reports the field path of type errors and unknown fields
    // (`object.cloudlet.location.colour: unknown field ...`), which plain serde_json does not.
    axum::Json::<T>::from_bytes(body)
        .map(|axum::Json(v)| v)
        .map_err(|e| {
            // Drop axum's own lead-in ("Failed to deserialize the JSON body into the target
            // type: "): ours says the same in fewer words.
            let text = e.body_text();
            let detail = match text.split_once(": ") {
                Some((lead, rest)) if lead.starts_with("Failed to") => rest,
                _ => text.as_str(),
            };
            RestError::invalid(format!("invalid JSON request body: {detail}"))
        })
}

fn object_from(o: Option<pb::Object>) -> Result<Object, RestError> {
    let o = o.ok_or_else(|| RestError::invalid("object: required"))?;
    Object::try_from(o).map_err(RestError::invalid)
}

#[derive(serde::Serialize)]
struct Done {
    messages: Vec<String>,
    revision: u64,
}

/// Waits for `key`'s lifecycle as the gRPC stream does, collecting its progress messages.
async fn settled(
    core: &Core,
    key: &ObjectKey,
    rev: u64,
    crm: tokio::sync::broadcast::Receiver<edge_api::notify::Progress>,
) -> Result<axum::Json<Done>, RestError> {
    let (tx, mut rx) = mpsc::channel::<String>(16);
    let settle = async move {
        let s = core.settle(key, crm, &tx).await;
        drop(tx);
        s
    };
    let collect = async {
        let mut out = Vec::new();
        while let Some(m) = rx.recv().await {
            out.push(m);
        }
        out
    };
    let (settled, mut messages) = tokio::join!(settle, collect);
    // The same final message as the gRPC stream's `done` progress.
    messages.push(match settled {
        Settled::Failed(message) => {
            return Err(RestError {
                code: Code::Aborted,
                message,
            });
        }
        Settled::Ready => format!("{}: done", describe(key)),
        Settled::Gone => format!("{}: deleted", describe(key)),
        Settled::Pending(msg) => msg,
    });
    let revision = core.shared.read().0.revision.max(rev);
    Ok(axum::Json(Done { messages, revision }))
}

async fn create(core: &Core, body: &[u8]) -> Result<axum::Json<Done>, RestError> {
    let req: pb::CreateRequest = decode(body, false)?;
    let obj = object_from(req.object)?;
    let key = obj.key();
    // Subscribed before the operation commits, so no line of the CRM's is missed.
    let crm = core.shared.progress();
    let rev = core.create(obj).await?;
    settled(core, &key, rev, crm).await
}

async fn update(core: &Core, body: &[u8]) -> Result<axum::Json<Done>, RestError> {
    let req: pb::UpdateRequest = decode(body, false)?;
    let obj = object_from(req.object)?;
    edge_api::check_update_fields(obj.kind(), &req.fields).map_err(RestError::invalid)?;
    let key = obj.key();
    // Subscribed before the operation commits, so no line of the CRM's is missed.
    let crm = core.shared.progress();
    let rev = core.update(obj, &req.fields).await?;
    settled(core, &key, rev, crm).await
}

async fn delete(core: &Core, body: &[u8]) -> Result<axum::Json<Done>, RestError> {
    let req: pb::DeleteRequest = decode(body, false)?;
    let key = req.key.ok_or_else(|| RestError::invalid("key: required"))?;
    let key = ObjectKey::try_from(key).map_err(RestError::invalid)?;
    // Subscribed before the operation commits, so no line of the CRM's is missed.
    let crm = core.shared.progress();
    let rev = core.delete(&key).await?;
    settled(core, &key, rev, crm).await
}

#[derive(serde::Serialize)]
struct Objects {
    objects: Vec<pb::Object>,
}

fn show(core: &Core, body: &[u8]) -> Result<axum::Json<Objects>, RestError> {
    let req: pb::ShowRequest = decode(body, true)?;
    let kind = edge_api::kind_filter(req.kind, "kind").map_err(RestError::invalid)?;
    let key = req
        .key
        .map(ObjectKey::try_from)
        .transpose()
        .map_err(RestError::invalid)?;
    let org = (!req.organization.is_empty()).then_some(req.organization.as_str());
    let objects = core.show(kind, key.as_ref(), org);
    Ok(axum::Json(Objects {
        objects: objects.iter().map(pb::Object::from).collect(),
    }))
}

#[derive(serde::Serialize)]
struct Revision {
    revision: u64,
}

fn revision(core: &Core, body: &[u8]) -> Result<axum::Json<Revision>, RestError> {
    let _: pb::RevisionRequest = decode(body, true)?;
    Ok(axum::Json(Revision {
        revision: core.shared.read().0.revision,
    }))
}

#[derive(serde::Serialize)]
struct Relayed {
    subscribers: u32,
}

fn relay(core: &Core, body: &[u8]) -> Result<axum::Json<Relayed>, RestError> {
    let req: pb::RelayRequest = decode(body, false)?;
    Ok(axum::Json(Relayed {
        subscribers: core.relay(req)?,
    }))
}

fn respond<T: IntoResponse>(r: Result<T, RestError>) -> Response {
    r.map_or_else(IntoResponse::into_response, IntoResponse::into_response)
}

/// The REST router over `core`.
pub fn router(core: Arc<Core>) -> Router {
    type S = State<Arc<Core>>;
    Router::new()
        .route(
            "/api/v1/create",
            post(|State(c): S, b: Bytes| async move { respond(create(&c, &b).await) }),
        )
        .route(
            "/api/v1/update",
            post(|State(c): S, b: Bytes| async move { respond(update(&c, &b).await) }),
        )
        .route(
            "/api/v1/delete",
            post(|State(c): S, b: Bytes| async move { respond(delete(&c, &b).await) }),
        )
        .route(
            "/api/v1/show",
            post(|State(c): S, b: Bytes| async move { respond(show(&c, &b)) }),
        )
        .route(
            "/api/v1/revision",
            post(|State(c): S, b: Bytes| async move { respond(revision(&c, &b)) })
                .get(|State(c): S| async move { respond(revision(&c, b"")) }),
        )
        .route(
            "/api/v1/relay",
            post(|State(c): S, b: Bytes| async move { respond(relay(&c, &b)) }),
        )
        .fallback(|| async {
            RestError {
                code: Code::NotFound,
                message: "no such API path".into(),
            }
            .into_response()
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(core)
}

/// Serves the REST mirror on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Option<edge_tls::MtlsServer>,
    core: Arc<Core>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(tls) = tls else {
        return axum::serve(listener, router(core))
            .with_graceful_shutdown(shutdown)
            .await;
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let conns = edge_tls::serve::accept(listener, edge_tls::serve::Acceptor::Mtls(tls), rx)?;
    axum::serve(conns, router(core))
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = tx.send(true);
        })
        .await
}
