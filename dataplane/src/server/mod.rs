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
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            copy_mode: CopyMode::Auto,
            copy_buf: 16 * 1024,
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
    task: JoinHandle<()>,
    /// A duplicate of the listening socket, to hand to a successor process (dropped with the
    /// entry, so a stopped listener's socket still closes).
    sock: std::os::fd::OwnedFd,
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
    prebound_udp: HashMap<SocketAddr, std::net::UdpSocket>,
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
        let sock = socket2::SockRef::from(&s);
        let _ = sock.set_recv_buffer_size(UDP_SOCKET_BUFFER);
        let _ = sock.set_send_buffer_size(UDP_SOCKET_BUFFER);
        self.prebound_udp.insert(s.local_addr()?, s);
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
        let mut new_tasks: Vec<(ListenerKey, SocketAddr, Bound, std::os::fd::OwnedFd)> = Vec::new();

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
                    Ok((b, sock)) => new_tasks.push((key, route.bind_addr(), b, sock)),
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
                l.task.abort();
                // Wait for the socket to be closed, so the port can be bound again at once.
                let _ = l.task.await;
            }
        }
        for (key, bind, bound, sock) in new_tasks {
            let task = match bound {
                Bound::Tcp(l) => tokio::spawn(tcp::accept_loop(l, key, self.shared.clone())),
                Bound::Udp(s) => tokio::spawn(udp::listener_loop(s, key, self.shared.clone())),
            };
            self.listeners
                .insert(key, ListenerEntry { bind, task, sock });
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
            let want = rt
                .route
                .health_check
                .filter(|_| rt.route.key.proto == Proto::Tcp);
            for b in &rt.backends {
                let Some(e) = self.backends.get_mut(&(rt.route.key, b.addr)) else {
                    continue;
                };
                if e.check.as_ref().map(|(hc, _)| *hc) == want {
                    continue;
                }
                if let Some((_, t)) = e.check.take() {
                    t.abort();
                }
                e.rt.set_checked_health(true);
                if let Some(hc) = want {
                    let task =
                        health::spawn(e.rt.clone(), rt.route.clone(), hc, self.shared.clone());
                    e.check = Some((hc, task));
                }
            }
        }
        self.listener_stats.retain(|k, _| snap.get(k).is_some());
        report.serving = snap.routes().iter().map(|r| r.route.key).collect();
        self.current = table;
        report
    }

    fn bind(&mut self, route: &Route) -> Result<(Bound, std::os::fd::OwnedFd), ListenerError> {
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
                    .map(|l| (Bound::Tcp(l), dup))
                    .map_err(err)
            }
            Proto::Udp => {
                let std = match self.prebound_udp.remove(&addr) {
                    Some(s) => s,
                    None => bind_udp(addr).map_err(err)?,
                };
                let dup = std::os::fd::AsFd::as_fd(&std)
                    .try_clone_to_owned()
                    .map_err(err)?;
                tokio::net::UdpSocket::from_std(std)
                    .map(|s| (Bound::Udp(Arc::new(s)), dup))
                    .map_err(err)
            }
        }
    }

    /// Duplicates of every serving listener's socket, for a successor process.
    pub fn listener_sockets(&self) -> io::Result<Vec<crate::handoff::Socket>> {
        self.listeners
            .iter()
            .map(|(key, l)| {
                Ok(crate::handoff::Socket {
                    proto: key.proto,
                    addr: l.bind,
                    fd: l.sock.try_clone()?,
                })
            })
            .collect()
    }

    /// Stop accepting, let connections finish for `grace`, then cut what is left.
    pub async fn shutdown(mut self, grace: Duration) {
        for (_, l) in self.listeners.drain() {
            l.task.abort();
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
    Udp(Arc<tokio::net::UdpSocket>),
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

fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(false)?;
    }
    let _ = s.set_recv_buffer_size(UDP_SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(UDP_SOCKET_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}
