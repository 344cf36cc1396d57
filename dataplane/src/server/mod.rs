//! The proxy runtime's control side: turns each new [`RouteTable`] into a published [`Snapshot`]
//! (one `ArcSwap` store), binds and stops listeners, starts and stops health checks, and drains
//! connections of removed routes and backends.
//!
//! Update path: whoever produces tables (the routes-file watcher in [`crate::rootlb`], the
//! controller's notify subscriber in [`crate::subscribe`]) sends `Arc<RouteTable>` into a `watch`
//! channel consumed by [`run`] (in `run.rs`, with upgrade hand-offs), or calls [`Server::apply`]
//! directly. [`Server::apply`] loads certificates and binds sockets, asks the pure `plan` what
//! to do with the outcome, and carries that out. What connections read lives in
//! [`crate::runtime`], which imports nothing from here. A table is only ever built and validated
//! before it gets here, so nothing on this path can reject half a table; per-listener runtime
//! failures (port in use, unreadable certificate) are reported in the [`ApplyReport`] and leave
//! the rest running.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::runtime::{BackendRt, HealthEvent, RouteRt, ServerOptions, Shared, Snapshot};
use crate::stats::ListenerStats;
use crate::table::{HealthCheck, ListenerKey, Proto, Route, RouteTable};
use crate::{health, sockets, tcp, tls, udp};

mod plan;
mod run;

use plan::{BackendKey, Before, Version};
pub use run::{RETRY_FAILED, run, run_with_handoff};

/// Why one listener of an applied table is not serving.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// Binding the public port failed (typically: already in use by another process).
    #[error("cannot bind {proto} {addr}: {source}")]
    Bind {
        proto: Proto,
        addr: SocketAddr,
        source: io::Error,
    },
    /// The TLS certificate or key could not be loaded; a previous version keeps serving if any.
    #[error("TLS config for {key}: {source}")]
    Tls {
        key: ListenerKey,
        source: tls::TlsError,
    },
}

/// Outcome of one [`Server::apply`].
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Listeners serving after the apply.
    pub serving: Vec<ListenerKey>,
    /// Listeners of the table that are not serving (or serve a previous version), and why.
    pub failed: Vec<(ListenerKey, ListenerError)>,
}

// === impl Server ===

struct ListenerEntry {
    bind: SocketAddr,
    /// One task per socket (several for a UDP listener with `udp_sockets` > 1).
    tasks: Vec<JoinHandle<()>>,
    /// Duplicates of the listening sockets, to hand to a successor process (dropped with the
    /// entry, so a stopped listener's sockets still close).
    socks: Vec<OwnedFd>,
}

struct BackendEntry {
    rt: Arc<BackendRt>,
    check: Option<(HealthCheck, JoinHandle<()>)>,
}

/// Owns the listeners and applies tables. Not `Clone`: one control task drives it.
pub struct Server {
    shared: Arc<Shared>,
    current: Arc<RouteTable>,
    listeners: HashMap<ListenerKey, ListenerEntry>,
    backends: HashMap<BackendKey, BackendEntry>,
    listener_stats: HashMap<ListenerKey, Arc<ListenerStats>>,
    prebound_tcp: HashMap<SocketAddr, std::net::TcpListener>,
    prebound_udp: HashMap<SocketAddr, Vec<std::net::UdpSocket>>,
}

impl Server {
    pub fn new(opts: ServerOptions) -> Self {
        Self {
            shared: Arc::new(Shared::new(opts)),
            current: Arc::new(RouteTable::empty()),
            listeners: HashMap::new(),
            backends: HashMap::new(),
            listener_stats: HashMap::new(),
            prebound_tcp: HashMap::new(),
            prebound_udp: HashMap::new(),
        }
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Health changes, for the upstream reporter (and logs).
    pub fn health_events(&self) -> broadcast::Receiver<HealthEvent> {
        self.shared.health_events.subscribe()
    }

    /// Hand over an already-bound TCP listener (socket activation, binary upgrade, tests that bind
    /// port 0). It is used when a table asks for its exact local address.
    pub fn adopt_tcp(&mut self, l: std::net::TcpListener) -> io::Result<()> {
        sockets::prepare_adopted_tcp(&l)?;
        self.prebound_tcp.insert(l.local_addr()?, l);
        Ok(())
    }

    /// As [`Server::adopt_tcp`], for UDP.
    pub fn adopt_udp(&mut self, s: std::net::UdpSocket) -> io::Result<()> {
        sockets::prepare_adopted_udp(&s)?;
        self.prebound_udp
            .entry(s.local_addr()?)
            .or_default()
            .push(s);
        Ok(())
    }

    pub fn table(&self) -> &Arc<RouteTable> {
        &self.current
    }

    /// Make `table` the live table. Listeners that cannot start are reported and retried on the
    /// next apply; everything else switches atomically.
    pub async fn apply(&mut self, table: Arc<RouteTable>) -> ApplyReport {
        let before = self.before();
        let mut report = ApplyReport::default();
        // The I/O whose outcome the plan depends on: certificates of every TLS route, sockets
        // of new or moved listeners. A route whose certificate fails is not bound.
        let needed = plan::sockets_needed(&before, &table);
        let mut failed = BTreeSet::new();
        let mut prepared = HashMap::new();
        for route in table.routes() {
            let key = route.key;
            let acceptor = match route.tls.as_ref().map(tls::load_acceptor).transpose() {
                Ok(a) => a,
                Err(source) => {
                    report
                        .failed
                        .push((key, ListenerError::Tls { key, source }));
                    failed.insert(key);
                    continue;
                }
            };
            let socket = if needed.contains(&key) {
                match self.bind(route) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        report.failed.push((key, e));
                        failed.insert(key);
                        continue;
                    }
                }
            } else {
                None
            };
            prepared.insert(key, (acceptor, socket));
        }
        let plan = plan::plan(&before, &table, &failed);
        report.serving = plan.publish.iter().map(|(k, _)| *k).collect();
        self.execute(plan, &table, prepared).await;
        self.current = table;
        report
    }

    /// What the plan is computed from.
    fn before(&self) -> Before {
        let snap = self.shared.snapshot();
        Before {
            listeners: self.listeners.iter().map(|(k, l)| (*k, l.bind)).collect(),
            routes: snap
                .routes()
                .into_iter()
                .map(|rt| (rt.route.key, rt.route.clone()))
                .collect(),
            backends: self
                .backends
                .iter()
                .map(|(k, e)| (*k, e.check.as_ref().map(|(hc, _)| hc.clone())))
                .collect(),
        }
    }

    /// Carry out `plan`: publish, stop, start, drain, then follow the checks.
    async fn execute(
        &mut self,
        plan: plan::Plan,
        table: &RouteTable,
        mut prepared: HashMap<ListenerKey, Prepared>,
    ) {
        for bk in &plan.add {
            let rt = Arc::new(BackendRt::new(bk.1));
            self.backends.insert(*bk, BackendEntry { rt, check: None });
        }
        let old = self.shared.snapshot();
        let mut routes = HashMap::with_capacity(plan.publish.len());
        for (key, version) in &plan.publish {
            let rt = match (version, table.get(key)) {
                (Version::New, Some(route)) => {
                    let tls = prepared.get_mut(key).and_then(|p| p.0.take());
                    Arc::new(self.route_rt(route, tls))
                }
                _ => match old.get(key) {
                    Some(rt) => rt.clone(),
                    None => continue,
                },
            };
            routes.insert(*key, rt);
        }
        // Publish: one store. New connections see the new routes from here on.
        self.shared.snapshot.store(Arc::new(Snapshot { routes }));
        let snap = self.shared.snapshot();

        for key in &plan.stop {
            if let Some(l) = self.listeners.remove(key) {
                for t in &l.tasks {
                    t.abort();
                }
                // Wait for the sockets to be closed, so the port can be bound again at once.
                for t in l.tasks {
                    let _ = t.await;
                }
            }
        }
        for key in &plan.start {
            if let Some((_, Some((bind, bound, socks)))) = prepared.remove(key) {
                let tasks = self.spawn_listener(*key, bound);
                self.listeners
                    .insert(*key, ListenerEntry { bind, tasks, socks });
            }
        }
        for bk in &plan.drain {
            if let Some(e) = self.backends.remove(bk) {
                e.rt.start_drain(table.drain_grace);
                if let Some((_, t)) = e.check {
                    t.abort();
                }
            }
        }
        for (bk, want) in plan.checks {
            self.set_check(&snap, bk, want);
        }
        self.listener_stats.retain(|k, _| snap.get(k).is_some());
    }

    /// A new route's runtime state, with the backend entries the plan created or kept.
    fn route_rt(&mut self, route: &Arc<Route>, tls: Option<tokio_rustls::TlsAcceptor>) -> RouteRt {
        let key = route.key;
        let backends = route
            .backends
            .iter()
            .filter_map(|a| self.backends.get(&(key, *a)).map(|e| e.rt.clone()))
            .collect();
        RouteRt {
            route: route.clone(),
            backends,
            rr: AtomicUsize::new(0),
            tls,
            stats: self.listener_stats.entry(key).or_default().clone(),
        }
    }

    fn spawn_listener(&self, key: ListenerKey, bound: Bound) -> Vec<JoinHandle<()>> {
        match bound {
            Bound::Tcp(l) => vec![tokio::spawn(tcp::accept_loop(l, key, self.shared.clone()))],
            Bound::Udp(group) => {
                let share = u32::try_from(group.len()).unwrap_or(u32::MAX);
                group
                    .into_iter()
                    .map(|s| tokio::spawn(udp::listener_loop(s, key, share, self.shared.clone())))
                    .collect()
            }
        }
    }

    /// Replace a backend's active check (`None`: unchecked, counted healthy).
    fn set_check(&mut self, snap: &Snapshot, bk: BackendKey, want: Option<HealthCheck>) {
        let (Some(e), Some(rt)) = (self.backends.get_mut(&bk), snap.get(&bk.0)) else {
            return;
        };
        if let Some((_, t)) = e.check.take() {
            t.abort();
        }
        e.rt.set_checked_health(true);
        if let Some(hc) = want {
            let task = health::spawn(
                e.rt.clone(),
                rt.route.clone(),
                hc.clone(),
                self.shared.clone(),
            );
            e.check = Some((hc, task));
        }
    }

    /// A socket (group) for `route`: adopted if one was handed over for its address, else bound.
    fn bind(&mut self, route: &Route) -> Result<BoundSocket, ListenerError> {
        let addr = route.bind_addr();
        let proto = route.key.proto;
        let err = |source| ListenerError::Bind {
            proto,
            addr,
            source,
        };
        match proto {
            Proto::Tcp => {
                let std = match self.prebound_tcp.remove(&addr) {
                    Some(l) => l,
                    None => sockets::bind_tcp(addr).map_err(err)?,
                };
                let dup = std.as_fd().try_clone_to_owned().map_err(err)?;
                tokio::net::TcpListener::from_std(std)
                    .map(|l| (addr, Bound::Tcp(l), vec![dup]))
                    .map_err(err)
            }
            Proto::Udp => {
                let group = match self.prebound_udp.remove(&addr) {
                    Some(g) => g,
                    None => {
                        sockets::bind_udp_group(addr, self.shared.opts.udp_sockets).map_err(err)?
                    }
                };
                let mut socks = Vec::with_capacity(group.len());
                let mut bound = Vec::with_capacity(group.len());
                for std in group {
                    socks.push(std.as_fd().try_clone_to_owned().map_err(err)?);
                    bound.push(Arc::new(tokio::net::UdpSocket::from_std(std).map_err(err)?));
                }
                Ok((addr, Bound::Udp(bound), socks))
            }
        }
    }

    /// Duplicates of every serving listener's socket, for a successor process.
    pub fn listener_sockets(&self) -> io::Result<Vec<crate::handoff::Socket>> {
        let mut out = Vec::new();
        for (key, l) in &self.listeners {
            for sock in &l.socks {
                out.push(crate::handoff::Socket {
                    proto: key.proto,
                    addr: l.bind,
                    fd: sock.try_clone()?,
                });
            }
        }
        Ok(out)
    }

    /// Stop accepting, let connections finish for `grace`, then cut what is left.
    pub async fn shutdown(mut self, grace: Duration) {
        for (_, l) in self.listeners.drain() {
            for t in l.tasks {
                t.abort();
            }
        }
        for (_, e) in self.backends.drain() {
            e.rt.start_drain(grace);
            if let Some((_, t)) = e.check {
                t.abort();
            }
        }
        let all_closed = self.shared.all_closed();
        let _ = tokio::time::timeout(grace + Duration::from_millis(200), all_closed).await;
    }
}

enum Bound {
    Tcp(tokio::net::TcpListener),
    Udp(Vec<Arc<tokio::net::UdpSocket>>),
}

/// A listener's socket(s), bound: the address, the sockets for the tasks, and duplicates kept
/// for a successor process.
type BoundSocket = (SocketAddr, Bound, Vec<OwnedFd>);

/// What the I/O before the plan produced for one route: its TLS acceptor, and its socket if it
/// needed one.
type Prepared = (Option<tokio_rustls::TlsAcceptor>, Option<BoundSocket>);
