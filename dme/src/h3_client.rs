//! An HTTP/3 client for tests and load generators (`testing` feature): plain requests, 0-RTT
//! resumption, and a tower service that carries tonic's gRPC over HTTP/3, streams included.

use std::net::SocketAddr;

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use http::HeaderMap;

use http_body_util::BodyExt;
use rustls_pki_types::CertificateDer;

type Sender = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

/// A response body read from an h3 client stream.
pub type RecvBody =
    crate::h3::body::RecvBody<h3::client::RequestStream<h3_quinn::RecvStream, Bytes>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A QUIC client config trusting `roots`, ALPN `h3`, with 0-RTT enabled and resumption
/// sessions kept in memory (shared by every connection of the endpoint it is given to).
pub fn client_config(roots: &[CertificateDer<'static>]) -> Result<quinn::ClientConfig, BoxError> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(store)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    tls.enable_early_data = true;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(tls))?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

/// A client endpoint on 127.0.0.1 (or `bind`) with `config` as its default.
pub fn client_endpoint(
    bind: SocketAddr,
    config: quinn::ClientConfig,
) -> std::io::Result<quinn::Endpoint> {
    let mut ep = quinn::Endpoint::client(bind)?;
    ep.set_default_client_config(config);
    Ok(ep)
}

/// One HTTP/3 connection.
#[derive(Clone)]
pub struct H3Client {
    sender: Sender,
    pub conn: quinn::Connection,
}

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: http::StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl H3Client {
    /// Connects; with `zero_rtt` and a resumption session for the server, the connection is
    /// usable at once and requests go out in 0-RTT. Returns whether 0-RTT was attempted and a
    /// future saying (once the handshake is done) whether the server accepted it.
    pub async fn connect(
        endpoint: &quinn::Endpoint,
        addr: SocketAddr,
        server_name: &str,
        zero_rtt: bool,
    ) -> Result<(H3Client, Option<quinn::ZeroRttAccepted>), BoxError> {
        let connecting = endpoint.connect(addr, server_name)?;
        let (conn, accepted) = if zero_rtt {
            match connecting.into_0rtt() {
                Ok((conn, accepted)) => (conn, Some(accepted)),
                Err(connecting) => (connecting.await?, None),
            }
        } else {
            (connecting.await?, None)
        };
        let (mut driver, sender) = h3::client::new(h3_quinn::Connection::new(conn.clone())).await?;
        tokio::spawn(async move {
            let _ = futures::future::poll_fn(|cx| driver.poll_close(cx)).await;
        });
        Ok((H3Client { sender, conn }, accepted))
    }

    /// Sends one request with `body` and reads the whole response.
    pub async fn request(&self, req: http::Request<Bytes>) -> Result<Reply, BoxError> {
        let (parts, body) = req.into_parts();
        let mut sender = self.sender.clone();
        let mut stream = sender
            .send_request(http::Request::from_parts(parts, ()))
            .await?;
        if !body.is_empty() {
            stream.send_data(body).await?;
        }
        stream.finish().await?;
        let resp = stream.recv_response().await?;
        let mut body = Vec::new();
        while let Some(mut chunk) = stream.recv_data().await? {
            while chunk.has_remaining() {
                let c = chunk.chunk();
                body.extend_from_slice(c);
                let n = c.len();
                chunk.advance(n);
            }
        }
        let trailers = stream.recv_trailers().await?;
        let (parts, ()) = resp.into_parts();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.into(),
            trailers,
        })
    }

    /// A POST of JSON to `path` on `authority`.
    pub async fn post_json(
        &self,
        authority: &str,
        path: &str,
        json: &str,
    ) -> Result<Reply, BoxError> {
        let req = http::Request::post(format!("https://{authority}{path}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Bytes::copy_from_slice(json.as_bytes()))?;
        self.request(req).await
    }
}

/// tonic's transport over an [`H3Client`]: `SomeClient::with_origin(client, uri)`. The request
/// body is sent as tonic yields it while the response is read, so a bidirectional stream's
/// messages interleave both ways.
impl tower::Service<http::Request<tonic::body::Body>> for H3Client {
    type Response = http::Response<RecvBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let mut sender = self.sender.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let stream = sender
                .send_request(http::Request::from_parts(parts, ()))
                .await?;
            let (mut send, mut recv) = stream.split();
            tokio::spawn(async move {
                let mut body = std::pin::pin!(body);
                while let Some(Ok(frame)) = body.frame().await {
                    if let Ok(data) = frame.into_data()
                        && send.send_data(data).await.is_err()
                    {
                        return;
                    }
                }
                let _ = send.finish().await;
            });
            let resp = recv.recv_response().await?;
            Ok(resp.map(|()| RecvBody::new(recv)))
        })
    }
}
