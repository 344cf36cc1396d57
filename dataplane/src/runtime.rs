//! What the hot path reads: the published [`Snapshot`] of routes with their runtime state
//! ([`RouteRt`], [`BackendRt`]: counters, health, caps, drain signals), the [`Shared`] handle
//! connections and the control side both hold, and the process-wide [`ServerOptions`].
//!
//! Imports only the table and the counters: the connection loops ([`crate::tcp`],
//! [`crate::udp`]), the health checks and the control side ([`crate::server`]) all depend on this
//! module, never the other way round.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{Notify, broadcast, watch};
use tokio_rustls::TlsAcceptor;

use crate::stats::{BackendStats, ListenerStats};
use crate::table::{ListenerKey, Route};

/// How the TCP relay moves bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CopyMode {
    /// splice(2) through a pipe per direction: no user-space copy.
    Splice,
    /// tokio's user-space `copy_bidirectional`.
    Copy,
    /// Per-thread scratch buffer with direct writes; splice for bulk transfers. The default: it
    /// measured best overall (see dataplane/README.md).
    #[default]
    Auto,
}

/// Process-wide runtime options (not part of the table).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub copy_mode: CopyMode,
    /// Buffer size per direction for [`CopyMode::Copy`] and TLS connections.
    pub copy_buf: usize,
    pub tls_handshake_timeout: Duration,
    /// Sockets per UDP listener, bound with `SO_REUSEPORT` when more than one, each read by its
    /// own task with its own flows (the kernel keeps a client's datagrams on one socket), so a
    /// port's receive side can use every worker thread. `rootlb` sets one per worker thread.
    pub udp_sockets: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            copy_mode: CopyMode::Auto,
            copy_buf: 16 * 1024,
            udp_sockets: 1,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// A health state change of one backend, for reporting upstream (controller → DME).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    pub listener: ListenerKey,
    pub app: Arc<str>,
    pub backend: SocketAddr,
    pub healthy: bool,
}

/// Milliseconds since process start; a cheap coarse clock for ejection deadlines.
pub(crate) fn clock_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    u64::try_from(START.elapsed().as_millis()).unwrap_or(u64::MAX)
}

// === impl BackendRt ===

/// Runtime state of one backend of one listener. Kept across table versions while the backend
/// stays in the route, so counters, health and the active count survive updates.
#[derive(Debug)]
pub struct BackendRt {
    pub addr: SocketAddr,
    active: AtomicU32,
    /// Result of active checks (true without checks).
    checked_healthy: AtomicBool,
    /// Passive ejection: not picked before this [`clock_ms`] instant.
    ejected_until: AtomicU64,
    /// Set to the grace period when the backend (or its route) is removed.
    drain: watch::Sender<Option<Duration>>,
    pub stats: BackendStats,
}

impl BackendRt {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            active: AtomicU32::new(0),
            checked_healthy: AtomicBool::new(true),
            ejected_until: AtomicU64::new(0),
            drain: watch::Sender::new(None),
            stats: BackendStats::default(),
        }
    }

    pub fn active(&self) -> u32 {
        self.active.load(Relaxed)
    }

    pub(crate) fn is_healthy(&self, now_ms: u64) -> bool {
        self.checked_healthy.load(Relaxed) && now_ms >= self.ejected_until.load(Relaxed)
    }

    pub fn is_healthy_now(&self) -> bool {
        self.is_healthy(clock_ms())
    }

    /// The active checks' verdict alone (true without checks), without passive ejection: what
    /// the root LB reports upstream as the instance's health.
    pub fn checked_healthy(&self) -> bool {
        self.checked_healthy.load(Relaxed)
    }

    pub(crate) fn set_checked_health(&self, healthy: bool) {
        self.checked_healthy.store(healthy, Relaxed);
    }

    /// Passive ejection after a failed connect.
    pub(crate) fn eject(&self, for_: Duration) {
        let until = clock_ms() + u64::try_from(for_.as_millis()).unwrap_or(u64::MAX / 2);
        self.ejected_until.fetch_max(until, Relaxed);
    }

    /// Take a connection slot unless the cap (0 = none) is reached.
    pub(crate) fn try_acquire(self: &Arc<Self>, cap: u32) -> Option<ActiveGuard> {
        let ok = self
            .active
            .fetch_update(Relaxed, Relaxed, |n| (cap == 0 || n < cap).then_some(n + 1))
            .is_ok();
        ok.then(|| ActiveGuard(self.clone()))
    }

    pub(crate) fn drain_rx(&self) -> watch::Receiver<Option<Duration>> {
        self.drain.subscribe()
    }

    pub(crate) fn start_drain(&self, grace: Duration) {
        self.drain.send_replace(Some(grace));
    }
}

/// Holds one connection slot of a backend; releases it on drop.
#[derive(Debug)]
pub(crate) struct ActiveGuard(pub(crate) Arc<BackendRt>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

/// Resolves once `rx` signals a drain and its grace period has passed (never if it never does).
pub(crate) async fn drained(rx: &mut watch::Receiver<Option<Duration>>) {
    let grace = rx
        .wait_for(Option::is_some)
        .await
        .map(|g| g.unwrap_or_default());
    match grace {
        Ok(grace) => tokio::time::sleep(grace).await,
        Err(_) => std::future::pending().await,
    }
}

// === impl RouteRt / Snapshot ===

/// One listener's route as the hot path sees it.
pub struct RouteRt {
    pub route: Arc<Route>,
    pub backends: Vec<Arc<BackendRt>>,
    pub(crate) rr: AtomicUsize,
    pub(crate) tls: Option<TlsAcceptor>,
    pub stats: Arc<ListenerStats>,
}

/// The published state: one `load()` per accepted connection or new UDP flow.
#[derive(Default)]
pub struct Snapshot {
    pub(crate) routes: HashMap<ListenerKey, Arc<RouteRt>>,
}

impl Snapshot {
    pub fn get(&self, key: &ListenerKey) -> Option<&Arc<RouteRt>> {
        self.routes.get(key)
    }

    /// Routes in listener order.
    pub fn routes(&self) -> Vec<&Arc<RouteRt>> {
        let mut v: Vec<_> = self.routes.values().collect();
        v.sort_by_key(|r| r.route.key);
        v
    }
}

/// State shared by the control side and every connection task.
pub struct Shared {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    pub(crate) opts: ServerOptions,
    pub(crate) health_events: broadcast::Sender<HealthEvent>,
    live: AtomicUsize,
    idle: Notify,
}

impl Shared {
    pub(crate) fn new(opts: ServerOptions) -> Self {
        Self {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            opts,
            health_events: broadcast::Sender::new(256),
            live: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }

    /// Resolves once no connection or flow is live.
    pub(crate) async fn all_closed(&self) {
        loop {
            let notified = self.idle.notified();
            if self.live.load(Relaxed) == 0 {
                return;
            }
            notified.await;
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// Count a live connection or flow until the guard drops (for graceful shutdown).
    pub(crate) fn live_guard(self: &Arc<Self>) -> LiveGuard {
        self.live.fetch_add(1, Relaxed);
        LiveGuard(self.clone())
    }
}

pub(crate) struct LiveGuard(Arc<Shared>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Relaxed) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
