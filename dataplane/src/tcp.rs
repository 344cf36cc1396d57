//! TCP listeners and connections: accept, pick the route once, connect to a backend (timeout,
//! retry on another backend, per-backend caps, passive ejection), optional TLS termination and
//! PROXY v2 header, then relay until either side closes or the route's drain grace runs out.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};

use crate::decide::pick::AttemptOrder;
use crate::decide::proxy_v2;
use crate::relay;
use crate::runtime::{ActiveGuard, RouteRt, Shared, clock_ms, drained};
use crate::table::ListenerKey;

/// Why a connection could not be forwarded. Classified by source for metrics and logs.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Every backend failed to connect, timed out, or was at its connection cap.
    #[error("no backend reachable ({tried} tried)")]
    NoBackend { tried: u32 },
    /// The client failed or timed out the TLS handshake.
    #[error("TLS handshake with client failed: {0}")]
    TlsHandshake(io::Error),
    /// Writing the PROXY header to the backend failed.
    #[error("sending PROXY header: {0}")]
    ProxyHeader(io::Error),
}

pub(crate) async fn accept_loop(listener: TcpListener, key: ListenerKey, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE/ENFILE and friends: back off instead of spinning.
                tracing::warn!(listener = %key, "accept: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Some(rt) = shared.load().get(&key).cloned() else {
            continue;
        };
        tokio::spawn(serve(stream, peer, rt, shared.clone()));
    }
}

async fn serve(client: TcpStream, peer: SocketAddr, rt: Arc<RouteRt>, shared: Arc<Shared>) {
    let _live = shared.live_guard();
    rt.stats.accepted.inc();
    rt.stats.active.inc();
    let r = forward(client, peer, &rt, &shared).await;
    rt.stats.active.dec();
    if let Err(e) = r {
        match e {
            ConnError::NoBackend { .. } => rt.stats.no_backend.inc(),
            ConnError::TlsHandshake(_) => rt.stats.tls_handshake_errors.inc(),
            ConnError::ProxyHeader(_) => {}
        }
        tracing::debug!(listener = %rt.route.key, %peer, "{e}");
    }
}

async fn forward(
    client: TcpStream,
    peer: SocketAddr,
    rt: &RouteRt,
    shared: &Shared,
) -> Result<(), ConnError> {
    // TCP_NODELAY comes from the listener (accepted sockets inherit it): one syscall less.
    // getsockname only when a PROXY header needs the original destination.
    let local = if rt.route.proxy_protocol_v2 {
        client.local_addr().unwrap_or(peer)
    } else {
        peer
    };
    if rt.tls.is_some() {
        // Boxed: the TLS state is large and plain connections should not carry its size.
        return Box::pin(forward_tls(client, peer, local, rt, shared)).await;
    }
    let (mut up, guard) = connect(rt).await?;
    send_proxy_header(rt, &mut up, peer, local).await?;
    let mut drain = guard.0.drain_rx();
    let b = &guard.0.stats;
    tokio::select! {
        biased;
        r = relay::relay(client, up, shared.opts.copy_mode, shared.opts.copy_buf, b) => {
            if let Err(e) = r { tracing::trace!("relay ended: {e}"); }
        }
        _ = drained(&mut drain) => {}
    }
    Ok(())
}

async fn forward_tls(
    client: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    rt: &RouteRt,
    shared: &Shared,
) -> Result<(), ConnError> {
    let Some(acceptor) = &rt.tls else {
        return Ok(());
    };
    let hs = tokio::time::timeout(shared.opts.tls_handshake_timeout, acceptor.accept(client)).await;
    let mut tls = match hs {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(ConnError::TlsHandshake(e)),
        Err(_) => return Err(ConnError::TlsHandshake(io::ErrorKind::TimedOut.into())),
    };
    let (mut up, guard) = connect(rt).await?;
    send_proxy_header(rt, &mut up, peer, local).await?;
    let mut drain = guard.0.drain_rx();
    let b = &guard.0.stats;
    let n = shared.opts.copy_buf;
    tokio::select! {
        r = tokio::io::copy_bidirectional_with_sizes(&mut tls, &mut up, n, n) => {
            if let Ok((i, o)) = r { b.bytes_in.add(i); b.bytes_out.add(o); }
        }
        _ = drained(&mut drain) => {}
    }
    Ok(())
}

async fn send_proxy_header(
    rt: &RouteRt,
    up: &mut TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
) -> Result<(), ConnError> {
    if !rt.route.proxy_protocol_v2 {
        return Ok(());
    }
    let mut hdr = [0u8; proxy_v2::MAX_ENCODED];
    let n = proxy_v2::encode(peer, local, &mut hdr);
    up.write_all(&hdr[..n])
        .await
        .map_err(ConnError::ProxyHeader)
}

/// Connect to the first backend that accepts, in round-robin order over healthy backends.
async fn connect(rt: &RouteRt) -> Result<(TcpStream, ActiveGuard), ConnError> {
    let route = &rt.route;
    let mut order = AttemptOrder::new(rt.backends.len(), rt.rr.fetch_add(1, Relaxed));
    let now = clock_ms();
    let mut tried = 0;
    while let Some(i) = order.next_index(|i| rt.backends[i].is_healthy(now)) {
        let b = &rt.backends[i];
        let Some(guard) = b.try_acquire(route.max_conns_per_backend) else {
            b.stats.cap_rejects.inc();
            continue;
        };
        tried += 1;
        let t0 = Instant::now();
        match tokio::time::timeout(route.connect_timeout, connect_nodelay(b.addr)).await {
            Ok(Ok(s)) => {
                b.stats.connect_latency.observe(t0.elapsed());
                b.stats.connections.inc();
                return Ok((s, guard));
            }
            Ok(Err(e)) => {
                tracing::debug!(backend = %b.addr, "connect failed: {e}");
                b.stats.connect_errors.inc();
                b.eject(route.eject_for);
            }
            Err(_) => {
                tracing::debug!(backend = %b.addr, "connect timed out");
                b.stats.connect_errors.inc();
                b.eject(route.eject_for);
            }
        }
    }
    Err(ConnError::NoBackend { tried })
}

/// A non-blocking connect with `TCP_NODELAY` set first. Success is read off the readiness event
/// (writable without error or hang-up), which is what a completed non-blocking connect reports;
/// `SO_ERROR` is only asked for on failure. `TcpStream::connect` + `set_nodelay` cost one
/// `getsockopt` and one more `setsockopt` per connection, a tenth of the proxy's syscalls for
/// a short connection.
pub(crate) async fn connect_nodelay(addr: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )?;
    s.set_tcp_nodelay(true)?;
    match s.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(s.into())?;
    let ready = stream.ready(Interest::WRITABLE | Interest::ERROR).await?;
    if ready.is_error() || ready.is_write_closed() {
        return Err(stream
            .take_error()?
            .unwrap_or_else(|| io::ErrorKind::ConnectionRefused.into()));
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_inherit_nodelay_and_connect_sets_it() {
        let l = crate::sockets::bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let l = TcpListener::from_std(l).unwrap();
        let (up, accepted) = tokio::join!(connect_nodelay(addr), l.accept());
        assert!(
            up.unwrap().nodelay().unwrap(),
            "outgoing socket has TCP_NODELAY"
        );
        assert!(
            accepted.unwrap().0.nodelay().unwrap(),
            "accepted socket inherited TCP_NODELAY from the listener"
        );
    }

    #[tokio::test]
    async fn connect_to_a_closed_port_is_refused() {
        // Bind and drop to find a port nobody listens on.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = connect_nodelay(addr).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    }
}
