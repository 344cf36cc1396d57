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

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::mtls::{MtlsClient, MtlsError, Side};

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
type Io = TokioIo<Refusals<tokio_rustls::client::TlsStream<TcpStream>>>;

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
            Ok(TokioIo::new(Refusals {
                io: tls,
                read_once: false,
                region: client.trust().region(),
            }))
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

/// A TLS 1.3 client learns that the server refused its certificate only at its first read
/// (the server's alert): that error is reworded as the [`MtlsError`] it is ("the peer refused
/// the handshake: alert CertificateRequired"), instead of reaching the log as an HTTP/2
/// protocol error.
pub struct Refusals<IO> {
    io: IO,
    read_once: bool,
    region: String,
}

impl<IO: AsyncRead + Unpin> Refusals<IO> {
    /// A write failed before anything was read: the server closed the connection, most
    /// likely after an alert refusing us. Reading now processes that alert if it arrived.
    fn why_closed(&mut self, cx: &mut Context<'_>, e: &std::io::Error) -> std::io::Error {
        let mut scratch = [0u8; 64];
        let mut buf = ReadBuf::new(&mut scratch);
        let why = match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
            Poll::Ready(Err(read)) => MtlsError::from_io(&read, Side::Client, &self.region),
            _ => MtlsError::Handshake(format!(
                "the server closed the connection right after the handshake ({e}): \
                 it probably refused this certificate (see its log)"
            )),
        };
        std::io::Error::new(e.kind(), why)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Refusals<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        match polled {
            Poll::Ready(Err(e)) if !self.read_once => {
                let why = MtlsError::from_io(&e, Side::Client, &self.region);
                Poll::Ready(Err(std::io::Error::new(e.kind(), why)))
            }
            Poll::Ready(Ok(())) => {
                self.read_once = true;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Refusals<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Ready(Err(e)) if !self.read_once => Poll::Ready(Err(self.why_closed(cx, &e))),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
