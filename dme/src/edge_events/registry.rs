//! Which stream follows which instance: streams grouped by their current instance, groups
//! indexed by cloudlet and by app, so that a change finds exactly the streams it concerns
//! without visiting any other. The lock is held only to update or copy out handles (a push
//! to a stream is a `try_send` on its own queue, made after the lock is released); nothing is
//! searched or written to a client under it.
//!
//! Scaling: registering, moving and removing a stream cost O(1) map operations. A change to an
//! instance or a cloudlet costs O(streams on it) (the cloudlet index lists only instances that
//! have streams). A newly usable instance costs O(streams of its app) distance comparisons,
//! made without the lock's help from each stream's last location (kept in its handle), and
//! only the streams it is nearer to are pushed to; each of those then runs one FindCloudlet.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use edge_model::{CloudletKey, CloudletState, HealthCheck, MaintenanceState};
use geodata::LatLon;
use smallvec::SmallVec;
use tokio::sync::Notify;

/// What a change means for the streams it reaches; each stream decides what to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushKind {
    Health(HealthCheck),
    CloudletState(CloudletState),
    Maintenance(MaintenanceState),
    /// An instance became usable and may now be the best for this stream.
    Available,
    /// An operator asked the instance's clients to measure their latency.
    LatencyRequest,
}

/// A push, about the instance with edge tag `about` (a stream that moved away meanwhile
/// ignores pushes about its old instance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Push {
    pub kind: PushKind,
    pub about: u64,
}

/// Where a stream is registered: under its instance, or nowhere (its instance is gone and
/// nothing else was found) within its app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupKey {
    Inst(u64),
    Nowhere(u64),
}

/// Pushes queued for a stream's task before further ones are dropped for a resync.
pub const PUSH_QUEUE: usize = 16;

/// A stream's handle: its push queue and its last location. The queue is a small vector
/// under a lock that only the pusher and the stream's task take, with a wake-up, rather than a
/// channel: a tokio channel allocates its first block of 32 slots with the channel, some 800
/// bytes for every open stream, while nearly every stream's queue is empty nearly always.
pub struct Client {
    pub id: u64,
    pending: Mutex<SmallVec<[Push; 2]>>,
    wake: Notify,
    lat: AtomicU64,
    lon: AtomicU64,
    /// A push found the queue full: the stream must re-read its state.
    missed: AtomicBool,
    /// The stream ended: pushes are refused.
    closed: AtomicBool,
}

impl Client {
    pub fn new(id: u64, at: LatLon) -> Self {
        let c = Self {
            id,
            pending: Mutex::default(),
            wake: Notify::new(),
            lat: AtomicU64::new(0),
            lon: AtomicU64::new(0),
            missed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        };
        c.set_location(at);
        c
    }

    /// Resolves once pushes were queued since the last [`Self::take`] (a wake-up given while
    /// nobody waits is kept for the next wait).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The pushes queued, oldest first.
    pub fn take(&self) -> SmallVec<[Push; 2]> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The stream ended: later pushes are refused.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    pub fn set_location(&self, at: LatLon) {
        self.lat.store(at.lat().to_bits(), Ordering::Relaxed);
        self.lon.store(at.lon().to_bits(), Ordering::Relaxed);
    }

    fn location(&self) -> Option<LatLon> {
        LatLon::new(
            f64::from_bits(self.lat.load(Ordering::Relaxed)),
            f64::from_bits(self.lon.load(Ordering::Relaxed)),
        )
        .ok()
    }

    /// Queues a push. When the queue is full (a storm of changes faster than the stream's
    /// task), the push is dropped and the stream marked to re-read its whole state instead:
    /// pushes say "look again", so later state covers what was dropped.
    pub fn push(&self, p: Push) -> bool {
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        let queued = {
            let mut q = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if q.len() < PUSH_QUEUE {
                q.push(p);
                true
            } else {
                self.missed.store(true, Ordering::Relaxed);
                false
            }
        };
        self.wake.notify_one();
        queued
    }

    /// Whether pushes were dropped since the last call.
    pub fn take_missed(&self) -> bool {
        self.missed.swap(false, Ordering::Relaxed)
    }
}

/// Where a stream's group sits: its app, and its instance's cloudlet and location.
#[derive(Clone, Debug)]
pub struct Placement {
    pub group: GroupKey,
    pub app: u64,
    pub cloudlet: Option<CloudletKey>,
    pub at: Option<LatLon>,
}

struct Group {
    app: u64,
    cloudlet: Option<CloudletKey>,
    at: Option<LatLon>,
    clients: Vec<Arc<Client>>,
}

#[derive(Default)]
struct Inner {
    groups: HashMap<GroupKey, Group>,
    by_cloudlet: HashMap<CloudletKey, HashSet<GroupKey>>,
    by_app: HashMap<u64, HashSet<GroupKey>>,
}

#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    open: AtomicU64,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Streams registered now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    pub fn add(&self, client: Arc<Client>, p: &Placement) {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(client, p);
    }

    pub fn remove(&self, id: u64, group: GroupKey) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.lock().take(id, group);
    }

    /// Moves a stream from `from` to the group of `to`.
    pub fn relocate(&self, id: u64, from: GroupKey, to: &Placement) {
        let mut inner = self.lock();
        if let Some(c) = inner.take(id, from) {
            inner.insert(c, to);
        }
    }

    /// The streams of one group.
    pub fn clients(&self, group: GroupKey) -> Vec<Arc<Client>> {
        self.lock()
            .groups
            .get(&group)
            .map(|g| g.clients.clone())
            .unwrap_or_default()
    }

    /// The streams on a cloudlet, with the instance each follows.
    pub fn on_cloudlet(&self, key: &CloudletKey) -> Vec<(u64, Arc<Client>)> {
        let inner = self.lock();
        let mut out = Vec::new();
        for g in inner.by_cloudlet.get(key).into_iter().flatten() {
            if let (GroupKey::Inst(tag), Some(group)) = (g, inner.groups.get(g)) {
                out.extend(group.clients.iter().map(|c| (*tag, c.clone())));
            }
        }
        out
    }

    /// The streams of app `app` to which an instance at `at` (tagged `tag`) is nearer than
    /// their current one, or which have none; and the instance's own streams.
    pub fn nearer(&self, app: u64, tag: u64, at: LatLon) -> Vec<Arc<Client>> {
        let candidates: Vec<(Option<LatLon>, bool, Arc<Client>)> = {
            let inner = self.lock();
            let mut v = Vec::new();
            for key in inner.by_app.get(&app).into_iter().flatten() {
                if let Some(g) = inner.groups.get(key) {
                    let own = *key == GroupKey::Inst(tag);
                    v.extend(g.clients.iter().map(|c| (g.at, own, c.clone())));
                }
            }
            v
        };
        candidates
            .into_iter()
            .filter(|(current, own, c)| {
                *own || match (current, c.location()) {
                    (Some(cur), Some(me)) => me.distance_km(&at) < me.distance_km(cur),
                    _ => true,
                }
            })
            .map(|(_, _, c)| c)
            .collect()
    }
}

impl Inner {
    fn insert(&mut self, client: Arc<Client>, p: &Placement) {
        let group = self.groups.entry(p.group).or_insert_with(|| Group {
            app: p.app,
            cloudlet: p.cloudlet.clone(),
            at: p.at,
            clients: Vec::new(),
        });
        group.clients.push(client);
        if group.clients.len() == 1 {
            if let Some(c) = &p.cloudlet {
                self.by_cloudlet
                    .entry(c.clone())
                    .or_default()
                    .insert(p.group);
            }
            self.by_app.entry(p.app).or_default().insert(p.group);
        }
    }

    fn take(&mut self, id: u64, key: GroupKey) -> Option<Arc<Client>> {
        let group = self.groups.get_mut(&key)?;
        let i = group.clients.iter().position(|c| c.id == id)?;
        let c = group.clients.swap_remove(i);
        if group.clients.is_empty() {
            let (app, cloudlet) = (group.app, group.cloudlet.clone());
            self.groups.remove(&key);
            if let Some(cl) = cloudlet {
                remove_from(&mut self.by_cloudlet, &cl, &key);
            }
            remove_from(&mut self.by_app, &app, &key);
        }
        Some(c)
    }
}

fn remove_from<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, HashSet<GroupKey>>,
    k: &K,
    g: &GroupKey,
) {
    if let Some(set) = map.get_mut(k) {
        set.remove(g);
        if set.is_empty() {
            map.remove(k);
        }
    }
}

#[cfg(test)]
mod tests;
