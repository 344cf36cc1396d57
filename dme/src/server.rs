//! Serving: gRPC and REST listeners over one engine, plaintext or TLS, until shutdown.
//!
//! Plaintext is served exactly as before TLS existed (tonic's own TCP incoming, axum's TCP
//! listener): nothing per request or connection is added to it. With TLS, `edge_tls::serve` accepts the
//! connections and does each handshake in the connection's own task (bounded in time), so a
//! slow or silent client never holds up the others; finished handshakes go to tonic and axum.
//! With an HTTP/3 endpoint (`crate::h3`), REST responses advertise it with `Alt-Svc`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::{Router, TcpIncoming};

use crate::service::Dme;
use crate::{grpc, rest};

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("REST server: {0}")]
    Rest(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] edge_tls::TlsError),
    #[error("HTTP/3: {0}")]
    H3(#[from] crate::h3::H3Error),
}

/// What the DME serves on. With `tls`, both listeners speak TLS with that certificate (gRPC
/// offers ALPN `h2`, REST `h2` and `http/1.1`); a reloaded certificate applies to new
/// connections. Without it both are plaintext (the caller decides where that is acceptable).
pub struct Listeners {
    pub grpc: TcpListener,
    pub rest: TcpListener,
    pub tls: Option<Arc<edge_tls::ServerCert>>,
    /// HTTP/3 (REST and gRPC) on this QUIC endpoint ([`crate::h3::endpoint`]).
    pub h3: Option<quinn::Endpoint>,
}

impl Listeners {
    /// Plaintext gRPC and REST, no HTTP/3 (for loopback: development, tests, load tests).
    pub fn plaintext(grpc: TcpListener, rest: TcpListener) -> Self {
        Self {
            grpc,
            rest,
            tls: None,
            h3: None,
        }
    }
}

type RestApp = IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr>;

/// Serves gRPC and REST on `listeners` until `shutdown` resolves, then drains both.
pub async fn run(
    listeners: Listeners,
    dme: Arc<Dme>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (tx, rx) = watch::channel(false);
    let keepalive = dme.config().edge_events.keepalive;
    let grpc = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(keepalive))
        .http2_keepalive_timeout(Some(keepalive))
        .add_routes(grpc::routes(dme.clone()).await?);
    let Listeners {
        grpc: grpc_listener,
        rest: rest_listener,
        tls: cert,
        h3,
    } = listeners;
    let mut rest = rest::router(dme.clone());
    let h3_task = match h3 {
        Some(endpoint) => {
            rest = rest::advertise(rest, crate::h3::alt_svc(endpoint.local_addr()?));
            Some(tokio::spawn(crate::h3::run(
                endpoint,
                dme,
                stopped(rx.clone()),
            )))
        }
        None => None,
    };
    let rest = rest.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let tcp = serve_tcp(grpc_listener, rest_listener, cert, grpc, rest, rx).await;
    if let Some(task) = h3_task {
        match task.await {
            Ok(result) => result?,
            Err(e) => tracing::error!(error = %e, "the HTTP/3 server task failed"),
        }
    }
    tcp
}

async fn serve_tcp(
    grpc_listener: TcpListener,
    rest_listener: TcpListener,
    cert: Option<Arc<edge_tls::ServerCert>>,
    grpc: Router,
    rest: RestApp,
    rx: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    match cert {
        None => serve_plain(grpc_listener, rest_listener, grpc, rest, rx).await,
        Some(cert) => {
            use edge_tls::serve::{Acceptor, accept};
            // gRPC offers only h2; REST offers h2 and http/1.1 (curl and browsers).
            let grpc_config = edge_tls::server_config(cert.clone(), &[b"h2"])?;
            let rest_config = edge_tls::server_config(cert, &[b"h2", b"http/1.1"])?;
            let grpc_conns = accept(grpc_listener, Acceptor::Tls(grpc_config), rx.clone())?;
            let rest_conns = accept(rest_listener, Acceptor::Tls(rest_config), rx.clone())?;
            let (g, h) = tokio::join!(
                grpc.serve_with_incoming_shutdown(grpc_conns.into_stream(), stopped(rx.clone())),
                axum::serve(rest_conns.tap_io(|_| ()), rest).with_graceful_shutdown(stopped(rx)),
            );
            g?;
            h?;
            Ok(())
        }
    }
}

/// Resolves once shutdown has been signalled.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn serve_plain(
    grpc_listener: TcpListener,
    rest_listener: TcpListener,
    grpc: Router,
    rest: RestApp,
    rx: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let grpc_task = grpc.serve_with_incoming_shutdown(
        TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
        stopped(rx.clone()),
    );
    let rest_listener = rest_listener.tap_io(|tcp| {
        // Replies are small and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
    });
    let rest_task = axum::serve(rest_listener, rest).with_graceful_shutdown(stopped(rx));
    let (g, h) = tokio::join!(grpc_task, rest_task);
    g?;
    h?;
    Ok(())
}
