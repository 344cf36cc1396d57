//! UDP listeners: a flow per client address (sans-IO [`FlowTable`] with a cap), a connected
//! upstream socket per flow so the kernel demultiplexes return traffic, and a return-path task per
//! flow that also ends the flow after its idle timeout, on drain, or when the listener stops.

use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::decide::flows::FlowTable;
use crate::decide::pick::AttemptOrder;
use crate::metrics::ListenerStats;
use crate::server::{ActiveGuard, RouteRt, Shared, clock_ms, drained};
use crate::table::ListenerKey;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;
/// Datagrams handled per wake-up of a listener before other work gets a turn.
const BATCH: usize = 64;

thread_local! {
    /// Return-path receive buffer, shared by all flows on a worker thread (never held across an
    /// await), so an idle flow costs no buffer.
    static RX_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_DATAGRAM]);
}

struct Flow {
    id: u64,
    upstream: UdpSocket,
    last_ms: AtomicU64,
    guard: ActiveGuard,
}

impl Flow {
    fn touch(&self) {
        self.last_ms.store(clock_ms(), Relaxed);
    }
}

pub(crate) async fn listener_loop(sock: Arc<UdpSocket>, key: ListenerKey, shared: Arc<Shared>) {
    // Dropping `stop_tx` (this task ends or is aborted) ends every flow of this listener.
    let (stop_tx, stop_rx) = watch::channel(());
    let (closed_tx, mut closed_rx) = mpsc::unbounded_channel::<(SocketAddr, u64)>();
    let mut flows: FlowTable<Arc<Flow>> = FlowTable::new(0);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut next_id = 0u64;
    let mut outbox = Outbox::default();
    let _keep = &stop_tx;
    loop {
        tokio::select! {
            biased;
            Some((addr, id)) = closed_rx.recv() => {
                if flows.get(&addr).is_some_and(|f| f.id == id) {
                    flows.remove(&addr);
                }
            }
            r = sock.readable() => {
                if r.is_err() {
                    continue;
                }
                // Drain a batch per wake-up; datagrams of one flow leave together (UDP GSO).
                for _ in 0..BATCH {
                    let (n, client) = match sock.try_recv_from(&mut buf) {
                        Ok(x) => x,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => continue,
                    };
                    let data = &buf[..n];
                    if let Some(f) = flows.get(&client) {
                        outbox.push(f, data);
                        continue;
                    }
                    let Some(rt) = shared.load().get(&key).cloned() else { continue };
                    let Some(flow) = new_flow(&mut flows, client, &rt, &mut next_id) else { continue };
                    outbox.push(&flow, data);
                    tokio::spawn(return_path(
                        flow,
                        client,
                        sock.clone(),
                        rt.route.udp.idle_timeout,
                        stop_rx.clone(),
                        closed_tx.clone(),
                        rt.stats.clone(),
                        shared.live_guard(),
                    ));
                }
                let dropped = outbox.flush();
                if dropped > 0 && let Some(rt) = shared.load().get(&key) {
                    rt.stats.udp_drops_send.add(dropped);
                }
            }
        }
    }
}

/// Open a flow for a new client, unless the table is full or no backend socket can be made.
fn new_flow(
    flows: &mut FlowTable<Arc<Flow>>,
    client: SocketAddr,
    rt: &RouteRt,
    next_id: &mut u64,
) -> Option<Arc<Flow>> {
    flows.set_cap(rt.route.udp.max_flows as usize);
    if flows.len() >= rt.route.udp.max_flows as usize {
        rt.stats.udp_drops_full.inc();
        return None;
    }
    let Some((upstream, guard)) = open_upstream(rt) else {
        rt.stats.udp_drops_send.inc();
        return None;
    };
    *next_id += 1;
    let flow = Arc::new(Flow {
        id: *next_id,
        upstream,
        last_ms: AtomicU64::new(clock_ms()),
        guard,
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

/// Datagrams of one flow that leave in one `sendmsg` with UDP GSO: equal-sized segments, the last
/// one possibly shorter, at most [`GSO_MAX_SEGS`] and 64 KiB.
struct Batch {
    flow: Arc<Flow>,
    buf: Vec<u8>,
    seg: usize,
    count: u64,
    closed: bool,
}

/// Client → backend datagrams collected during one wake-up of a listener, in arrival order.
#[derive(Default)]
struct Outbox {
    batches: Vec<Batch>,
    spare: Vec<Vec<u8>>,
}

/// Segments per GSO send (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
const GSO_MAX_SEGS: u64 = 64;
/// Only datagrams that fit a standard 1500-byte MTU are coalesced, so GSO never has to fail
/// on the way out of a real NIC.
const GSO_MAX_SEG_SIZE: usize = 1472;

impl Outbox {
    fn push(&mut self, f: &Arc<Flow>, data: &[u8]) {
        f.touch();
        if let Some(b) = self.batches.iter_mut().rev().find(|b| b.flow.id == f.id)
            && !b.closed
            && data.len() <= b.seg
            && b.count < GSO_MAX_SEGS
            && b.buf.len() + data.len() <= 65_000
        {
            b.buf.extend_from_slice(data);
            b.count += 1;
            b.closed = data.len() < b.seg;
            return;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.extend_from_slice(data);
        let seg = data.len();
        self.batches.push(Batch {
            flow: f.clone(),
            buf,
            seg,
            count: 1,
            closed: seg > GSO_MAX_SEG_SIZE || seg == 0,
        });
    }

    /// Send everything; returns the number of datagrams dropped.
    fn flush(&mut self) -> u64 {
        let mut dropped = 0;
        for mut b in self.batches.drain(..) {
            let stats = &b.flow.guard.0.stats;
            let sent = send_batch(&b);
            stats.packets_in.add(sent);
            stats.bytes_in.add(if sent == b.count {
                b.buf.len() as u64
            } else {
                sent * b.seg as u64
            });
            dropped += b.count - sent;
            b.buf.clear();
            if self.spare.len() < 16 {
                self.spare.push(b.buf);
            }
        }
        dropped
    }
}

/// Send a batch on the flow's connected socket; returns how many datagrams went out. Direct
/// syscalls (no readiness check): a fresh socket may not have seen its first writable event yet,
/// and a full socket buffer drops rather than waits.
fn send_batch(b: &Batch) -> u64 {
    use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};
    use std::os::fd::AsRawFd;
    let sock = socket2::SockRef::from(&b.flow.upstream);
    if b.count == 1 {
        return u64::from(sock.send(&b.buf).is_ok());
    }
    let seg = u16::try_from(b.seg).unwrap_or(u16::MAX);
    let iov = [io::IoSlice::new(&b.buf)];
    let gso = [ControlMessage::UdpGsoSegments(&seg)];
    let fd = b.flow.upstream.as_raw_fd();
    if sendmsg::<SockaddrStorage>(fd, &iov, &gso, MsgFlags::empty(), None).is_ok() {
        return b.count;
    }
    // No GSO on this path (or a full buffer): one datagram at a time.
    b.buf
        .chunks(b.seg)
        .map(|d| u64::from(sock.send(d).is_ok()))
        .sum()
}

fn open_upstream(rt: &RouteRt) -> Option<(UdpSocket, ActiveGuard)> {
    let mut order = AttemptOrder::new(rt.backends.len(), rt.rr.fetch_add(1, Relaxed));
    let now = clock_ms();
    while let Some(i) = order.next_index(|i| rt.backends[i].is_healthy(now)) {
        let b = &rt.backends[i];
        let Some(guard) = b.try_acquire(0) else {
            continue;
        };
        match connected_socket(b.addr) {
            Ok(s) => return Some((s, guard)),
            Err(e) => {
                tracing::debug!(backend = %b.addr, "udp upstream socket: {e}");
                b.stats.connect_errors.inc();
            }
        }
    }
    None
}

fn connected_socket(backend: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = if backend.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(local)?;
    s.connect(backend)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
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
    _live: crate::server::LiveGuard,
) {
    let mut drain = flow.guard.0.drain_rx();
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    let b = &flow.guard.0.stats;
    loop {
        let since = clock_ms().saturating_sub(flow.last_ms.load(Relaxed));
        if since >= idle_ms {
            break;
        }
        let wait = Duration::from_millis(idle_ms - since);
        tokio::select! {
            r = flow.upstream.readable() => {
                if r.is_err() { break; }
                RX_BUF.with_borrow_mut(|buf| {
                    for _ in 0..64 {
                        match flow.upstream.try_recv(buf) {
                            Ok(n) => {
                                flow.touch();
                                if socket2::SockRef::from(&*listen).send_to(&buf[..n], &client.into()).is_ok() {
                                    b.packets_out.inc();
                                    b.bytes_out.add(n as u64);
                                } else {
                                    stats.udp_drops_send.inc();
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            // ICMP errors (e.g. port unreachable) surface here; keep the flow.
                            Err(_) => {}
                        }
                    }
                });
            }
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
            _ = drained(&mut drain) => break,
        }
    }
    stats.udp_flows_active.dec();
    let _ = closed.send((client, flow.id));
}
