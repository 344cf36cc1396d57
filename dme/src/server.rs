//! Serving: gRPC and REST listeners over one engine, until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

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
}

/// Serves gRPC on `grpc` and REST on `http` until `shutdown` resolves, then drains both.
pub async fn run(
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    dme: Arc<Dme>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let routes = grpc::routes(dme.clone()).await?;
    let mut grpc_rx = rx.clone();
    let keepalive = dme.config().edge_events.keepalive;
    let grpc_task = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(keepalive))
        .http2_keepalive_timeout(Some(keepalive))
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
            async move {
                let _ = grpc_rx.wait_for(|s| *s).await;
            },
        );
    let mut http_rx = rx;
    let app = rest::router(dme).into_make_service_with_connect_info::<SocketAddr>();
    let http_listener = http_listener.tap_io(|tcp| {
        // Replies are small and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
    });
    let http_task = axum::serve(http_listener, app).with_graceful_shutdown(async move {
        let _ = http_rx.wait_for(|s| *s).await;
    });
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let (g, h) = tokio::join!(grpc_task, http_task);
    g?;
    h?;
    Ok(())
}
