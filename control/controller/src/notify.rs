//! The notify server: pushes the model to subscribers (DME, root LB, CRM). On connect a
//! subscriber gets every object it wants, parents first, then SNAPSHOT_END (it prunes what was
//! not re-sent); afterwards coalesced changes: each changed key's current value (UPDATE) or its
//! absence (DELETE), updates parents-first and deletes children-first. Subscribers acknowledge
//! the version they serve, so "visible in the DME" is observable ([`Acks`]).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use edge_api::notify::{Notice, Role, SubscriberMessage, Subscription};
use edge_api::pb;
use edge_model::{CloudletKey, Object, ObjectKey};
use edge_store::{Revision, Store};
use futures::Stream;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::model::Model;
use crate::reports;
use crate::sync::Shared;

/// Versions acknowledged by subscribers, by subscriber name.
#[derive(Default)]
pub struct Acks {
    by_name: Mutex<HashMap<String, Revision>>,
    changed: watch::Sender<u64>,
}

impl Acks {
    fn record(&self, name: &str, version: Revision) {
        self.by_name
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), version);
        self.changed.send_modify(|n| *n += 1);
    }

    /// The last version `name` acknowledged.
    pub fn get(&self, name: &str) -> Option<Revision> {
        self.by_name
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied()
    }

    /// Waits until `name` has acknowledged at least `version`.
    pub async fn wait_for(&self, name: &str, version: Revision) {
        let mut rx = self.changed.subscribe();
        loop {
            if self.get(name).is_some_and(|v| v >= version) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The gRPC notify service.
pub struct NotifyService {
    pub store: Arc<dyn Store>,
    pub shared: Arc<Shared>,
    pub acks: Arc<Acks>,
    next_id: std::sync::atomic::AtomicU64,
    lbs: Arc<RootLbs>,
}

/// Root LBs connected per cloudlet. When a cloudlet's last one has been gone for `grace`, the
/// instances it carried are marked `RootlbOffline` (clients cannot reach them, so the DME must
/// stop sending clients there); when one connects again, that mark is cleared.
pub struct RootLbs {
    connected: Mutex<HashMap<CloudletKey, usize>>,
    grace: Duration,
}

impl RootLbs {
    fn count(&self, c: &CloudletKey) -> usize {
        let map = self
            .connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(c).copied().unwrap_or(0)
    }

    fn connect(&self, c: &CloudletKey) {
        let mut map = self
            .connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *map.entry(c.clone()).or_default() += 1;
    }

    fn disconnect(&self, c: &CloudletKey) {
        let mut map = self
            .connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(c) {
            *n = n.saturating_sub(1);
        }
    }
}

impl NotifyService {
    /// A notify service; `rootlb_grace` is how long a cloudlet may be without a root LB before
    /// its instances are marked offline.
    pub fn new(
        store: Arc<dyn Store>,
        shared: Arc<Shared>,
        acks: Arc<Acks>,
        rootlb_grace: Duration,
    ) -> Self {
        Self {
            store,
            shared,
            acks,
            next_id: 1.into(),
            lbs: Arc::new(RootLbs {
                connected: Mutex::default(),
                grace: rootlb_grace,
            }),
        }
    }

    /// Tracks a root LB's connection; returns the cloudlet to release when it ends.
    fn lb_connected(&self, sub: &Subscription) -> Option<CloudletKey> {
        let cloudlet = sub
            .cloudlet_filter
            .clone()
            .filter(|_| sub.role == Role::RootLb)?;
        self.lbs.connect(&cloudlet);
        let (store, shared, c) = (self.store.clone(), self.shared.clone(), cloudlet.clone());
        tokio::spawn(async move {
            match reports::set_rootlb_presence(store.as_ref(), &shared, &c, false).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(cloudlet = %c, n, "root LB back: RootlbOffline cleared"),
                Err(e) => tracing::warn!(cloudlet = %c, error = %e, "clearing RootlbOffline"),
            }
        });
        Some(cloudlet)
    }
}

/// After a root LB's stream ends: if its cloudlet is still without one after the grace
/// period, marks the instances it carried `RootlbOffline`.
fn lb_gone(lbs: Arc<RootLbs>, store: Arc<dyn Store>, shared: Arc<Shared>, c: CloudletKey) {
    lbs.disconnect(&c);
    tokio::spawn(async move {
        tokio::time::sleep(lbs.grace).await;
        if lbs.count(&c) > 0 {
            return;
        }
        match reports::set_rootlb_presence(store.as_ref(), &shared, &c, true).await {
            Ok(n) => tracing::warn!(cloudlet = %c, n, "no root LB: instances marked RootlbOffline"),
            Err(e) => tracing::warn!(cloudlet = %c, error = %e, "marking RootlbOffline"),
        }
    });
}

type NoticeStream = Pin<Box<dyn Stream<Item = Result<pb::Notice, Status>> + Send>>;

#[tonic::async_trait]
impl pb::notify_server::Notify for NotifyService {
    type StreamStream = NoticeStream;

    async fn stream(
        &self,
        req: Request<Streaming<pb::SubscriberMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let mut inbound = req.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("stream closed before Subscribe"))?;
        let sub = match SubscriberMessage::try_from(first) {
            Ok(SubscriberMessage::Subscribe(s)) => s,
            Ok(_) => {
                return Err(Status::invalid_argument(
                    "the first message must be Subscribe",
                ));
            }
            Err(e) => return Err(Status::invalid_argument(e.to_string())),
        };
        let notify_id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(name = %sub.name, role = %sub.role, notify_id, "subscriber connected");
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(send_loop(self.shared.clone(), sub.clone(), tx));
        let lb_cloudlet = self.lb_connected(&sub);
        let lbs = self.lbs.clone();
        let (store, shared, acks) = (self.store.clone(), self.shared.clone(), self.acks.clone());
        tokio::spawn(async move {
            while let Ok(Some(msg)) = inbound.message().await {
                match SubscriberMessage::try_from(msg) {
                    Ok(SubscriberMessage::Ack { version }) => acks.record(&sub.name, version),
                    Ok(SubscriberMessage::Report(obj)) => {
                        let from = reports::Reporter {
                            notify_id,
                            role: sub.role,
                            cloudlet: sub.cloudlet_filter.as_ref(),
                            platform: sub.platform_filter.as_deref(),
                        };
                        if let Err(e) = reports::apply(store.as_ref(), &shared, obj, from).await {
                            tracing::warn!(name = %sub.name, error = %e, "report refused");
                        }
                    }
                    Ok(SubscriberMessage::Progress(p)) => {
                        let from = reports::Reporter {
                            notify_id,
                            role: sub.role,
                            cloudlet: sub.cloudlet_filter.as_ref(),
                            platform: sub.platform_filter.as_deref(),
                        };
                        match reports::may_report_progress(&shared, &p.key, from) {
                            Ok(()) => shared.publish_progress(p),
                            Err(e) => {
                                tracing::warn!(name = %sub.name, error = %e, "progress refused")
                            }
                        }
                    }
                    Ok(SubscriberMessage::Subscribe(_)) => {
                        tracing::warn!(name = %sub.name, "ignoring a second Subscribe");
                    }
                    Err(e) => {
                        tracing::warn!(name = %sub.name, error = %e, "bad subscriber message")
                    }
                }
            }
            tracing::info!(name = %sub.name, "subscriber disconnected");
            if let Some(c) = lb_cloudlet {
                lb_gone(lbs, store, shared, c);
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Whether `sub` wants `obj`.
fn wanted(sub: &Subscription, m: &Model, obj: &Object) -> bool {
    if !sub.want.is_empty() && !sub.want.contains(&obj.kind()) {
        return false;
    }
    if let Some(platform) = &sub.platform_filter {
        return on_platform(m, obj, platform);
    }
    let Some(filter) = &sub.cloudlet_filter else {
        return true;
    };
    match obj {
        Object::Cloudlet(c) => &c.key == filter,
        Object::CloudletInfo(c) => &c.key == filter,
        Object::ClusterInst(c) => &c.cloudlet == filter,
        Object::AppInst(i) => &i.cloudlet == filter,
        // Apps only when an instance on the cloudlet uses them.
        Object::App(a) => m.insts_on(filter).any(|i| i.app == a.key),
        _ => true,
    }
}

/// Whether `obj` belongs to a cloudlet of `platform` (every App does: a platform's CRM may run
/// any of them).
fn on_platform(m: &Model, obj: &Object, platform: &str) -> bool {
    let cloudlet = match obj {
        Object::Cloudlet(c) => return c.platform_type == platform,
        Object::CloudletInfo(c) => &c.key,
        Object::ClusterInst(c) => &c.cloudlet,
        Object::AppInst(i) => &i.cloudlet,
        _ => return true,
    };
    matches!(
        m.get(&ObjectKey::Cloudlet(cloudlet.clone())).map(|s| &s.object),
        Some(Object::Cloudlet(c)) if c.platform_type == platform
    )
}

fn wanted_key(sub: &Subscription, key: &ObjectKey) -> bool {
    sub.want.is_empty() || sub.want.contains(&key.kind())
}

/// Builds the notices for a full snapshot (`keys` = None) or for changed keys.
fn batch(sub: &Subscription, m: &Model, keys: Option<&[ObjectKey]>) -> Vec<Notice> {
    let version = m.revision;
    let mut updates: Vec<&Object> = Vec::new();
    let mut deletes: Vec<ObjectKey> = Vec::new();
    match keys {
        None => updates.extend(
            m.all()
                .map(|(_, s)| &s.object)
                .filter(|o| wanted(sub, m, o)),
        ),
        Some(keys) => {
            let mut seen = std::collections::HashSet::new();
            for k in keys {
                if !seen.insert(k.clone()) {
                    continue;
                }
                match m.get(k) {
                    Some(s) if wanted(sub, m, &s.object) => updates.push(&s.object),
                    Some(_) => {}
                    None if wanted_key(sub, k) => deletes.push(k.clone()),
                    None => {}
                }
            }
            // A filtered subscriber was not sent an App while no instance on its cloudlet used
            // it: sending an instance forces its App along (as upstream), parents first below.
            if sub.cloudlet_filter.is_some() {
                let apps: Vec<&Object> = updates
                    .iter()
                    .filter_map(|o| match o {
                        // The instance is on the subscriber's cloudlet (it was wanted), so its
                        // App is wanted if the kind is: no scan of the cloudlet's instances,
                        // which made every instance notice cost O(instances on the cloudlet).
                        Object::AppInst(i) => {
                            let key = ObjectKey::App(i.app.clone());
                            if !wanted_key(sub, &key) || !seen.insert(key.clone()) {
                                return None;
                            }
                            m.get(&key).map(|s| &s.object)
                        }
                        _ => None,
                    })
                    .collect();
                updates.extend(apps);
            }
        }
    }
    updates.sort_by_key(|o| o.kind().dependency_rank());
    deletes.sort_by_key(|k| std::cmp::Reverse(k.kind().dependency_rank()));
    let mut out: Vec<Notice> = updates
        .into_iter()
        .map(|o| Notice::Update {
            version,
            object: o.clone(),
        })
        .collect();
    out.extend(
        deletes
            .into_iter()
            .map(|key| Notice::Delete { version, key }),
    );
    if keys.is_none() {
        out.push(Notice::SnapshotEnd { version });
    }
    out
}

async fn send_loop(
    shared: Arc<Shared>,
    sub: Subscription,
    tx: mpsc::Sender<Result<pb::Notice, Status>>,
) {
    let mut rx = shared.subscribe();
    // Only DMEs act on requests today; others do not hold a receiver (so the relay's count
    // is the number of DMEs reached).
    let mut requests = (sub.role == Role::Dme).then(|| shared.requests());
    let mut sent_rev: Option<Revision> = None;
    let mut epoch = 0;
    loop {
        let notices = {
            let st = shared.read();
            let (model, log) = &*st;
            let keys = match sent_rev {
                Some(r) if log.epoch == epoch => log.since(r),
                _ => None,
            };
            let out = batch(&sub, model, keys.as_deref());
            sent_rev = Some(model.revision);
            epoch = log.epoch;
            out
        };
        for n in &notices {
            if tx.send(Ok(pb::Notice::from(n))).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return } else { break },
                // The subscriber went away: stop instead of waiting for the next change.
                () = tx.closed() => return,
                r = next_request(&mut requests) => {
                    if let Some(r) = r.filter(|r| r.concerns(sub.role)) {
                        let n = Notice::Request(r);
                        if tx.send(Ok(pb::Notice::from(&n))).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The next relayed request (None when some were missed: a lagging subscriber loses the
/// oldest, which for measurement requests is harmless); pending without a receiver.
async fn next_request(
    rx: &mut Option<tokio::sync::broadcast::Receiver<edge_api::notify::Request>>,
) -> Option<edge_api::notify::Request> {
    match rx {
        Some(rx) => match rx.recv().await {
            Ok(r) => Some(r),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_api::notify::Role;
    use edge_model::{
        AppInst, AppInstKey, AppKey, CloudletKey, HealthCheck, ObjectKind, TrackedState,
    };

    fn app(name: &str) -> edge_model::App {
        edge_model::App {
            key: AppKey {
                organization: "acme".into(),
                name: name.into(),
                version: "1".into(),
            },
            deployment: edge_model::DeploymentKind::Docker,
            image_path: String::new(),
            access_ports: Vec::new(),
            default_flavor: None,
            official_fqdn: Vec::new(),
            android_package_name: String::new(),
            auth_public_key: None,
            platform_app: false,
        }
    }

    #[test]
    fn a_filtered_subscriber_gets_the_app_of_a_new_instance() {
        let berlin = CloudletKey {
            organization: "telekom".into(),
            name: "berlin-1".into(),
        };
        let sub = Subscription {
            name: "rootlb".into(),
            role: Role::RootLb,
            want: vec![ObjectKind::App, ObjectKind::AppInst],
            cloudlet_filter: Some(berlin.clone()),
            platform_filter: None,
        };
        let mut m = Model::default();
        m.put(Object::App(app("game")), 1);
        m.put(Object::App(app("other")), 2);
        // The App existed before any instance used it: not part of the snapshot.
        assert!(!batch(&sub, &m, None).iter().any(|n| matches!(
            n,
            Notice::Update {
                object: Object::App(_),
                ..
            }
        )));
        let inst = AppInst {
            key: AppInstKey {
                organization: "acme".into(),
                name: "game-ber".into(),
            },
            app: app("game").key,
            cloudlet: berlin,
            cluster: None,
            uri: String::new(),
            mapped_ports: Vec::new(),
            state: TrackedState::Ready,
            health: HealthCheck::Ok,
            platform_health: HealthCheck::Unknown,
        };
        m.put(Object::AppInst(inst.clone()), 3);
        let out = batch(&sub, &m, Some(&[ObjectKey::AppInst(inst.key.clone())]));
        let kinds: Vec<String> = out
            .iter()
            .map(|n| match n {
                Notice::Update { object, .. } => object.key().to_store_key(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["App/acme/game/1", "AppInst/acme/game-ber"]);
    }
}
