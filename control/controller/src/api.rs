//! The controller's operations (create / update / delete / show), shared by the gRPC API and
//! its REST mirror, and the gRPC service itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use edge_api::notify::Progress;
use edge_api::pb;
use edge_model::{Object, ObjectKey, ObjectKind, TrackedState};
use edge_store::{Revision, Store};
use futures::Stream;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::commit;
use crate::error::{ControlError, describe};
use crate::notify::Acks;
use crate::planner::{self, Region};
use crate::sync::Shared;

/// Everything an API call needs.
pub struct Core {
    pub store: Arc<dyn Store>,
    pub shared: Arc<Shared>,
    pub acks: Arc<Acks>,
    pub region: Region,
    /// How long a create/delete waits for the CRM before returning.
    pub settle_timeout: Duration,
}

/// Where a lifecycle ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    Ready,
    Gone,
    Failed(String),
    Pending(String),
}

impl Core {
    pub async fn create(&self, obj: Object) -> Result<Revision, ControlError> {
        let what = format!("create {}", describe(&obj.key()));
        commit::execute(self.store.as_ref(), &self.shared, &what, |m| {
            planner::create(m, obj.clone(), &self.region)
        })
        .await
    }

    pub async fn update(&self, obj: Object, fields: &[String]) -> Result<Revision, ControlError> {
        let what = format!("update {}", describe(&obj.key()));
        commit::execute(self.store.as_ref(), &self.shared, &what, |m| {
            planner::update(m, &obj, fields)
        })
        .await
    }

    /// Relays an operator request to the connected DMEs; how many it reached.
    pub fn relay(&self, req: pb::RelayRequest) -> Result<u32, ControlError> {
        let r = req
            .request
            .ok_or_else(|| ControlError::Invalid("request: required".into()))?;
        let r = edge_api::notify::Request::try_from(r)
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        let edge_api::notify::Request::AppInstLatency(key) = &r;
        let exists = self
            .shared
            .read()
            .0
            .get(&ObjectKey::AppInst(key.clone()))
            .is_some();
        if !exists {
            return Err(ControlError::NotFound(format!("AppInst {key} not found")));
        }
        Ok(u32::try_from(self.shared.relay(r)).unwrap_or(u32::MAX))
    }

    pub async fn delete(&self, key: &ObjectKey) -> Result<Revision, ControlError> {
        let what = format!("delete {}", describe(key));
        commit::execute(self.store.as_ref(), &self.shared, &what, |m| {
            planner::delete(m, key)
        })
        .await
    }

    /// Objects matching the filter, parents first.
    pub fn show(
        &self,
        kind: Option<ObjectKind>,
        key: Option<&ObjectKey>,
        org: Option<&str>,
    ) -> Vec<Object> {
        let st = self.shared.read();
        let matches = |o: &&Object| {
            kind.is_none_or(|k| o.kind() == k) && org.is_none_or(|org| organization(o) == Some(org))
        };
        // One key is one lookup, not a scan of the region (apply reads objects one by one).
        let mut out: Vec<Object> = match key {
            Some(k) => {
                st.0.get(k)
                    .map(|s| &s.object)
                    .filter(matches)
                    .cloned()
                    .into_iter()
                    .collect()
            }
            None => {
                st.0.all()
                    .map(|(_, s)| &s.object)
                    .filter(matches)
                    .cloned()
                    .collect()
            }
        };
        out.sort_by_key(|o| o.kind().dependency_rank());
        out
    }

    /// Waits until `key`'s lifecycle settles, reporting state changes and the CRM's progress
    /// lines (from `crm`, subscribed before the operation was committed) to `progress`.
    pub async fn settle(
        &self,
        key: &ObjectKey,
        mut crm: broadcast::Receiver<Progress>,
        progress: &mpsc::Sender<String>,
    ) -> Settled {
        let mut rx = self.shared.subscribe();
        let deadline = tokio::time::Instant::now() + self.settle_timeout;
        let mut last: Option<TrackedState> = None;
        // The reason the CRM gave for a failure: a failed create is undone (the object goes),
        // so this is what tells the caller it failed, and why.
        let mut failure: Option<String> = None;
        loop {
            let state = {
                let st = self.shared.read();
                match st.0.get(key).map(|s| &s.object) {
                    None => {
                        return match failure {
                            Some(why) => Settled::Failed(format!("{}: {why}", describe(key))),
                            None => Settled::Gone,
                        };
                    }
                    Some(Object::AppInst(i)) => i.state,
                    Some(Object::ClusterInst(c)) => c.state,
                    Some(_) => return Settled::Ready,
                }
            };
            if last != Some(state) {
                let _ = progress
                    .send(format!("{}: {}", describe(key), state.wire_name()))
                    .await;
                last = Some(state);
            }
            match state {
                TrackedState::Ready if failure.is_none() => return Settled::Ready,
                TrackedState::Ready
                | TrackedState::CreateError
                | TrackedState::UpdateError
                | TrackedState::DeleteError => {
                    let why = failure.unwrap_or_else(|| format!("ended in {}", state.wire_name()));
                    return Settled::Failed(format!("{}: {why}", describe(key)));
                }
                _ => {}
            }
            tokio::select! {
                changed = tokio::time::timeout_at(deadline, rx.changed()) => {
                    if changed.is_err() {
                        return Settled::Pending(format!(
                            "{} is still {}: waiting for the cloudlet's CRM",
                            describe(key),
                            state.wire_name()
                        ));
                    }
                }
                line = crm.recv() => match line {
                    Ok(p) if p.key == *key => {
                        if p.error {
                            failure = Some(p.message.clone());
                        }
                        let _ = progress.send(format!("{}: {}", describe(key), p.message)).await;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        crm = self.shared.progress();
                    }
                },
            }
        }
    }
}

fn organization(o: &Object) -> Option<&str> {
    match o {
        Object::OperatorCode(c) => Some(&c.organization),
        Object::Cloudlet(c) => Some(&c.key.organization),
        Object::CloudletInfo(c) => Some(&c.key.organization),
        Object::App(a) => Some(&a.key.organization),
        Object::ClusterInst(c) => Some(&c.key.organization),
        Object::AppInst(i) => Some(&i.key.organization),
        Object::Flavor(_) | Object::Settings(_) => None,
    }
}

/// The gRPC service.
pub struct ControllerService(pub Arc<Core>);

/// Who made a request, for the log: the verified certificate identity of the caller and, for
/// the MC, the user it speaks for ([`edge_api::CALLER_HEADER`]); over plaintext, the address.
pub fn caller<T>(req: &Request<T>) -> String {
    let info = req.extensions().get::<edge_tls::serve::ConnInfo>();
    let Some(peer) = info.and_then(|i| i.peer.as_ref()) else {
        return match req.remote_addr() {
            Some(a) => format!("plaintext client {a}"),
            None => "plaintext client".into(),
        };
    };
    let speaks_for = req
        .metadata()
        .get(edge_api::CALLER_HEADER)
        .and_then(|v| v.to_str().ok());
    match speaks_for {
        Some(user) if peer.role == edge_tls::Role::Mc => format!("{user} via {peer}"),
        _ => peer.to_string(),
    }
}

type ProgressStream = Pin<Box<dyn Stream<Item = Result<pb::Progress, Status>> + Send>>;
type ObjectStream = Pin<Box<dyn Stream<Item = Result<pb::Object, Status>> + Send>>;

fn invalid(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
}

fn object_from(o: Option<pb::Object>) -> Result<Object, Status> {
    Object::try_from(o.ok_or_else(|| invalid("object: required"))?).map_err(invalid)
}

/// Runs a mutation and its settling in a task, streaming progress and a final `done`.
fn stream_op<F>(core: Arc<Core>, key: ObjectKey, op: F) -> ProgressStream
where
    F: Future<Output = Result<Revision, ControlError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        // Subscribed before the operation commits, so no line of the CRM's is missed.
        let crm = core.shared.progress();
        let rev = match op.await {
            Ok(rev) => rev,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        let (ptx, mut prx) = mpsc::channel::<String>(16);
        let forward = {
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(message) = prx.recv().await {
                    let _ = tx
                        .send(Ok(pb::Progress {
                            message,
                            done: false,
                            revision: 0,
                        }))
                        .await;
                }
            })
        };
        let settled = core.settle(&key, crm, &ptx).await;
        drop(ptx);
        let _ = forward.await;
        let last = match settled {
            Settled::Failed(msg) => Err(Status::aborted(msg)),
            Settled::Ready => Ok(format!("{}: done", describe(&key))),
            Settled::Gone => Ok(format!("{}: deleted", describe(&key))),
            Settled::Pending(msg) => Ok(msg),
        };
        let revision = core.shared.read().0.revision.max(rev);
        let _ = tx
            .send(last.map(|message| pb::Progress {
                message,
                done: true,
                revision,
            }))
            .await;
    });
    Box::pin(ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl pb::controller_server::Controller for ControllerService {
    type CreateStream = ProgressStream;
    type UpdateStream = ProgressStream;
    type DeleteStream = ProgressStream;
    type ShowStream = ObjectStream;

    async fn create(
        &self,
        req: Request<pb::CreateRequest>,
    ) -> Result<Response<ProgressStream>, Status> {
        let who = caller(&req);
        let obj = object_from(req.into_inner().object)?;
        let core = self.0.clone();
        let key = obj.key();
        tracing::info!(caller = %who, "create {}", describe(&key));
        Ok(Response::new(stream_op(core.clone(), key, async move {
            core.create(obj).await
        })))
    }

    async fn update(
        &self,
        req: Request<pb::UpdateRequest>,
    ) -> Result<Response<ProgressStream>, Status> {
        let who = caller(&req);
        let req = req.into_inner();
        let obj = object_from(req.object)?;
        edge_api::check_update_fields(obj.kind(), &req.fields).map_err(invalid)?;
        let core = self.0.clone();
        let key = obj.key();
        tracing::info!(caller = %who, "update {} {:?}", describe(&key), req.fields);
        let fields = req.fields;
        Ok(Response::new(stream_op(core.clone(), key, async move {
            core.update(obj, &fields).await
        })))
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteRequest>,
    ) -> Result<Response<ProgressStream>, Status> {
        let who = caller(&req);
        let key = req
            .into_inner()
            .key
            .ok_or_else(|| invalid("key: required"))?;
        let key = ObjectKey::try_from(key).map_err(invalid)?;
        tracing::info!(caller = %who, "delete {}", describe(&key));
        let core = self.0.clone();
        let k = key.clone();
        Ok(Response::new(stream_op(core.clone(), key, async move {
            core.delete(&k).await
        })))
    }

    async fn show(&self, req: Request<pb::ShowRequest>) -> Result<Response<ObjectStream>, Status> {
        let req = req.into_inner();
        let kind = edge_api::kind_filter(req.kind, "kind").map_err(invalid)?;
        let key = req
            .key
            .map(ObjectKey::try_from)
            .transpose()
            .map_err(invalid)?;
        let org = (!req.organization.is_empty()).then_some(req.organization.as_str());
        let objects = self.0.show(kind, key.as_ref(), org);
        let items: Vec<Result<pb::Object, Status>> =
            objects.iter().map(|o| Ok(pb::Object::from(o))).collect();
        Ok(Response::new(Box::pin(futures::stream::iter(items))))
    }

    async fn revision(
        &self,
        _req: Request<pb::RevisionRequest>,
    ) -> Result<Response<pb::RevisionReply>, Status> {
        let revision = self.0.shared.read().0.revision;
        Ok(Response::new(pb::RevisionReply { revision }))
    }

    async fn relay(
        &self,
        req: Request<pb::RelayRequest>,
    ) -> Result<Response<pb::RelayReply>, Status> {
        tracing::info!(caller = %caller(&req), "relay");
        let subscribers = self.0.relay(req.into_inner())?;
        Ok(Response::new(pb::RelayReply { subscribers }))
    }
}
