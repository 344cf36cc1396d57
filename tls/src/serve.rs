//! The one TLS accept loop of every server (the DME's endpoints, the controller's API and
//! notify, the MC): each TCP connection gets a task of its own for its handshake, finished
//! handshakes are handed to tonic (as a stream) or axum (as an `axum::serve::Listener`), and
//! the accept loop itself never waits on a client.
//!
//! With [`Acceptor::Mtls`] the client's certificate is checked during the handshake (region
//! CA, role, region: [`MtlsServer`]); a refused client is logged here with what was wrong, at
//! `warn`, since a component that cannot connect is an operator's problem. Each accepted
//! connection carries its [`ConnInfo`] (remote address, verified peer identity), which tonic
//! puts in every request's extensions.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;

use crate::identity::PeerIdentity;
use crate::mtls::{HANDSHAKE_TIMEOUT, MtlsServer};

/// Handshaken connections waiting for the server to take them.
const QUEUE: usize = 256;

/// How connections are secured.
#[derive(Clone)]
pub enum Acceptor {
    /// Server-authenticated TLS (clients need no certificate).
    Tls(Arc<rustls::ServerConfig>),
    /// Mutual TLS: clients present a certificate of the region CA with an allowed role.
    Mtls(MtlsServer),
}

/// What a server knows of an accepted connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    /// The verified client identity (mutual TLS only).
    pub peer: Option<PeerIdentity>,
}

/// One accepted TLS connection.
pub struct TlsConn {
    io: TlsStream<TcpStream>,
    info: ConnInfo,
}

impl TlsConn {
    /// Remote address and verified identity.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }
}

/// TLS connections accepted on one listener, in the order their handshakes finish.
pub struct TlsIncoming {
    rx: mpsc::Receiver<TlsConn>,
    local: SocketAddr,
}

/// Starts accepting on `listener` until `stop` turns true.
pub fn accept(
    listener: TcpListener,
    acceptor: Acceptor,
    stop: watch::Receiver<bool>,
) -> io::Result<TlsIncoming> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(accept_loop(listener, acceptor, tx, stop));
    Ok(TlsIncoming { rx, local })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Acceptor,
    tx: mpsc::Sender<TlsConn>,
    mut stop: watch::Receiver<bool>,
) {
    let local = listener.local_addr().ok();
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, remote)) => {
                // Replies are small and latency matters more than packet count.
                let _ = tcp.set_nodelay(true);
                tokio::spawn(handshake(acceptor.clone(), tcp, remote, local, tx.clone()));
            }
            Err(e) => accept_error(e).await,
        }
    }
}

async fn handshake(
    acceptor: Acceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    local: Option<SocketAddr>,
    tx: mpsc::Sender<TlsConn>,
) {
    let conn = match acceptor {
        Acceptor::Tls(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(io)) => TlsConn {
                    io,
                    info: ConnInfo { remote, peer: None },
                },
                Ok(Err(e)) => return tracing::debug!(%remote, "TLS handshake failed: {e}"),
                Err(_) => return tracing::debug!(%remote, "TLS handshake timed out"),
            }
        }
        Acceptor::Mtls(server) => match server.accept(tcp).await {
            Ok((io, peer)) => TlsConn {
                io,
                info: ConnInfo {
                    remote,
                    peer: Some(peer),
                },
            },
            Err(e) => {
                let at = local.map(|l| l.to_string()).unwrap_or_default();
                return tracing::warn!(%remote, "refused a connection on {at}: {e}");
            }
        },
    };
    // The server is gone when the receiver is: the connection just closes.
    let _ = tx.send(conn).await;
}

/// As axum's TCP listener does: a failed connection is skipped, anything else (out of file
/// descriptors) is logged and waited out instead of spinning.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!("accept failed: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

impl TlsIncoming {
    /// The local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The connections as tonic's incoming stream.
    pub fn into_stream(
        self,
    ) -> impl futures::Stream<Item = Result<TlsConn, io::Error>> + Send + 'static {
        use futures::StreamExt;
        tokio_stream::wrappers::ReceiverStream::new(self.rx).map(Ok)
    }
}

impl axum::serve::Listener for TlsIncoming {
    type Io = TlsConn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => {
                let remote = conn.info.remote;
                (conn, remote)
            }
            // Only after shutdown began: the accept loop has stopped, axum is draining.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// A request's remote address, over plaintext (tonic's own connection info) or TLS
/// ([`ConnInfo`]).
pub fn remote_addr<T>(req: &tonic::Request<T>) -> Option<SocketAddr> {
    req.remote_addr()
        .or_else(|| Some(req.extensions().get::<ConnInfo>()?.remote))
}

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
