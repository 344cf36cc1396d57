//! Socket set-up, in one place: listening sockets bound here or adopted from a predecessor
//! (options, buffers, UDP GRO), `SO_REUSEPORT` groups, and the connected UDP sockets of flows and
//! probes. No I/O beyond the socket calls themselves; nothing here reads the route table.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, SockRef, Socket, Type};

/// Requested UDP listener buffers: bursts should queue, not drop (the kernel caps this at
/// `net.core.rmem_max` / `wmem_max`; raise those on a real LB host).
const UDP_SOCKET_BUFFER: usize = 8 << 20;

/// A TCP listener on `addr`, non-blocking, with `TCP_NODELAY` for the sockets it accepts.
pub(crate) fn bind_tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
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

/// What a TCP listener bound elsewhere (socket activation, a predecessor, a test) gets before it
/// is used: the options [`bind_tcp`] sets.
pub(crate) fn prepare_adopted_tcp(l: &std::net::TcpListener) -> io::Result<()> {
    l.set_nonblocking(true)?;
    SockRef::from(l).set_tcp_nodelay(true)
}

/// As [`prepare_adopted_tcp`], for a UDP listener socket.
pub(crate) fn prepare_adopted_udp(s: &std::net::UdpSocket) -> io::Result<()> {
    s.set_nonblocking(true)?;
    tune_udp(&SockRef::from(s));
    Ok(())
}

/// What every UDP listener socket gets, bound here or adopted: large buffers and GRO reads.
/// Best effort: a kernel that refuses either still serves.
fn tune_udp(s: &Socket) {
    let _ = s.set_recv_buffer_size(UDP_SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(UDP_SOCKET_BUFFER);
    enable_gro(s);
}

/// Asks the kernel to coalesce datagrams of one sender into one read (UDP_GRO, Linux 5.0+):
/// fewer, larger reads, and the train is forwarded without being split into single datagrams
/// first. Best effort: without it every read is one datagram.
pub(crate) fn enable_gro(sock: &impl std::os::fd::AsFd) {
    let _ = nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::UdpGroSegment, &true);
}

/// `n` UDP sockets on `addr` (with `SO_REUSEPORT` when `n` > 1).
pub(crate) fn bind_udp_group(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::UdpSocket>> {
    if n > 1 {
        // A group would silently join another process's `SO_REUSEPORT` sockets on the port
        // (same user, e.g. a second root LB) and split its traffic. A plain bind first fails
        // with EADDRINUSE if anything holds the port, so that is reported as usual.
        drop(bind_udp(addr, false)?);
    }
    (0..n.max(1)).map(|_| bind_udp(addr, n > 1)).collect()
}

fn bind_udp(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::UdpSocket> {
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

/// A non-blocking UDP socket connected to `backend` (so ICMP errors come back on it).
pub(crate) fn connected_udp(backend: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    let local: SocketAddr = if backend.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(local)?;
    s.connect(backend)?;
    s.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(s)
}
