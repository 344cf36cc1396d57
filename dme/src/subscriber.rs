//! The DME as a notify subscriber of the controller: mirrors the objects it is sent, rebuilds the
//! touched apps' tables off the async workers, publishes them with one swap, and acknowledges the
//! version it now serves. While disconnected it keeps serving its last tables and reconnects with
//! backoff, cycling through the configured controller addresses; after a reconnect the
//! controller's snapshot ends with SNAPSHOT_END and whatever it did not re-send is pruned (so
//! deletes made while the DME was away are applied).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use edge_api::notify::{Backoff, Notice, Role, SubscriberMessage, Subscription};
use edge_api::pb;
use edge_model::{ObjectKey, ObjectKind};
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::mirror::Mirror;
use crate::service::Dme;

/// What the DME asks the controller for.
pub const WANT: [ObjectKind; 6] = [
    ObjectKind::Settings,
    ObjectKind::OperatorCode,
    ObjectKind::Cloudlet,
    ObjectKind::CloudletInfo,
    ObjectKind::App,
    ObjectKind::AppInst,
];

/// Where and as whom to subscribe.
#[derive(Clone, Debug)]
pub struct SubscriberConfig {
    /// Controller notify addresses (`host:port`), tried in turn.
    pub addrs: Vec<String>,
    /// This DME's name, under which its acknowledgements are recorded.
    pub name: String,
}

/// Why one connection ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("stream: {0}")]
    Stream(#[from] tonic::Status),
    #[error("bad notice: {0}")]
    Notice(#[from] edge_api::ConvertError),
    #[error("the stream ended")]
    Ended,
}

/// Subscribes forever (until the task is dropped), feeding `dme`.
/// An engine with empty tables and a random key ring (cookies end with the process), fed by the
/// controller's notify stream on a spawned task: a DME inside a single-process region (`edgeplane
/// up`), load tests and tests. Needs a tokio runtime.
pub fn spawn_local(config: SubscriberConfig) -> Arc<Dme> {
    let engine = Arc::new(Dme::new(
        crate::Tables::empty(),
        crate::cookie::KeyRing::random(),
        crate::DmeConfig::default(),
        None,
    ));
    tokio::spawn(run(engine.clone(), config));
    engine
}

pub async fn run(dme: Arc<Dme>, config: SubscriberConfig) {
    let mut state = State {
        mirror: Mirror::new(),
        snapshot: None,
    };
    let mut backoff = Backoff::default();
    for addr in config.addrs.iter().cycle() {
        let started = tokio::time::Instant::now();
        match session(&dme, &config.name, addr, &mut state).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(%addr, error = %e, "notify session ended; serving the last tables")
            }
        }
        tokio::time::sleep(backoff.after_session(started.elapsed())).await;
    }
}

/// The mirror survives reconnects; `snapshot` holds the keys seen since the last (re)connect
/// until SNAPSHOT_END.
struct State {
    mirror: Mirror,
    snapshot: Option<HashSet<ObjectKey>>,
}

async fn session(
    dme: &Arc<Dme>,
    name: &str,
    addr: &str,
    state: &mut State,
) -> Result<(), SessionError> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| SessionError::Stream(tonic::Status::invalid_argument(e.to_string())))?
        .connect_timeout(Duration::from_secs(3))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .connect()
        .await?;
    let mut client =
        pb::notify_client::NotifyClient::new(channel).max_decoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel::<pb::SubscriberMessage>(64);
    let subscribe = SubscriberMessage::Subscribe(Subscription {
        name: name.to_string(),
        role: Role::Dme,
        want: WANT.to_vec(),
        cloudlet_filter: None,
    });
    let _ = tx.send(pb::SubscriberMessage::from(&subscribe)).await;
    let mut inbound = client.stream(ReceiverStream::new(rx)).await?.into_inner();
    state.snapshot = Some(HashSet::new());
    tracing::info!(%addr, "subscribed to the controller");
    loop {
        // Apply everything that has arrived, then build once: changes are coalesced.
        let first = inbound.message().await?.ok_or(SessionError::Ended)?;
        let mut version = apply(state, Notice::try_from(first)?);
        while let Some(next) = inbound.message().now_or_never() {
            match next? {
                Some(n) => version = apply(state, Notice::try_from(n)?).max(version),
                None => return Err(SessionError::Ended),
            }
        }
        if state.snapshot.is_some() {
            continue;
        }
        // Notices that changed nothing (a value re-sent unchanged) need no build, but their
        // version is served all the same and is acknowledged.
        if state.mirror.is_dirty() {
            publish(dme, state, version).await;
        }
        let ack = SubscriberMessage::Ack { version };
        if tx.send(pb::SubscriberMessage::from(&ack)).await.is_err() {
            return Err(SessionError::Ended);
        }
    }
}

/// Applies one notice; returns its version.
fn apply(state: &mut State, notice: Notice) -> u64 {
    let version = notice.version();
    match notice {
        Notice::Update { object, .. } => {
            if let Some(seen) = &mut state.snapshot {
                seen.insert(object.key());
            }
            state.mirror.apply(object);
        }
        Notice::Delete { key, .. } => state.mirror.remove(&key),
        Notice::SnapshotEnd { .. } => {
            if let Some(seen) = state.snapshot.take() {
                for key in state.mirror.keys() {
                    if !seen.contains(&key) {
                        state.mirror.remove(&key);
                    }
                }
            }
            // Always publish after a snapshot, even an empty one, so the version is acknowledged.
            state.mirror.mark_dirty();
        }
    }
    version
}

/// Builds on a blocking thread (a big app takes milliseconds) and publishes.
async fn publish(dme: &Arc<Dme>, state: &mut State, version: u64) {
    let mirror = std::mem::take(&mut state.mirror);
    let prev = dme.tables();
    let built = tokio::task::spawn_blocking(move || {
        let mut mirror = mirror;
        let tables = mirror.build(Some(&prev), version);
        (mirror, tables)
    })
    .await;
    match built {
        Ok((mirror, tables)) => {
            state.mirror = mirror;
            dme.publish(tables);
        }
        Err(e) => tracing::error!(error = %e, "table build panicked; keeping the last tables"),
    }
}
