//! UDP listeners: a flow per client address (sans-IO [`FlowTable`] with a cap), a connected
//! upstream socket per flow so the kernel demultiplexes return traffic, and a return-path task per
//! flow that also ends the flow after its idle timeout, on drain, or when the listener stops.
//!
//! Hot path: every wake-up (of a listener or of a flow's return path) takes up to [`BATCH`]
//! datagrams with one recvmmsg(2) into a per-thread buffer, and sends the datagrams of one flow
//! as UDP GSO trains (one sendmsg(2) for up to 64 equal-sized datagrams, its iovecs pointing
//! straight into the receive buffer, no copy). Nothing is allocated, locked or written to a shared
//! counter per datagram: the flow lookup is skipped for consecutive datagrams of one client, and a
//! flow's activity time and byte/packet counters are updated once per wake-up.
//!
//! recvmmsg(2) and sendmsg(2) with UDP_SEGMENT are called through `libc` directly: the safe
//! wrappers allocate per call. Every `unsafe` block here has a SAFETY comment.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::io;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use nix::libc;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::decide::flows::FlowTable;
use crate::decide::pick::AttemptOrder;
use crate::metrics::ListenerStats;
use crate::server::{ActiveGuard, RouteRt, Shared, clock_ms, drained};
use crate::table::ListenerKey;

/// Largest UDP payload (a receive slot holds any datagram, so nothing is ever truncated).
const MAX_DATAGRAM: usize = 65_536;
/// Datagrams taken per recvmmsg(2), i.e. per wake-up of a listener or return path.
const BATCH: usize = 64;

/// The receive side of a batch: [`BATCH`] slots of [`MAX_DATAGRAM`] bytes plus sender addresses.
/// 4 MiB of address space per worker thread, but the allocation is zeroed lazily by the OS and
/// only touched pages become resident: 1400-byte datagrams cost one page per slot.
struct RxRing {
    buf: Box<[u8]>,
    addrs: [libc::sockaddr_storage; BATCH],
    lens: [usize; BATCH],
}

thread_local! {
    /// Shared by every listener and flow on a worker thread and never held across an await, so
    /// an idle flow or listener costs no buffer.
    static RING: RefCell<Box<RxRing>> = RefCell::new(RxRing::new());
}

impl RxRing {
    fn new() -> Box<Self> {
        Box::new(Self {
            buf: vec![0; BATCH * MAX_DATAGRAM].into_boxed_slice(),
            // SAFETY: sockaddr_storage is a plain C struct for which all-zero bytes are valid.
            addrs: unsafe { std::mem::zeroed() },
            lens: [0; BATCH],
        })
    }

    /// One non-blocking recvmmsg(2) into slots `0..n`; returns `n`. `with_addrs` records each
    /// sender (listeners); a connected socket's sender is known (return paths).
    fn recv(&mut self, fd: RawFd, with_addrs: bool) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain C structs for which all-zero bytes are valid
        // (null pointers, zero lengths).
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, (v, h)) in iov.iter_mut().zip(hdrs.iter_mut()).enumerate() {
            let slot = &mut self.buf[i * MAX_DATAGRAM..(i + 1) * MAX_DATAGRAM];
            v.iov_base = slot.as_mut_ptr().cast();
            v.iov_len = MAX_DATAGRAM;
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
            if with_addrs {
                h.msg_hdr.msg_name = std::ptr::from_mut(&mut self.addrs[i]).cast();
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            }
        }
        // SAFETY: every header points at a distinct live slot of `self.buf` (MAX_DATAGRAM bytes)
        // and, if set, at a live sockaddr_storage with its size in msg_namelen; `iov`, `hdrs` and
        // `self` outlive the call, which does not block (MSG_DONTWAIT) or keep the pointers.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        for (len, h) in self.lens.iter_mut().zip(&hdrs[..n]) {
            *len = h.msg_len as usize;
        }
        Ok(n)
    }

    fn data(&self, i: usize) -> &[u8] {
        &self.buf[i * MAX_DATAGRAM..i * MAX_DATAGRAM + self.lens[i]]
    }

    fn addr(&self, i: usize) -> Option<SocketAddr> {
        sockaddr_to_std(&self.addrs[i])
    }
}

fn sockaddr_to_std(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (family AF_INET) here; sockaddr_storage is
            // large and aligned enough for it.
            let a = unsafe { &*std::ptr::from_ref(ss).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6 (family AF_INET6).
            let a = unsafe { &*std::ptr::from_ref(ss).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id).into())
        }
        _ => None,
    }
}

/// Receive a batch on `sock`; returns how many slots were filled. A short batch means the socket
/// is drained, so read readiness is cleared then (saving the EAGAIN call). Errors (e.g. an ICMP
/// port unreachable queued on a connected socket, which reports it once) are returned;
/// readiness stays set and the next call gets the data.
fn recv_batch(sock: &UdpSocket, ring: &mut RxRing, with_addrs: bool) -> io::Result<usize> {
    let fd = sock.as_raw_fd();
    let mut got = 0;
    let r = sock.try_io(Interest::READABLE, || {
        got = ring.recv(fd, with_addrs)?;
        if got < BATCH {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    match r {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Ok(got),
    }
}

/// Segments per GSO send (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
const GSO_MAX_SEGS: usize = 64;
/// Bytes per GSO send (the UDP length field, less headers and some slack).
const GSO_MAX_BYTES: usize = 65_000;

/// Largest datagram coalesced into a GSO train: it must fit a standard 1500-byte MTU so that
/// GSO never has to fail on the way out of a real NIC (the kernel rejects a segment size above
/// the path MTU).
fn gso_max_seg(v6: bool) -> usize {
    if v6 { 1500 - 48 } else { 1500 - 28 }
}

/// Consecutive datagrams to one destination that leave in one UDP GSO sendmsg(2): equal sizes
/// except a possibly shorter last one. The iovecs borrow the datagrams (`'a`).
struct Train<'a> {
    iov: [libc::iovec; GSO_MAX_SEGS],
    n: usize,
    seg: usize,
    bytes: usize,
    closed: bool,
    max_seg: usize,
    _data: PhantomData<&'a [u8]>,
}

/// What a flush did.
#[derive(Default, Clone, Copy)]
struct Sent {
    packets: u64,
    bytes: u64,
    dropped: u64,
    /// The peer's port is unreachable (an ICMP error came back on the connected socket).
    refused: bool,
}

impl std::ops::AddAssign for Sent {
    fn add_assign(&mut self, o: Self) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.dropped += o.dropped;
        self.refused |= o.refused;
    }
}

fn is_refused(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ConnectionRefused
}

impl<'a> Train<'a> {
    fn new(v6: bool) -> Self {
        Self {
            // SAFETY: iovec is a plain C struct; all-zero is valid (and unused until set).
            iov: unsafe { std::mem::zeroed() },
            n: 0,
            seg: 0,
            bytes: 0,
            closed: false,
            max_seg: gso_max_seg(v6),
            _data: PhantomData,
        }
    }

    /// Add `d` if it can join this train; an empty train takes anything.
    fn try_push(&mut self, d: &'a [u8]) -> bool {
        if self.n == 0 {
            self.seg = d.len();
            self.closed = d.len() > self.max_seg || d.is_empty();
        } else if self.closed
            || d.len() > self.seg
            || self.n == GSO_MAX_SEGS
            || self.bytes + d.len() > GSO_MAX_BYTES
        {
            return false;
        } else {
            self.closed = d.len() < self.seg;
        }
        self.iov[self.n] = libc::iovec {
            iov_base: d.as_ptr().cast_mut().cast(),
            iov_len: d.len(),
        };
        self.n += 1;
        self.bytes += d.len();
        true
    }

    /// Send the train on `fd` (to `dest`, or the connected peer) and empty it. Never waits: a
    /// full socket buffer drops the train.
    fn flush(&mut self, fd: RawFd, dest: Option<&socket2::SockAddr>) -> Sent {
        let n = std::mem::take(&mut self.n);
        if n == 0 {
            return Sent::default();
        }
        let iov = &self.iov[..n];
        let all = Sent {
            packets: n as u64,
            bytes: self.bytes as u64,
            ..Sent::default()
        };
        let seg = u16::try_from(self.seg).unwrap_or(u16::MAX);
        match send_train(fd, iov, (n > 1).then_some(seg), dest) {
            Ok(()) => all,
            Err(e) if n == 1 || e.kind() == io::ErrorKind::WouldBlock || is_refused(&e) => Sent {
                dropped: n as u64,
                refused: is_refused(&e),
                ..Sent::default()
            },
            // No GSO on this path (EIO/EINVAL), or a pending ICMP error: one datagram at a time.
            Err(_) => {
                let mut s = Sent::default();
                for v in iov {
                    match send_train(fd, std::slice::from_ref(v), None, dest) {
                        Ok(()) => {
                            s.packets += 1;
                            s.bytes += v.iov_len as u64;
                        }
                        Err(e) => {
                            s.dropped += 1;
                            s.refused |= is_refused(&e);
                        }
                    }
                }
                s
            }
        }
    }
}

/// One non-blocking sendmsg(2) of `iov`, with a UDP_SEGMENT control message if `gso` is set.
fn send_train(
    fd: RawFd,
    iov: &[libc::iovec],
    gso: Option<u16>,
    dest: Option<&socket2::SockAddr>,
) -> io::Result<()> {
    // Room for one cmsghdr plus a u16 (CMSG_SPACE(2) is 24 on 64-bit targets), cmsghdr-aligned.
    #[repr(C, align(8))]
    struct Cmsg([u8; 32]);
    let mut cbuf = Cmsg([0; 32]);
    // SAFETY: msghdr is a plain C struct; all-zero is valid (no name, no control, no iovecs).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr().cast_mut();
    msg.msg_iovlen = iov.len() as _;
    if let Some(d) = dest {
        msg.msg_name = d.as_ptr().cast_mut().cast();
        msg.msg_namelen = d.len();
    }
    if let Some(seg) = gso {
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes. CMSG_FIRSTHDR returns a pointer into
        // `cbuf` (msg_controllen = CMSG_SPACE(2) <= 32 bytes, so the header and its 2 data bytes
        // are inside the buffer, which is aligned for cmsghdr); the data may be unaligned for
        // u16, hence write_unaligned.
        unsafe {
            msg.msg_controllen = libc::CMSG_SPACE(2) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = libc::UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(2) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg);
        }
    }
    // SAFETY: `msg` points at `iov` (whose entries point at live datagrams borrowed by the
    // caller), at `dest` and at `cbuf`, all of which outlive this non-blocking call.
    let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

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
        // Which entry of `self.active` each datagram belongs to.
        let mut owner = [NO_FLOW; BATCH];
        let mut last: Option<(SocketAddr, u8)> = None;
        for (i, o) in owner.iter_mut().enumerate().take(n) {
            let Some(client) = ring.addr(i) else { continue };
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
                None => match self.open_flow(client) {
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
                let d = ring.data(i);
                if !train.try_push(d) {
                    sent += train.flush(fd, None);
                    train.try_push(d);
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

    /// A new client: open a flow and start its return path, unless shed or no backend.
    fn open_flow(&mut self, client: SocketAddr) -> Option<Arc<Flow>> {
        let rt = self.shared.load().get(&self.key).cloned()?;
        let cap = rt.route.udp.max_flows.div_ceil(self.share) as usize;
        let flow = new_flow(&mut self.flows, client, &rt, cap, &mut self.next_id)?;
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

/// Open a flow for a new client, unless the table is full or no backend socket can be made.
fn new_flow(
    flows: &mut FlowTable<Arc<Flow>>,
    client: SocketAddr,
    rt: &RouteRt,
    cap: usize,
    next_id: &mut u64,
) -> Option<Arc<Flow>> {
    flows.set_cap(cap);
    if flows.len() >= cap {
        rt.stats.udp_drops_full.inc();
        return None;
    }
    let Some((upstream, v6, guard)) = open_upstream(rt) else {
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

fn open_upstream(rt: &RouteRt) -> Option<(UdpSocket, bool, ActiveGuard)> {
    let mut order = AttemptOrder::new(rt.backends.len(), rt.rr.fetch_add(1, Relaxed));
    let now = clock_ms();
    while let Some(i) = order.next_index(|i| rt.backends[i].is_healthy(now)) {
        let b = &rt.backends[i];
        let Some(guard) = b.try_acquire(0) else {
            continue;
        };
        match connected_socket(b.addr) {
            Ok(s) => return Some((s, b.addr.is_ipv6(), guard)),
            Err(e) => {
                tracing::debug!(backend = %b.addr, "udp upstream socket: {e}");
                b.stats.connect_errors.inc();
            }
        }
    }
    None
}

/// A non-blocking UDP socket connected to `backend` (so ICMP errors come back on it).
pub(crate) fn connected_socket(backend: SocketAddr) -> io::Result<UdpSocket> {
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
    for i in 0..n {
        let d = ring.data(i);
        if !train.try_push(d) {
            sent += train.flush(fd, Some(dest));
            train.try_push(d);
        }
    }
    sent += train.flush(fd, Some(dest));
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_takes_equal_sizes_and_a_shorter_last_one() {
        let (a, short, big) = ([1u8; 1000], [2u8; 500], [3u8; 2000]);
        let mut t = Train::new(false);
        assert!(t.try_push(&a) && t.try_push(&a) && t.try_push(&short));
        assert!(!t.try_push(&short), "a shorter datagram ends the train");
        let mut t = Train::new(false);
        assert!(t.try_push(&short));
        assert!(!t.try_push(&a), "a longer datagram cannot follow");
        let mut t = Train::new(false);
        assert!(t.try_push(&big));
        assert!(!t.try_push(&big), "datagrams above the MTU travel alone");
        let mut t = Train::new(false);
        assert!((0..GSO_MAX_SEGS).all(|_| t.try_push(&a[..900])));
        assert!(!t.try_push(&a[..900]), "at most GSO_MAX_SEGS per train");
    }

    #[test]
    fn gso_train_arrives_as_separate_datagrams_via_recvmmsg() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest = socket2::SockAddr::from(rx.local_addr().unwrap());
        let data: Vec<Vec<u8>> = (0..10u8)
            .map(|i| vec![i; if i == 9 { 100 } else { 1200 }])
            .collect();
        let mut t = Train::new(false);
        assert!(data.iter().all(|d| t.try_push(d)));
        let sent = t.flush(tx.as_raw_fd(), Some(&dest));
        assert_eq!((sent.packets, sent.dropped), (10, 0));
        assert_eq!(sent.bytes, 9 * 1200 + 100);

        let mut ring = RxRing::new();
        let mut got = Vec::new();
        // Bounded: loopback delivery is immediate, the retries only absorb scheduling.
        for _ in 0..100 {
            if got.len() == data.len() {
                break;
            }
            match ring.recv(rx.as_raw_fd(), true) {
                Ok(n) => {
                    for i in 0..n {
                        assert_eq!(ring.addr(i), Some(tx.local_addr().unwrap()));
                        got.push(ring.data(i).to_vec());
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        assert_eq!(got, data);
    }
}
