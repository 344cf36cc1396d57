//! Dialling a gRPC server over mutual TLS: [`MtlsConnector`] is the connector tonic's
//! `Endpoint::connect_with_connector` (or `_lazy`) takes, and [`channel`] builds a channel to
//! an address, over mutual TLS when given a client, plaintext otherwise.
//!
//! The endpoint URI stays `http://HOST:PORT`: tonic does no TLS of its own here, the connector
//! does the handshake (region CA, the server's role) and hands tonic the encrypted stream.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::mtls::MtlsClient;

/// A tower connector: TCP to the URI's authority, then the mutual-TLS handshake.
#[derive(Clone)]
pub struct MtlsConnector {
    client: MtlsClient,
}

impl MtlsConnector {
    pub fn new(client: MtlsClient) -> MtlsConnector {
        MtlsConnector { client }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Io = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

impl tower_service::Service<Uri> for MtlsConnector {
    type Response = Io;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Io, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let client = self.client.clone();
        Box::pin(async move {
            let host = uri.host().ok_or("the address has no host")?;
            let port = uri.port_u16().ok_or("the address has no port")?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let name = ServerName::try_from(host.clone())
                .map_err(|_| format!("{host} is not a valid server name"))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            let _ = tcp.set_nodelay(true);
            let (tls, _peer) = client.connect(tcp, name).await?;
            Ok(TokioIo::new(tls))
        })
    }
}

/// An endpoint for `addr` (`HOST:PORT`) with this connect timeout.
pub fn endpoint(
    addr: &str,
    connect_timeout: Duration,
) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true))
}

/// Connects to `addr`: over mutual TLS with `tls`, plaintext without.
pub async fn channel(
    endpoint: Endpoint,
    tls: Option<&MtlsClient>,
) -> Result<Channel, tonic::transport::Error> {
    match tls {
        Some(c) => {
            endpoint
                .connect_with_connector(MtlsConnector::new(c.clone()))
                .await
        }
        None => endpoint.connect().await,
    }
}

/// As [`channel`], connecting on first use (and reconnecting after failures).
pub fn channel_lazy(endpoint: &Endpoint, tls: Option<&MtlsClient>) -> Channel {
    match tls {
        Some(c) => endpoint.connect_with_connector_lazy(MtlsConnector::new(c.clone())),
        None => endpoint.connect_lazy(),
    }
}
