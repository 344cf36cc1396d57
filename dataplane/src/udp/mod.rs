//! UDP listeners: a flow per client address (sans-IO [`FlowTable`] with a cap), a connected
//! upstream socket per flow so the kernel demultiplexes return traffic, and a return-path task per
//! flow that also ends the flow after its idle timeout, on drain, when the listener stops, or
//! when its backend's port is unreachable (passive ejection).
//!
//! Hot path: every wake-up (of a listener or of a flow's return path) takes a batch of datagrams
//! with one recvmmsg(2) and sends the datagrams of one flow as UDP GSO trains ([`batch`]).
//! Nothing is allocated, locked or written to a shared counter per datagram: the flow lookup is
//! skipped for consecutive datagrams of one client, and a flow's activity time and byte/packet
//! counters are updated once per wake-up.
//!
//! A `quic` route ([`crate::table::QuicMode`]) decides each read by the server id in its QUIC
//! destination connection id ([`crate::decide::quic`]): a client whose address changed
//! mid-connection gets a new flow to the backend that holds its connection, not a round-robin
//! pick. Unreadable connection ids (a client's first Initial) use the flows as any UDP route.

mod batch;

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::decide::flows::FlowTable;
use crate::decide::pick::AttemptOrder;
use crate::decide::quic::{self, Action};
use crate::runtime::{ActiveGuard, BackendRt, LiveGuard, RouteRt, Shared, clock_ms, drained};
use crate::stats::ListenerStats;
use crate::table::ListenerKey;
use batch::{BATCH, RING, RxRing, Sent, Train, is_refused, recv_batch};

struct Flow {
    id: u64,
    client: SocketAddr,
    upstream: UdpSocket,
    /// Backend is IPv6 (GSO segment limit).
    v6: bool,
    last_ms: AtomicU64,
    guard: ActiveGuard,
    /// Passive ejection period of the backend (the route's `eject_for`).
    eject_for: Duration,
    /// Ends the flow's return path (its backend refused).
    end: tokio::sync::Notify,
}

impl Flow {
    /// The backend's port is unreachable: eject the backend (passive health, as a failed TCP
    /// connect does) so that the client's next datagram opens a flow to another backend.
    fn refused(&self) {
        let b = &self.guard.0;
        b.eject(self.eject_for);
        b.stats.connect_errors.inc();
        tracing::debug!(backend = %b.addr, client = %self.client, "udp backend port unreachable: ejected");
    }
}

/// A listener's state between wake-ups.
struct Listener {
    sock: Arc<UdpSocket>,
    key: ListenerKey,
    /// Sockets of this listener (`SO_REUSEPORT` group); the flow cap is split between them.
    share: u32,
    shared: Arc<Shared>,
    flows: FlowTable<Arc<Flow>>,
    next_id: u64,
    stop_rx: watch::Receiver<()>,
    closed_tx: mpsc::UnboundedSender<(SocketAddr, u64)>,
    /// Flows with datagrams in the current batch (kept to reuse its allocation).
    active: Vec<Arc<Flow>>,
}

/// Serves one socket of a UDP listener whose sockets number `share` (`SO_REUSEPORT` group):
/// this socket's flows get that share of the route's flow cap.
pub(crate) async fn listener_loop(
    sock: Arc<UdpSocket>,
    key: ListenerKey,
    share: u32,
    shared: Arc<Shared>,
) {
    // Dropping `stop_tx` (this task ends or is aborted) ends every flow of this listener.
    let (stop_tx, stop_rx) = watch::channel(());
    let (closed_tx, mut closed_rx) = mpsc::unbounded_channel::<(SocketAddr, u64)>();
    let mut l = Listener {
        sock,
        key,
        share: share.max(1),
        shared,
        flows: FlowTable::new(0),
        next_id: 0,
        stop_rx,
        closed_tx,
        active: Vec::new(),
    };
    let _keep = &stop_tx;
    loop {
        tokio::select! {
            biased;
            Some((addr, id)) = closed_rx.recv() => {
                if l.flows.get(&addr).is_some_and(|f| f.id == id) {
                    l.flows.remove(&addr);
                }
            }
            r = l.sock.readable() => {
                if r.is_ok() {
                    RING.with_borrow_mut(|ring| l.forward_batch(ring));
                }
            }
        }
    }
}

/// Marks a datagram of the batch that belongs to no flow (shed or no backend).
const NO_FLOW: u8 = u8::MAX;

impl Listener {
    /// Receive one batch and send each flow's datagrams on as GSO trains, in arrival order.
    fn forward_batch(&mut self, ring: &mut RxRing) {
        let n = recv_batch(&self.sock, ring, true).unwrap_or(0);
        if n == 0 {
            return;
        }
        // A `quic` route decides per read; one snapshot load per batch tells.
        let quic_rt = self
            .shared
            .load()
            .get(&self.key)
            .filter(|rt| rt.route.quic.is_some())
            .cloned();
        // Which entry of `self.active` each datagram belongs to.
        let mut owner = [NO_FLOW; BATCH];
        let mut last: Option<(SocketAddr, u8)> = None;
        for (i, o) in owner.iter_mut().enumerate().take(n) {
            let Some(client) = ring.addr(i) else { continue };
            if let Some(rt) = &quic_rt {
                // A read is one datagram or a GRO train of one sender's datagrams (a QUIC
                // stack's train is one connection's packets): its first one decides.
                let first = ring.datagrams(i).next().unwrap_or_default();
                if let Some(k) = self.quic_flow(rt, client, first) {
                    // At most BATCH (64) flows per batch, so the index fits.
                    *o = k as u8;
                }
                continue;
            }
            if let Some((a, k)) = last
                && a == client
            {
                *o = k;
                continue;
            }
            let k = match self.flows.get(&client) {
                Some(f) => match self.active.iter().position(|a| a.id == f.id) {
                    Some(k) => k,
                    None => {
                        self.active.push(f.clone());
                        self.active.len() - 1
                    }
                },
                None => match self.open_flow(client, None) {
                    Some(f) => {
                        self.active.push(f);
                        self.active.len() - 1
                    }
                    None => {
                        last = None;
                        continue;
                    }
                },
            };
            // At most BATCH (64) flows per batch, so the index fits.
            let k = k as u8;
            *o = k;
            last = Some((client, k));
        }
        let now = clock_ms();
        let mut dropped = 0;
        // Flows whose backend refused (indices into `self.active`).
        let mut refused = [false; BATCH];
        for (k, f) in self.active.iter().enumerate() {
            f.last_ms.store(now, Relaxed);
            let fd = f.upstream.as_raw_fd();
            let mut train = Train::new(f.v6);
            let mut sent = Sent::default();
            for i in (0..n).filter(|&i| usize::from(owner[i]) == k) {
                for d in ring.datagrams(i) {
                    if !train.try_push(d) {
                        sent += train.flush(fd, None);
                        train.try_push(d);
                    }
                }
            }
            sent += train.flush(fd, None);
            let stats = &f.guard.0.stats;
            stats.packets_in.add(sent.packets);
            stats.bytes_in.add(sent.bytes);
            dropped += sent.dropped;
            if sent.refused {
                f.refused();
                f.end.notify_one();
                refused[k] = true;
            }
        }
        for (f, _) in self.active.iter().zip(refused).filter(|(_, r)| *r) {
            if self.flows.get(&f.client).is_some_and(|g| g.id == f.id) {
                self.flows.remove(&f.client);
            }
        }
        self.active.clear();
        if dropped > 0
            && let Some(rt) = self.shared.load().get(&self.key)
        {
            rt.stats.udp_drops_send.add(dropped);
        }
    }

    /// The entry of `self.active` for a datagram of a `quic` route from `client`, opening or
    /// replacing the client's flow as [`quic::decide`] says; `None`: dropped (shed, no backend).
    fn quic_flow(&mut self, rt: &RouteRt, client: SocketAddr, datagram: &[u8]) -> Option<usize> {
        let mode = rt.route.quic.as_ref()?;
        let backends = &rt.route.backends;
        let flow_backend = self.flows.get(&client).map(|f| f.guard.0.addr);
        let flow = match quic::decide(datagram, mode, flow_backend, backends) {
            Action::UseFlow => {
                // Found by id first: cloning the Arc per datagram would write its shared count.
                let f = self.flows.get(&client)?;
                if let Some(k) = self.active.iter().position(|a| a.id == f.id) {
                    return Some(k);
                }
                f.clone()
            }
            Action::Open(pick) => self.open_flow(client, pick.map(|i| backends[i]))?,
            Action::Replace(i) => {
                // A new connection from an address whose flow serves another backend: that
                // flow's connection has moved on or ended, or (two connections on one client
                // socket) will take its flow back with its next datagram.
                if let Some(old) = self.flows.remove(&client) {
                    old.end.notify_one();
                }
                self.open_flow(client, Some(backends[i]))?
            }
        };
        Some(match self.active.iter().position(|a| a.id == flow.id) {
            Some(k) => k,
            None => {
                self.active.push(flow);
                self.active.len() - 1
            }
        })
    }

    /// A new client: open a flow (to backend `to`, or the usual pick) and start its return
    /// path, unless shed or no backend.
    fn open_flow(&mut self, client: SocketAddr, to: Option<SocketAddr>) -> Option<Arc<Flow>> {
        let rt = self.shared.load().get(&self.key).cloned()?;
        let cap = rt.route.udp.max_flows.div_ceil(self.share) as usize;
        let flow = new_flow(&mut self.flows, client, &rt, to, cap, &mut self.next_id)?;
        tokio::spawn(return_path(
            flow.clone(),
            client,
            self.sock.clone(),
            rt.route.udp.idle_timeout,
            self.stop_rx.clone(),
            self.closed_tx.clone(),
            rt.stats.clone(),
            self.shared.live_guard(),
        ));
        Some(flow)
    }
}

/// Open a flow for a new client (to backend `to`, or the usual pick), unless the table is full
/// or no backend socket can be made.
fn new_flow(
    flows: &mut FlowTable<Arc<Flow>>,
    client: SocketAddr,
    rt: &RouteRt,
    to: Option<SocketAddr>,
    cap: usize,
    next_id: &mut u64,
) -> Option<Arc<Flow>> {
    flows.set_cap(cap);
    if flows.len() >= cap {
        rt.stats.udp_drops_full.inc();
        return None;
    }
    let Some((upstream, v6, guard)) = open_upstream(rt, to) else {
        rt.stats.udp_drops_send.inc();
        return None;
    };
    *next_id += 1;
    let flow = Arc::new(Flow {
        id: *next_id,
        client,
        upstream,
        v6,
        last_ms: AtomicU64::new(clock_ms()),
        guard,
        eject_for: rt.route.eject_for,
        end: tokio::sync::Notify::new(),
    });
    if flows.insert(client, flow.clone()).is_err() {
        rt.stats.udp_drops_full.inc();
        return None;
    }
    rt.stats.udp_flows_created.inc();
    rt.stats.udp_flows_active.inc();
    flow.guard.0.stats.connections.inc();
    Some(flow)
}

/// A connected socket to backend `to` or, without one (or if the table no longer has it), to
/// the first backend of the round-robin attempt order whose socket can be made.
fn open_upstream(rt: &RouteRt, to: Option<SocketAddr>) -> Option<(UdpSocket, bool, ActiveGuard)> {
    if let Some(b) = to.and_then(|a| rt.backends.iter().find(|b| b.addr == a)) {
        // The connection lives on this backend and no other could serve it, so its health
        // does not matter.
        return upstream_to(b);
    }
    let mut order = AttemptOrder::new(rt.backends.len(), rt.rr.fetch_add(1, Relaxed));
    let now = clock_ms();
    while let Some(i) = order.next_index(|i| rt.backends[i].is_healthy(now)) {
        if let Some(up) = upstream_to(&rt.backends[i]) {
            return Some(up);
        }
    }
    None
}

fn upstream_to(b: &Arc<BackendRt>) -> Option<(UdpSocket, bool, ActiveGuard)> {
    // UDP flows have no cap per backend (the flow table has one).
    let guard = b.try_acquire(0)?;
    match crate::sockets::connected_udp(b.addr) {
        Ok(s) => {
            crate::sockets::enable_gro(&s);
            Some((s, b.addr.is_ipv6(), guard))
        }
        Err(e) => {
            tracing::debug!(backend = %b.addr, "udp upstream socket: {e}");
            b.stats.connect_errors.inc();
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn return_path(
    flow: Arc<Flow>,
    client: SocketAddr,
    listen: Arc<UdpSocket>,
    idle: Duration,
    mut stop: watch::Receiver<()>,
    closed: mpsc::UnboundedSender<(SocketAddr, u64)>,
    stats: Arc<ListenerStats>,
    _live: LiveGuard,
) {
    let mut drain = flow.guard.0.drain_rx();
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    let b = &flow.guard.0.stats;
    let dest = socket2::SockAddr::from(client);
    loop {
        let since = clock_ms().saturating_sub(flow.last_ms.load(Relaxed));
        if since >= idle_ms {
            break;
        }
        let wait = Duration::from_millis(idle_ms - since);
        tokio::select! {
            r = flow.upstream.readable() => {
                if r.is_err() { break; }
                let sent = RING.with_borrow_mut(|ring| return_batch(&flow, ring, &listen, &dest));
                b.packets_out.add(sent.packets);
                b.bytes_out.add(sent.bytes);
                if sent.dropped > 0 {
                    stats.udp_drops_send.add(sent.dropped);
                }
                if sent.refused {
                    flow.refused();
                    break;
                }
            }
            () = flow.end.notified() => break,
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
            _ = drained(&mut drain) => break,
        }
    }
    stats.udp_flows_active.dec();
    let _ = closed.send((client, flow.id));
}

/// Receive one batch of replies on the flow's upstream socket and send them to the client from
/// the listener socket as GSO trains.
fn return_batch(
    flow: &Flow,
    ring: &mut RxRing,
    listen: &UdpSocket,
    dest: &socket2::SockAddr,
) -> Sent {
    let mut sent = Sent::default();
    let n = match recv_batch(&flow.upstream, ring, false) {
        Ok(n) => n,
        Err(e) => {
            sent.refused = is_refused(&e);
            return sent;
        }
    };
    if n == 0 {
        return sent;
    }
    flow.last_ms.store(clock_ms(), Relaxed);
    let fd = listen.as_raw_fd();
    let mut train = Train::new(dest.is_ipv6());
    for d in (0..n).flat_map(|i| ring.datagrams(i)) {
        if !train.try_push(d) {
            sent += train.flush(fd, Some(dest));
            train.try_push(d);
        }
    }
    sent += train.flush(fd, Some(dest));
    sent
}
