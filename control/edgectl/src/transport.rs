//! How `edgectl` reaches a region's API: through the MC's gRPC proxy with a login token (the
//! MC's certificate checked against `--ca`), or straight at a controller (plaintext, or mutual
//! TLS with an `edgectl` certificate).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tonic::codegen::{Body, Bytes, StdError};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};

/// Any gRPC transport a `ControllerClient` runs on: a plain `Channel` (tests, `edgeplane
/// up`), or [`Client`]'s channel adding the MC's token.
pub trait Transport:
    tonic::client::GrpcService<
        tonic::body::Body,
        Error: Into<StdError>,
        ResponseBody: Body<Data = Bytes, Error: Into<StdError> + Send> + Send + 'static,
    >
{
}

impl<T> Transport for T where
    T: tonic::client::GrpcService<
            tonic::body::Body,
            Error: Into<StdError>,
            ResponseBody: Body<Data = Bytes, Error: Into<StdError> + Send> + Send + 'static,
        >
{
}

/// The metadata naming the region, for the MC.
pub const REGION_HEADER: &str = "x-edgeplane-region";

/// Adds the MC's login token and the chosen region to every call (nothing for direct access).
#[derive(Clone, Default)]
pub struct Auth {
    token: Option<MetadataValue<Ascii>>,
    region: Option<MetadataValue<Ascii>>,
}

impl Auth {
    pub fn new(token: Option<&str>, region: Option<&str>) -> Result<Auth, String> {
        let token = token
            .map(|t| format!("Bearer {t}").parse())
            .transpose()
            .map_err(|_| "the stored token is not valid metadata: run edgectl login".to_string())?;
        let region = region
            .map(str::parse)
            .transpose()
            .map_err(|_| "--region: not a valid name".to_string())?;
        Ok(Auth { token, region })
    }
}

impl Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.token {
            req.metadata_mut().insert("authorization", t.clone());
        }
        if let Some(r) = &self.region {
            req.metadata_mut().insert(REGION_HEADER, r.clone());
        }
        Ok(req)
    }
}

/// The controller client of every object command.
pub type Client =
    edge_api::pb::controller_client::ControllerClient<InterceptedService<Channel, Auth>>;

/// A TLS client config trusting only the CA certificates in `ca` (the MC's issuer), with
/// these ALPN protocols.
pub fn tls_config(ca: &Path, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, String> {
    let certs = edge_tls::load_certs(ca).map_err(|e| format!("--ca: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots
            .add(c)
            .map_err(|e| format!("--ca {}: {e}", ca.display()))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(edge_tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// TCP then a TLS handshake checking the server's certificate for the host name.
pub async fn tls_connect(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, StdError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| format!("{host} is not a valid server name"))?;
    let tcp = TcpStream::connect((host, port)).await?;
    let _ = tcp.set_nodelay(true);
    Ok(tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?)
}

/// tonic's connector for the MC over HTTPS.
#[derive(Clone)]
struct TlsConnector(Arc<rustls::ClientConfig>);

type Io = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

impl tower_service::Service<Uri> for TlsConnector {
    type Response = Io;
    type Error = StdError;
    type Future = Pin<Box<dyn Future<Output = Result<Io, StdError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), StdError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let config = self.0.clone();
        Box::pin(async move {
            let host = uri.host().ok_or("the address has no host")?.to_owned();
            let port = uri.port_u16().unwrap_or(443);
            Ok(TokioIo::new(tls_connect(config, &host, port).await?))
        })
    }
}

/// A channel to the MC at `url` (`https://HOST:PORT` with `ca`, or `http://` on loopback).
pub async fn mc_channel(url: &str, ca: Option<&Path>) -> Result<Channel, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("MC address {url:?}: {e}"))?;
    let plain = format!(
        "http://{}",
        uri.authority()
            .ok_or_else(|| format!("MC address {url:?}: no host"))?
    );
    let ep = Endpoint::from_shared(plain)
        .map_err(|e| format!("MC address {url:?}: {e}"))?
        .connect_timeout(Duration::from_secs(5));
    let conn = match (uri.scheme_str(), ca) {
        (Some("https"), Some(ca)) => {
            ep.connect_with_connector(TlsConnector(tls_config(ca, &[b"h2"])?))
                .await
        }
        (Some("https"), None) => {
            return Err(format!(
                "MC {url} is HTTPS: log in again with --ca (the region CA, or the MC's issuer)"
            ));
        }
        _ => ep.connect().await,
    };
    conn.map_err(|e| format!("cannot connect to the MC at {url}: {}", chain(&e)))
}

/// An error with its causes, one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}
