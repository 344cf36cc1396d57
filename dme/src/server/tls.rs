//! TLS connections for the servers: an accept loop per listener hands each TCP connection to
//! a task of its own for the handshake, and passes finished handshakes to tonic (as a stream)
//! or axum (as an `axum::serve::Listener`). The accept loop itself never waits on a client.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const QUEUE: usize = 256;

type Conn = (TlsStream<TcpStream>, SocketAddr);

/// The gRPC (ALPN h2) and REST (h2, http/1.1) configs on one certificate.
pub(super) fn configs(
    cert: Arc<edge_tls::ServerCert>,
) -> Result<(Arc<ServerConfig>, Arc<ServerConfig>), edge_tls::TlsError> {
    let grpc = edge_tls::server_config(cert.clone(), &[b"h2"])?;
    let rest = edge_tls::server_config(cert, &[b"h2", b"http/1.1"])?;
    Ok((grpc, rest))
}

/// TLS connections accepted on one listener, in the order their handshakes finish.
pub(super) struct TlsConns {
    rx: mpsc::Receiver<Conn>,
    local: SocketAddr,
}

/// Starts accepting on `listener` until `stop` turns true.
pub(super) fn accept(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    stop: watch::Receiver<bool>,
) -> io::Result<TlsConns> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), tx, stop));
    Ok(TlsConns { rx, local })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<Conn>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                // Replies are small and latency matters more than packet count.
                let _ = tcp.set_nodelay(true);
                tokio::spawn(handshake(acceptor.clone(), tcp, peer, tx.clone()));
            }
            Err(e) => accept_error(e).await,
        }
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    tx: mpsc::Sender<Conn>,
) {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        // The server is gone when the receiver is: the connection just closes.
        Ok(Ok(tls)) => drop(tx.send((tls, peer)).await),
        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
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

impl TlsConns {
    /// The connections as tonic's incoming stream.
    pub(super) fn into_stream(
        self,
    ) -> impl Stream<Item = Result<TlsStream<TcpStream>, io::Error>> + Send + 'static {
        futures::stream::unfold(self.rx, |mut rx| async move {
            let (tls, _) = rx.recv().await?;
            Some((Ok(tls), rx))
        })
    }
}

impl axum::serve::Listener for TlsConns {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // Only after shutdown began: the accept loop has stopped, axum is draining.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
