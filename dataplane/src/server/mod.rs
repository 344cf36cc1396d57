//! The proxy runtime's control side: turns each new [`RouteTable`] into a published [`Snapshot`]
//! (one `ArcSwap` store), binds and stops listeners, starts and stops health checks, and drains
//! connections of removed routes and backends.
//!
//! Update path: whoever produces tables (the routes-file watcher in [`crate::rootlb`], the
//! controller's notify subscriber in [`crate::subscribe`]) sends `Arc<RouteTable>` into a `watch`
//! channel consumed by [`run`] (in `run.rs`, with upgrade hand-offs), or calls [`Server::apply`]
//! directly. What connections read lives in `runtime.rs`. A table is only ever built and validated before it
//! gets here, so nothing on this path can reject half a table; per-listener runtime failures (port
//! in use, unreadable certificate) are reported in the [`ApplyReport`] and leave the rest running.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use crate::metrics::ListenerStats;
use crate::table::{HealthCheck, ListenerKey, Proto, Route, RouteTable};
use crate::{health, tcp, tls, udp};

mod run;
mod runtime;

pub use run::{RETRY_FAILED, run, run_with_handoff};
pub(crate) use runtime::{ActiveGuard, LiveGuard, clock_ms, drained};
pub use runtime::{BackendRt, RouteRt, Shared, Snapshot};

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
    socks: Vec<std::os::fd::OwnedFd>,
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
    backends: HashMap<(ListenerKey, SocketAddr), BackendEntry>,
    listener_stats: HashMap<ListenerKey, Arc<ListenerStats>>,
    prebound_tcp: HashMap<SocketAddr, std::net::TcpListener>,
    prebound_udp: HashMap<SocketAddr, Vec<std::net::UdpSocket>>,
}

impl Server {
    pub fn new(opts: ServerOptions) -> Self {
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            opts,
            health_events: broadcast::Sender::new(256),
            live: AtomicUsize::new(0),
            idle: Notify::new(),
        });
        Self {
            shared,
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
        l.set_nonblocking(true)?;
        // As in `bind_tcp`: accepted sockets inherit it.
        socket2::SockRef::from(&l).set_tcp_nodelay(true)?;
        self.prebound_tcp.insert(l.local_addr()?, l);
        Ok(())
    }

    /// As [`Server::adopt_tcp`], for UDP.
    pub fn adopt_udp(&mut self, s: std::net::UdpSocket) -> io::Result<()> {
        s.set_nonblocking(true)?;
        tune_udp(&socket2::SockRef::from(&s));
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
        let mut report = ApplyReport::default();
        let old_snap = self.shared.snapshot();
        let mut routes = HashMap::new();
        let mut new_tasks: Vec<(ListenerKey, SocketAddr, Bound, Vec<std::os::fd::OwnedFd>)> =
            Vec::new();

        for route in table.routes() {
            let key = route.key;
            // A changed bind address means a different socket: stop the old one below.
            let keep_socket = self
                .listeners
                .get(&key)
                .is_some_and(|l| l.bind == route.bind_addr());
            let tls = match &route.tls {
                None => None,
                Some(files) => match tls::load_acceptor(files) {
                    Ok(a) => Some(a),
                    Err(source) => {
                        report
                            .failed
                            .push((key, ListenerError::Tls { key, source }));
                        if keep_socket && let Some(old) = old_snap.get(&key) {
                            routes.insert(key, old.clone());
                        }
                        continue;
                    }
                },
            };
            if !keep_socket {
                match self.bind(route) {
                    Ok((b, socks)) => new_tasks.push((key, route.bind_addr(), b, socks)),
                    Err(e) => {
                        report.failed.push((key, e));
                        continue;
                    }
                }
            }
            let stats = self.listener_stats.entry(key).or_default().clone();
            let backends = route
                .backends
                .iter()
                .map(|a| {
                    let e = self
                        .backends
                        .entry((key, *a))
                        .or_insert_with(|| BackendEntry {
                            rt: Arc::new(BackendRt::new(*a)),
                            check: None,
                        });
                    e.rt.clone()
                })
                .collect();
            let rt = RouteRt {
                route: route.clone(),
                backends,
                rr: AtomicUsize::new(0),
                tls,
                stats,
            };
            routes.insert(key, Arc::new(rt));
        }

        // Publish: one store. New connections see the new routes from here on.
        self.shared.snapshot.store(Arc::new(Snapshot { routes }));
        let snap = self.shared.snapshot();

        // Stop listeners that are gone, failed or rebound elsewhere.
        let stale: Vec<ListenerKey> = self
            .listeners
            .iter()
            .filter(|(k, l)| snap.get(k).is_none_or(|r| r.route.bind_addr() != l.bind))
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            if let Some(l) = self.listeners.remove(&k) {
                for t in &l.tasks {
                    t.abort();
                }
                // Wait for the sockets to be closed, so the port can be bound again at once.
                for t in l.tasks {
                    let _ = t.await;
                }
            }
        }
        for (key, bind, bound, socks) in new_tasks {
            let tasks = match bound {
                Bound::Tcp(l) => vec![tokio::spawn(tcp::accept_loop(l, key, self.shared.clone()))],
                Bound::Udp(group) => {
                    let share = u32::try_from(group.len()).unwrap_or(u32::MAX);
                    group
                        .into_iter()
                        .map(|s| {
                            tokio::spawn(udp::listener_loop(s, key, share, self.shared.clone()))
                        })
                        .collect()
                }
            };
            self.listeners
                .insert(key, ListenerEntry { bind, tasks, socks });
        }

        // Backends no longer routed drain; health checks follow the table.
        let grace = table.drain_grace;
        self.backends.retain(|(key, addr), e| {
            let live = snap
                .get(key)
                .is_some_and(|r| r.backends.iter().any(|b| b.addr == *addr));
            if !live {
                e.rt.start_drain(grace);
                if let Some((_, t)) = e.check.take() {
                    t.abort();
                }
            }
            live
        });
        for rt in snap.routes() {
            let want = rt.route.health_check.as_ref();
            for b in &rt.backends {
                let Some(e) = self.backends.get_mut(&(rt.route.key, b.addr)) else {
                    continue;
                };
                if e.check.as_ref().map(|(hc, _)| hc) == want {
                    continue;
                }
                if let Some((_, t)) = e.check.take() {
                    t.abort();
                }
                e.rt.set_checked_health(true);
                if let Some(hc) = want.cloned() {
                    let task = health::spawn(
                        e.rt.clone(),
                        rt.route.clone(),
                        hc.clone(),
                        self.shared.clone(),
                    );
                    e.check = Some((hc, task));
                }
            }
        }
        self.listener_stats.retain(|k, _| snap.get(k).is_some());
        report.serving = snap.routes().iter().map(|r| r.route.key).collect();
        self.current = table;
        report
    }

    fn bind(&mut self, route: &Route) -> Result<(Bound, Vec<std::os::fd::OwnedFd>), ListenerError> {
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
                    None => bind_tcp(addr).map_err(err)?,
                };
                let dup = std::os::fd::AsFd::as_fd(&std)
                    .try_clone_to_owned()
                    .map_err(err)?;
                tokio::net::TcpListener::from_std(std)
                    .map(|l| (Bound::Tcp(l), vec![dup]))
                    .map_err(err)
            }
            Proto::Udp => {
                let group = match self.prebound_udp.remove(&addr) {
                    Some(g) => g,
                    None => bind_udp_group(addr, self.shared.opts.udp_sockets).map_err(err)?,
                };
                let mut socks = Vec::with_capacity(group.len());
                let mut bound = Vec::with_capacity(group.len());
                for std in group {
                    socks.push(
                        std::os::fd::AsFd::as_fd(&std)
                            .try_clone_to_owned()
                            .map_err(err)?,
                    );
                    bound.push(Arc::new(tokio::net::UdpSocket::from_std(std).map_err(err)?));
                }
                Ok((Bound::Udp(bound), socks))
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
        let shared = self.shared.clone();
        let all_closed = async {
            loop {
                let notified = shared.idle.notified();
                if shared.live.load(Relaxed) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(grace + Duration::from_millis(200), all_closed).await;
    }
}

enum Bound {
    Tcp(tokio::net::TcpListener),
    Udp(Vec<Arc<tokio::net::UdpSocket>>),
}

pub(crate) fn bind_tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(false)?;
    }
    s.set_nonblocking(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener (Linux), so no per-connection call.
    s.set_tcp_nodelay(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(s.into())
}

/// Requested UDP listener buffers: bursts should queue, not drop (the kernel caps this at
/// `net.core.rmem_max` / `wmem_max`; raise those on a real LB host).
const UDP_SOCKET_BUFFER: usize = 8 << 20;

/// What every UDP listener socket gets, bound here or adopted: large buffers and GRO reads.
/// Best effort: a kernel that refuses either still serves.
fn tune_udp(s: &socket2::Socket) {
    let _ = s.set_recv_buffer_size(UDP_SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(UDP_SOCKET_BUFFER);
    udp::enable_gro(s);
}

/// `n` UDP sockets on `addr` (with `SO_REUSEPORT` when `n` > 1).
fn bind_udp_group(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::UdpSocket>> {
    if n > 1 {
        // A group would silently join another process's `SO_REUSEPORT` sockets on the port
        // (same user, e.g. a second root LB) and split its traffic. A plain bind first fails
        // with EADDRINUSE if anything holds the port, so that is reported as usual.
        drop(bind_udp(addr, false)?);
    }
    (0..n.max(1)).map(|_| bind_udp(addr, n > 1)).collect()
}

fn bind_udp(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(false)?;
    }
    // Before the bind, so that no datagram is queued without GRO.
    tune_udp(&s);
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}
