//! Keeps the in-memory [`Model`] equal to the store: list, then watch from the listed revision;
//! re-list after compaction or a store error. The only writer of the model. Every applied
//! revision is published on a `watch` channel (API calls wait on it for read-your-writes) and its
//! changed keys go to a bounded change log that notify senders read.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use edge_model::ObjectKey;
use edge_store::{Event, Revision, Store, StoreError};
use tokio::sync::watch;

use crate::codec;
use crate::model::Model;

/// Store key prefixes: objects and their reference counters.
pub const OBJ_PREFIX: &str = "o/";
pub const REFS_PREFIX: &str = "r/";

pub fn obj_key(key: &ObjectKey) -> Vec<u8> {
    format!("{OBJ_PREFIX}{}", key.to_store_key()).into_bytes()
}

pub fn refs_key(key: &ObjectKey) -> Vec<u8> {
    format!("{REFS_PREFIX}{}", key.to_store_key()).into_bytes()
}

/// Changed keys by revision, for notify senders. Bounded: a sender that falls further behind
/// resends everything.
#[derive(Default)]
pub struct ChangeLog {
    entries: VecDeque<(Revision, ObjectKey)>,
    /// Bumped on every re-list: senders must resend everything.
    pub epoch: u64,
}

const LOG_CAP: usize = 1 << 20;

impl ChangeLog {
    fn push(&mut self, rev: Revision, key: ObjectKey) {
        if self.entries.len() >= LOG_CAP {
            self.entries.pop_front();
        }
        self.entries.push_back((rev, key));
    }

    /// Keys changed after `since`, or None when the log no longer reaches back that far.
    pub fn since(&self, since: Revision) -> Option<Vec<ObjectKey>> {
        if let Some((first, _)) = self.entries.front()
            && *first > since + 1
            && self.entries.len() >= LOG_CAP
        {
            return None;
        }
        let start = self.entries.partition_point(|(r, _)| *r <= since);
        Some(
            self.entries
                .iter()
                .skip(start)
                .map(|(_, k)| k.clone())
                .collect(),
        )
    }
}

/// The model, its change log, the revision channel, and the progress of CRM operations.
pub struct Shared {
    state: RwLock<(Model, ChangeLog)>,
    revision: watch::Sender<Revision>,
    /// Progress lines CRMs send about the operations they run, for the API calls waiting on
    /// them. Not stored: only callers waiting on this controller see them (with several
    /// controllers, a caller on another one sees the state changes only).
    progress: tokio::sync::broadcast::Sender<edge_api::notify::Progress>,
    /// Operator requests for the DMEs connected to this controller (not stored either).
    requests: tokio::sync::broadcast::Sender<edge_api::notify::Request>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            revision: watch::channel(0).0,
            progress: tokio::sync::broadcast::Sender::new(1024),
            requests: tokio::sync::broadcast::Sender::new(256),
        }
    }
}

impl Shared {
    /// Reads the model. Never held across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, (Model, ChangeLog)> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn subscribe(&self) -> watch::Receiver<Revision> {
        self.revision.subscribe()
    }

    /// Progress lines from CRMs, from now on.
    pub fn progress(&self) -> tokio::sync::broadcast::Receiver<edge_api::notify::Progress> {
        self.progress.subscribe()
    }

    /// Relays a CRM's progress line to the callers waiting on its object.
    pub fn publish_progress(&self, p: edge_api::notify::Progress) {
        let _ = self.progress.send(p);
    }

    /// Requests for DME subscribers, from now on (one receiver per connected DME).
    pub fn requests(&self) -> tokio::sync::broadcast::Receiver<edge_api::notify::Request> {
        self.requests.subscribe()
    }

    /// Relays a request to the connected DMEs; how many there are.
    pub fn relay(&self, r: edge_api::notify::Request) -> usize {
        self.requests.send(r).unwrap_or(0)
    }

    /// Waits until the model reflects `rev`.
    pub async fn wait_for(&self, rev: Revision) {
        let mut rx = self.subscribe();
        let _ = rx.wait_for(|r| *r >= rev).await;
    }

    fn replace(&self, model: Model) {
        let rev = model.revision;
        {
            let mut st = self
                .state
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            st.0 = model;
            st.1.entries.clear();
            st.1.epoch += 1;
        }
        self.revision.send_replace(rev);
    }

    fn apply(&self, rev: Revision, events: &[Event]) {
        {
            let mut st = self
                .state
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (model, log) = &mut *st;
            for ev in events {
                if let Some(key) = apply_event(model, ev) {
                    log.push(rev, key);
                }
            }
            model.revision = rev;
        }
        self.revision.send_replace(rev);
    }
}

/// Applies one store event; returns the object key if an object (not a counter) changed.
fn apply_event(model: &mut Model, ev: &Event) -> Option<ObjectKey> {
    let raw = std::str::from_utf8(ev.key()).ok()?;
    if let Some(k) = raw.strip_prefix(REFS_PREFIX) {
        let key = ObjectKey::from_store_key(k).ok()?;
        let rev = match ev {
            Event::Put(kv) => Some(kv.mod_revision),
            Event::Delete { .. } => None,
        };
        model.set_refs_revision(key, rev);
        return None;
    }
    let k = raw.strip_prefix(OBJ_PREFIX)?;
    let key = ObjectKey::from_store_key(k).ok()?;
    match ev {
        Event::Put(kv) => match codec::decode(&kv.value) {
            Ok(obj) if obj.key() == key => model.put(obj, kv.mod_revision),
            Ok(_) | Err(_) => {
                tracing::error!(key = raw, "undecodable object in store; ignored");
                return None;
            }
        },
        Event::Delete { .. } => model.delete(&key),
    }
    Some(key)
}

/// Lists the store into a fresh model.
async fn load(store: &dyn Store) -> Result<Model, StoreError> {
    let range = store.range(b"").await?;
    let mut model = Model::default();
    for kv in &range.kvs {
        apply_event(&mut model, &Event::Put(kv.clone()));
    }
    model.revision = range.revision;
    Ok(model)
}

/// Loads the model once (so the controller starts with its data), then keeps it in sync forever.
pub async fn start(store: Arc<dyn Store>, shared: Arc<Shared>) -> Result<(), StoreError> {
    let model = load(store.as_ref()).await?;
    let rev = model.revision;
    shared.replace(model);
    tokio::spawn(run(store, shared, rev));
    Ok(())
}

async fn run(store: Arc<dyn Store>, shared: Arc<Shared>, mut rev: Revision) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match follow(store.as_ref(), &shared, rev).await {
            Ok(()) => return, // watch ended: the store was closed
            Err(StoreError::Compacted { .. }) => {}
            Err(e) => {
                tracing::warn!(error = %e, "store watch failed; re-listing");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        match load(store.as_ref()).await {
            Ok(model) => {
                rev = model.revision;
                shared.replace(model);
                backoff = Duration::from_millis(50);
            }
            Err(e) => tracing::warn!(error = %e, "store re-list failed"),
        }
    }
}

async fn follow(store: &dyn Store, shared: &Shared, from: Revision) -> Result<(), StoreError> {
    let mut w = store.watch(b"", from).await?;
    while let Some(resp) = w.recv().await {
        let resp = resp?;
        shared.apply(resp.revision, &resp.events);
    }
    Ok(())
}
