//! HTTP/3: the DME's REST API (same paths and JSON as over TCP) and its gRPC services (the
//! gRPC-over-HTTP/3 mapping, unary calls and `StreamEdgeEvent` alike) on one QUIC endpoint
//! (quinn + h3), TLS 1.3 only, ALPN `h3`.
//!
//! Why: a new client reaches an answer in two round trips instead of TCP+TLS's three, one with
//! 0-RTT resumption, and a QUIC connection survives the phone changing address.
//!
//! - **0-RTT.** Resumption tickets are single-use: rustls' stateful session cache hands each
//!   session out once (`take`), and no stateless ticketer is configured, so a replayed
//!   ClientHello finds no session and its early data is refused (the client falls back to a
//!   full handshake). On top of that, [`policy`] says what may run in early data at all, and the
//!   API counters of early requests are committed only when the handshake completes.
//! - **Migration.** quinn validates a client's new path; with a [`quic_lb`] connection-id
//!   generator installed (`server_id`), the ids this endpoint issues carry its server id, so the
//!   root LB in `quic` mode routes a migrated client back here.
//! - **Limits.** Request headers up to [`MAX_HEADER_BYTES`] (a larger field section gets 431);
//!   bodies are limited by the services (REST 64 KiB, gRPC messages as over TCP); a connection
//!   idle for [`IDLE_TIMEOUT`] is closed; a wrong ALPN fails the TLS handshake.
//!
//! Today's MobiledgeX SDKs speak gRPC over HTTP/2 only (grpc-java/okhttp, Grpc.Core), so gRPC
//! over HTTP/3 serves new clients; REST over HTTP/3 serves any h3 client (curl, browsers,
//! Cronet). The TCP listeners advertise this endpoint with `Alt-Svc`.

pub mod body;
mod conn;
pub mod policy;

use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use edge_tls::ServerCert;
use tokio::sync::watch;

use crate::service::Dme;
use crate::{grpc, rest};

/// Largest request field section (headers) accepted.
pub const MAX_HEADER_BYTES: u64 = 16 * 1024;

/// A connection with no traffic for this long is closed (clients keep streams alive with
/// their own traffic or QUIC PINGs).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Resumption sessions kept for 0-RTT (each is used once).
const SESSION_CACHE: usize = 16 * 1024;

/// Why the endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum H3Error {
    #[error("TLS configuration for QUIC: {0}")]
    Tls(String),
    #[error("QUIC endpoint: {0}")]
    Endpoint(#[from] std::io::Error),
    #[error("gRPC routes: {0}")]
    Routes(#[from] tonic_reflection::server::Error),
}

/// Issues this endpoint's connection ids; see [`quinn::EndpointConfig::cid_generator`].
pub type CidFactory = Arc<dyn Fn() -> Box<dyn quinn::ConnectionIdGenerator> + Send + Sync>;

/// A QUIC endpoint serving HTTP/3 on `socket` with `cert`; `cids` issues connection ids that
/// carry a server id for the root LB (default: quinn's random ids).
pub fn endpoint(
    socket: UdpSocket,
    cert: Arc<ServerCert>,
    cids: Option<CidFactory>,
) -> Result<quinn::Endpoint, H3Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| H3Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    tls.alpn_protocols = vec![b"h3".to_vec()];
    // QUIC allows only 0 or u32::MAX here (RFC 9001 §4.6.1).
    tls.max_early_data_size = u32::MAX;
    tls.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(Arc::new(tls))
        .map_err(|e| H3Error::Tls(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(
        IDLE_TIMEOUT
            .try_into()
            .map_err(|_| H3Error::Tls("idle timeout out of range".into()))?,
    ));
    server.transport_config(Arc::new(transport));
    let mut config = quinn::EndpointConfig::default();
    if let Some(cids) = cids {
        config.cid_generator(move || cids());
    }
    socket.set_nonblocking(true)?;
    Ok(quinn::Endpoint::new(
        config,
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )?)
}

/// What a request is served by: both are axum routers over the same engine.
#[derive(Clone)]
pub(crate) struct Services {
    rest: axum::Router,
    grpc: axum::Router,
}

/// Serves HTTP/3 on `endpoint` until `shutdown` resolves; then tells clients to go away
/// (GOAWAY), lets accepted requests finish for a moment, and closes.
pub async fn run(
    endpoint: quinn::Endpoint,
    dme: Arc<Dme>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), H3Error> {
    let services = Services {
        rest: rest::router(dme.clone()),
        grpc: grpc::routes(dme).await?.into_axum_router(),
    };
    let (tx, rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => {
                    tokio::spawn(conn::serve(incoming, services.clone(), rx.clone()));
                }
                None => break,
            },
            () = &mut shutdown => break,
        }
    }
    let _ = tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        endpoint.close(quinn::VarInt::from_u32(0x100), b"shutting down");
        endpoint.wait_idle().await;
    })
    .await;
    Ok(())
}

/// The `Alt-Svc` value advertising HTTP/3 on `addr`'s port (same host), for a day.
pub fn alt_svc(addr: SocketAddr) -> http::HeaderValue {
    http::HeaderValue::try_from(format!("h3=\":{}\"; ma=86400", addr.port()))
        .unwrap_or_else(|_| http::HeaderValue::from_static("clear"))
}
