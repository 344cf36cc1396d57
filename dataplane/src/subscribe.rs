//! The root LB as a notify subscriber of the controller, filtered to its cloudlet: mirrors the
//! clusters and instances it is sent, rebuilds the route table after the snapshot and after each
//! batch of changes ([`crate::notify_routes`], pure) and publishes it into the same `watch`
//! channel the routes-file watcher feeds ([`crate::server::run`] applies it with one swap), then
//! acknowledges the version. Health flips of the proxy's checked backends are turned into AppInst
//! health reports sent up the same stream.
//!
//! While disconnected the last table keeps serving; it reconnects with backoff, cycling through
//! the controller addresses. After a reconnect the snapshot ends with SNAPSHOT_END and whatever
//! the controller did not re-send is dropped (deletes made while away are applied).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use edge_api::notify::{Backoff, Notice, Role, SubscriberMessage, Subscription};
use edge_api::pb;
use edge_model::{
    AppInstKey, CloudletKey, HealthCheck as InstHealth, Object, ObjectKey, ObjectKind,
};
use futures::{FutureExt as _, StreamExt as _};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::notify_routes::{self, BackendHealth, RouteOptions};
use crate::server::{HealthEvent, Shared};
use crate::table::{Proto, RouteTable};

/// What the root LB asks the controller for. Apps are not needed: an instance's mapped ports
/// carry protocol, ports and the TLS flag.
pub const WANT: [ObjectKind; 2] = [ObjectKind::ClusterInst, ObjectKind::AppInst];

/// Where and as whom to subscribe, and how to build routes.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Controller notify addresses (`host:port`), tried in turn.
    pub addrs: Vec<String>,
    /// Subscriber name (the controller records acknowledgements under it).
    pub name: String,
    pub cloudlet: CloudletKey,
    pub routes: RouteOptions,
}

/// Why one connection ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("bad address: {0}")]
    Address(String),
    #[error("stream: {0}")]
    Stream(#[from] tonic::Status),
    #[error("bad notice: {0}")]
    Notice(#[from] edge_api::ConvertError),
    #[error("the stream ended")]
    Ended,
}

/// What survives reconnects.
struct State {
    mirror: HashMap<ObjectKey, Object>,
    /// Keys seen since the last (re)connect, until SNAPSHOT_END.
    snapshot: Option<HashSet<ObjectKey>>,
    /// Route name → instance, of the last published table.
    instances: HashMap<Arc<str>, AppInstKey>,
    last_skipped: Vec<String>,
    /// Health reports sent on the current connection.
    sent: HashMap<AppInstKey, InstHealth>,
}

/// Subscribes until `tables` has no receiver (the server stopped), publishing tables into it.
pub async fn run(
    config: NotifyConfig,
    tables: watch::Sender<Arc<RouteTable>>,
    proxy: Arc<Shared>,
    mut health: broadcast::Receiver<HealthEvent>,
) {
    let mut state = State {
        mirror: HashMap::new(),
        snapshot: None,
        instances: HashMap::new(),
        last_skipped: Vec::new(),
        sent: HashMap::new(),
    };
    let mut backoff = Backoff::default();
    for addr in config.addrs.iter().cycle() {
        if tables.is_closed() {
            return;
        }
        let started = tokio::time::Instant::now();
        let r = session(&config, addr, &mut state, &tables, &proxy, &mut health).await;
        match r {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(%addr, error = %e, "notify session ended; serving the last table")
            }
        }
        tokio::time::sleep(backoff.after_session(started.elapsed())).await;
    }
}

async fn session(
    config: &NotifyConfig,
    addr: &str,
    state: &mut State,
    tables: &watch::Sender<Arc<RouteTable>>,
    proxy: &Shared,
    health: &mut broadcast::Receiver<HealthEvent>,
) -> Result<(), SessionError> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| SessionError::Address(e.to_string()))?
        .connect_timeout(Duration::from_secs(3))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .connect()
        .await?;
    let mut client =
        pb::notify_client::NotifyClient::new(channel).max_decoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel::<pb::SubscriberMessage>(256);
    let subscribe = SubscriberMessage::Subscribe(Subscription {
        name: config.name.clone(),
        role: Role::RootLb,
        want: WANT.to_vec(),
        cloudlet_filter: Some(config.cloudlet.clone()),
    });
    let _ = tx.send(pb::SubscriberMessage::from(&subscribe)).await;
    let mut inbound = client.stream(ReceiverStream::new(rx)).await?.into_inner();
    state.snapshot = Some(HashSet::new());
    state.sent.clear();
    tracing::info!(%addr, cloudlet = %config.cloudlet, "subscribed to the controller");
    loop {
        tokio::select! {
            first = inbound.next() => {
                let first = first.ok_or(SessionError::Ended)??;
                // Apply everything that has arrived, then build once: changes are coalesced.
                let mut version = apply(state, Notice::try_from(first)?);
                while let Some(next) = inbound.next().now_or_never() {
                    let n = next.ok_or(SessionError::Ended)??;
                    version = apply(state, Notice::try_from(n)?).max(version);
                }
                if state.snapshot.is_some() {
                    continue;
                }
                if tables.is_closed() {
                    return Ok(());
                }
                rebuild(config, state, tables);
                let ack = SubscriberMessage::Ack { version };
                tx.send(pb::SubscriberMessage::from(&ack))
                    .await
                    .map_err(|_| SessionError::Ended)?;
            }
            ev = health.recv() => match ev {
                Ok(_) => {}
                // Health is re-read from the proxy below, so missed events lose nothing.
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "health events lagged");
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
        if state.snapshot.is_none() {
            send_reports(state, proxy, &tx).await?;
        }
    }
}

/// Applies one notice to the mirror; returns its version.
fn apply(state: &mut State, notice: Notice) -> u64 {
    let version = notice.version();
    match notice {
        Notice::Update { object, .. } => {
            let key = object.key();
            if let Some(seen) = &mut state.snapshot {
                seen.insert(key.clone());
            }
            state.mirror.insert(key, object);
        }
        Notice::Delete { key, .. } => {
            state.mirror.remove(&key);
        }
        Notice::SnapshotEnd { .. } => {
            if let Some(seen) = state.snapshot.take() {
                state.mirror.retain(|k, _| seen.contains(k));
            }
        }
    }
    version
}

/// Builds the table from the mirror and publishes it when it differs from the live one. A
/// rejected table is logged; the previous one keeps serving.
fn rebuild(config: &NotifyConfig, state: &mut State, tables: &watch::Sender<Arc<RouteTable>>) {
    match notify_routes::routes_for(&config.cloudlet, state.mirror.values(), &config.routes) {
        Ok(built) => {
            if built.skipped != state.last_skipped {
                for s in &built.skipped {
                    tracing::warn!("no listener for {s}");
                }
                state.last_skipped = built.skipped;
            }
            state.instances = built.instances;
            let changed = **tables.borrow() != built.table;
            if changed {
                tracing::info!(listeners = built.table.len(), "routes from the controller");
                tables.send_replace(Arc::new(built.table));
            }
        }
        Err(e) => tracing::error!("{e}; the previous table keeps serving"),
    }
}

/// Sends the health reports the proxy's current backend health calls for.
async fn send_reports(
    state: &mut State,
    proxy: &Shared,
    tx: &mpsc::Sender<pb::SubscriberMessage>,
) -> Result<(), SessionError> {
    let snap = proxy.snapshot();
    let backends = snap
        .routes()
        .into_iter()
        .filter(|r| r.route.key.proto == Proto::Tcp && r.route.health_check.is_some())
        .flat_map(|r| {
            r.backends.iter().map(|b| BackendHealth {
                route: &r.route.name,
                healthy: b.checked_healthy(),
            })
        })
        .collect::<Vec<_>>();
    let wanted = notify_routes::instance_health(backends, &state.instances);
    let mirror = &state.mirror;
    let current = |k: &AppInstKey| match mirror.get(&ObjectKey::AppInst(k.clone())) {
        Some(Object::AppInst(i)) => Some(i.health),
        _ => None,
    };
    for (key, health) in notify_routes::health_reports(&wanted, current, &state.sent) {
        let Some(Object::AppInst(inst)) = mirror.get(&ObjectKey::AppInst(key.clone())) else {
            continue;
        };
        tracing::info!(app_inst = %notify_routes::route_name(&key), ?health, "reporting instance health");
        let report = SubscriberMessage::Report(Object::AppInst(edge_model::AppInst {
            health,
            ..inst.clone()
        }));
        tx.send(pb::SubscriberMessage::from(&report))
            .await
            .map_err(|_| SessionError::Ended)?;
        state.sent.insert(key, health);
    }
    Ok(())
}
