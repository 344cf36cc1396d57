//! Mutual TLS between components: both ends hold a certificate of the region CA
//! ([`crate::pki`]), both check the other's chain against that CA only, and each checks the
//! other's role (from its `edgeplane://<region>/<role>/<name>` URI SAN) against the roles
//! allowed there and its region against the local one.
//!
//! - [`RegionTrust`]: the region CA certificate(s) from a file, reloaded on change.
//! - [`ClientCert`]: a component's own certificate when it dials, reloaded on change (the
//!   mechanism of [`ServerCert`]).
//! - [`PeerPolicy`]: which roles may connect (server side) or be dialled (client side).
//! - [`MtlsServer`], [`MtlsClient`]: rustls configs (ring provider, TLS 1.3 and 1.2) and
//!   handshakes that return the peer's [`PeerIdentity`] or an [`MtlsError`] saying what was
//!   wrong. The checks run inside the handshake (custom verifiers wrapping webpki's), so a
//!   refused peer never gets a connection; [`identify`] reads the identity back afterwards.
//!
//! Reloads: certificate, key and CA files are polled by `watch` tasks; new handshakes use what
//! was last read successfully, connections already up keep theirs. Session resumption is off
//! on both ends, so that every new connection is verified against what is current (links
//! between components are long-lived: a full handshake each time costs little).

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::identity::{self, IdentityError, PeerIdentity, Role};
use crate::reload::{self, FileKind, Reloadable};
use crate::{ServerCert, TlsError, files};

/// A peer that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The end of a connection a certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Server => "server",
        })
    }
}

/// Why a mutual-TLS handshake failed or its peer was refused. Each failure has its own variant
/// and wording, so that logs tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MtlsError {
    /// The peer sent no certificate.
    #[error("no {0} certificate")]
    NoCertificate(Side),
    /// The peer's chain does not lead to the region CA.
    #[error("{side} certificate from another CA (not issued by the region {region} CA)")]
    OtherCa { side: Side, region: String },
    /// The chain leads to the CA but the certificate is unusable (expired, not yet valid,
    /// wrong name, wrong key usage, bad signature).
    #[error("{side} certificate rejected: {reason}")]
    BadCertificate { side: Side, reason: String },
    /// A certificate of the CA without a valid `edgeplane://` identity.
    #[error("{side} certificate has no usable identity: {error}")]
    NoIdentity { side: Side, error: IdentityError },
    /// The peer's role is not one of those allowed here.
    #[error("{side} certificate role {} is not allowed here (allowed: {allowed}; certificate of {identity})", identity.role)]
    RoleNotAllowed {
        side: Side,
        identity: PeerIdentity,
        allowed: String,
    },
    /// The peer's certificate names another region.
    #[error("{side} certificate is for region {} but this is region {local} (certificate of {identity})", identity.region)]
    WrongRegion {
        side: Side,
        identity: PeerIdentity,
        local: String,
    },
    /// What arrived is not TLS at all (a plaintext client, or another protocol).
    #[error("not TLS: the peer sent something else (a plaintext client?)")]
    NotTls,
    /// The peer ended the handshake with an alert (it refused our certificate, or ours is of
    /// an unknown CA to it).
    #[error("the peer refused the handshake: {0}")]
    Refused(String),
    /// The handshake did not finish within [`HANDSHAKE_TIMEOUT`].
    #[error("TLS handshake timed out")]
    Timeout,
    /// Anything else (connection closed or reset during the handshake, protocol errors).
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
}

impl MtlsError {
    /// The failure behind a rustls error, seen from `local` (the end that got the error),
    /// with `region` the local region.
    pub fn from_rustls(e: &rustls::Error, local: Side, region: &str) -> MtlsError {
        use rustls::{Error, InvalidMessage};
        let peer = match local {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        match e {
            Error::NoCertificatesPresented => MtlsError::NoCertificate(peer),
            Error::InvalidCertificate(CertificateError::UnknownIssuer) => MtlsError::OtherCa {
                side: peer,
                region: region.to_owned(),
            },
            Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
                match inner.downcast_ref::<MtlsError>() {
                    Some(ours) => ours.clone(),
                    None => MtlsError::BadCertificate {
                        side: peer,
                        reason: inner.to_string(),
                    },
                }
            }
            Error::InvalidCertificate(other) => MtlsError::BadCertificate {
                side: peer,
                reason: Error::InvalidCertificate(other.clone()).to_string(),
            },
            Error::InvalidMessage(InvalidMessage::InvalidContentType)
            | Error::InvalidMessage(InvalidMessage::UnknownProtocolVersion) => MtlsError::NotTls,
            Error::AlertReceived(alert) => MtlsError::Refused(format!("alert {alert:?}")),
            other => MtlsError::Handshake(other.to_string()),
        }
    }

    /// The failure behind an I/O error of a tokio-rustls handshake or of the first reads and
    /// writes after it (TLS 1.3 clients learn that the server refused them only then).
    pub fn from_io(e: &std::io::Error, local: Side, region: &str) -> MtlsError {
        if let Some(tls) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return MtlsError::from_rustls(tls, local, region);
        }
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                MtlsError::Handshake("connection closed during the handshake".into())
            }
            _ => MtlsError::Handshake(e.to_string()),
        }
    }

    fn into_rustls(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(self))))
    }
}

/// Which peer roles are accepted. The peer's region must always be the local one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPolicy {
    /// `None`: any role.
    roles: Option<BTreeSet<Role>>,
}

impl PeerPolicy {
    /// Only these roles (e.g. the controller's API: `[Role::Mc, Role::Edgectl]`).
    pub fn roles(roles: &[Role]) -> PeerPolicy {
        PeerPolicy {
            roles: Some(roles.iter().copied().collect()),
        }
    }

    /// Any role of the region.
    pub fn any_role() -> PeerPolicy {
        PeerPolicy { roles: None }
    }

    /// Whether `role` is accepted.
    pub fn allows(&self, role: Role) -> bool {
        self.roles.as_ref().is_none_or(|r| r.contains(&role))
    }

    /// The accepted roles in words: "mc, edgectl" or "any role".
    pub fn describe(&self) -> String {
        match &self.roles {
            None => "any role".into(),
            Some(r) if r.is_empty() => "none".into(),
            Some(r) => r.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
        }
    }

    /// Checks a verified peer's identity (from `side`) against this policy and the local
    /// region.
    pub fn check(
        &self,
        side: Side,
        identity: &PeerIdentity,
        local_region: &str,
    ) -> Result<(), MtlsError> {
        if identity.region != local_region {
            return Err(MtlsError::WrongRegion {
                side,
                identity: identity.clone(),
                local: local_region.to_owned(),
            });
        }
        if !self.allows(identity.role) {
            return Err(MtlsError::RoleNotAllowed {
                side,
                identity: identity.clone(),
                allowed: self.describe(),
            });
        }
        Ok(())
    }

    /// The identity of a verified certificate (DER) from `side`, checked against this policy.
    pub fn check_cert(
        &self,
        side: Side,
        cert: &[u8],
        local_region: &str,
    ) -> Result<PeerIdentity, MtlsError> {
        let identity =
            identity::peer_identity(cert).map_err(|error| MtlsError::NoIdentity { side, error })?;
        self.check(side, &identity, local_region)?;
        Ok(identity)
    }
}

/// The region CA as both ends trust it.
#[derive(Debug)]
struct Trust {
    region: String,
    fingerprint: String,
    client_verifier: Arc<dyn ClientCertVerifier>,
    server_verifier: Arc<WebPkiServerVerifier>,
}

fn trust_of(cas: &[CertificateDer<'static>], path: &Path) -> Result<Trust, TlsError> {
    let bad = |reason: String| TlsError::Cert {
        path: path.to_path_buf(),
        reason,
    };
    let mut region = None;
    let mut roots = RootCertStore::empty();
    for ca in cas {
        let r =
            identity::ca_region(ca).map_err(|e| bad(format!("not an Edgeplane region CA: {e}")))?;
        match &region {
            None => region = Some(r),
            Some(first) if *first != r => {
                return Err(bad(format!("CAs of two regions: {first} and {r}")));
            }
            Some(_) => {}
        }
        roots
            .add(ca.clone())
            .map_err(|e| bad(format!("unusable as a trust anchor: {e}")))?;
    }
    let region = region.ok_or_else(|| bad("no CA certificate".into()))?;
    let roots = Arc::new(roots);
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), crate::provider())
            .build()
            .map_err(|e| bad(e.to_string()))?;
    let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, crate::provider())
        .build()
        .map_err(|e| bad(e.to_string()))?;
    Ok(Trust {
        region,
        fingerprint: crate::fingerprint(&cas[0]),
        client_verifier,
        server_verifier,
    })
}

fn read_trust(paths: &[PathBuf]) -> Result<Trust, TlsError> {
    trust_of(&files::load_certs(&paths[0])?, &paths[0])
}

/// The region CA certificate(s) every peer's chain must lead to, and the region they
/// certify; from a PEM file (reloaded on change: several CAs of the same region in one file
/// are all trusted, for a CA rotation) or from memory.
#[derive(Debug)]
pub struct RegionTrust {
    trust: Reloadable<Trust>,
}

impl RegionTrust {
    /// The CA certificate(s) in this PEM file (e.g. `DIR/ca.pem`).
    pub fn from_file(ca: &Path) -> Result<Arc<RegionTrust>, TlsError> {
        Ok(Arc::new(RegionTrust {
            trust: Reloadable::from_files(&[(ca, FileKind::Cert)], read_trust)?,
        }))
    }

    /// A fixed CA certificate (e.g. [`RegionCa::cert_der`](crate::RegionCa::cert_der)).
    pub fn from_der(ca: CertificateDer<'static>) -> Result<Arc<RegionTrust>, TlsError> {
        let trust = trust_of(&[ca], Path::new("<memory>"))?;
        Ok(Arc::new(RegionTrust {
            trust: Reloadable::fixed(trust),
        }))
    }

    /// The region of the CA.
    pub fn region(&self) -> String {
        self.trust.load().region.clone()
    }

    /// SHA-256 fingerprint of the (first) CA certificate.
    pub fn fingerprint(&self) -> String {
        self.trust.load().fingerprint.clone()
    }

    /// Re-reads the file if it changed; a bad new file keeps the old CA and returns the error.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        self.trust.reload_if_changed()
    }

    /// Polls [`reload_if_changed`](Self::reload_if_changed) every `every` until `shutdown`
    /// (as [`ServerCert::watch`]).
    pub fn watch(
        self: &Arc<Self>,
        every: Duration,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        reload::watch(self.clone(), every, shutdown)
    }
}

impl reload::Reload for RegionTrust {
    const WHAT: &'static str = "region CA";
    fn reload_if_changed(&self) -> Result<bool, TlsError> {
        self.trust.reload_if_changed()
    }
    fn watches_files(&self) -> bool {
        self.trust.paths().is_some()
    }
    fn current_fingerprint(&self) -> String {
        self.fingerprint()
    }
}

/// The certificate a component presents when it dials another: the same reloading pair as a
/// server's ([`ServerCert`], which also implements `ResolvesClientCert`).
pub type ClientCert = ServerCert;

/// Server side: a client certificate is required, its chain must lead to the current region
/// CA, and its identity must pass the policy.
#[derive(Debug)]
struct RegionClientVerifier {
    trust: Arc<RegionTrust>,
    policy: PeerPolicy,
}

impl ClientCertVerifier for RegionClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    // No hints (they would have to outlive a CA reload); our clients hold one certificate.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let trust = self.trust.trust.load();
        let verified = trust
            .client_verifier
            .verify_client_cert(end_entity, intermediates, now)?;
        self.policy
            .check_cert(Side::Client, end_entity, &trust.region)
            .map_err(MtlsError::into_rustls)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let trust = self.trust.trust.load();
        trust
            .client_verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let trust = self.trust.trust.load();
        trust
            .client_verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.trust
            .trust
            .load()
            .client_verifier
            .supported_verify_schemes()
    }
}

/// Client side: the server's chain must lead to the current region CA and be valid for the
/// name dialled, and its identity must pass the policy.
#[derive(Debug)]
struct RegionServerVerifier {
    trust: Arc<RegionTrust>,
    policy: PeerPolicy,
}

impl ServerCertVerifier for RegionServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let trust = self.trust.trust.load();
        let verified = trust.server_verifier.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        self.policy
            .check_cert(Side::Server, end_entity, &trust.region)
            .map_err(MtlsError::into_rustls)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let trust = self.trust.trust.load();
        trust
            .server_verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let trust = self.trust.trust.load();
        trust
            .server_verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.trust
            .trust
            .load()
            .server_verifier
            .supported_verify_schemes()
    }
}

/// The identity of the peer of a finished handshake (`side`: the peer's end), checked against
/// `policy` and the local region. The configs of this module already checked it during the
/// handshake; this reads it back (and checks again, for connections made otherwise).
pub fn identify(
    conn: &rustls::CommonState,
    side: Side,
    policy: &PeerPolicy,
    local_region: &str,
) -> Result<PeerIdentity, MtlsError> {
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or(MtlsError::NoCertificate(side))?;
    policy.check_cert(side, leaf, local_region)
}

/// A mutual-TLS server: its rustls config and the handshake of each connection.
#[derive(Debug, Clone)]
pub struct MtlsServer {
    config: Arc<rustls::ServerConfig>,
    trust: Arc<RegionTrust>,
    policy: PeerPolicy,
}

impl MtlsServer {
    /// A server answering with `cert` (reloaded if from files and watched), requiring client
    /// certificates of `trust`'s CA whose role `policy` allows, offering these ALPN protocols
    /// (e.g. `[b"h2"]` for gRPC).
    pub fn new(
        cert: Arc<ServerCert>,
        trust: Arc<RegionTrust>,
        policy: PeerPolicy,
        alpn: &[&[u8]],
    ) -> Result<MtlsServer, TlsError> {
        MtlsServer::with_resolver(cert, trust, policy, alpn)
    }

    /// As [`new`](Self::new), for any certificate resolver.
    pub fn with_resolver(
        cert: Arc<dyn ResolvesServerCert>,
        trust: Arc<RegionTrust>,
        policy: PeerPolicy,
        alpn: &[&[u8]],
    ) -> Result<MtlsServer, TlsError> {
        let verifier = Arc::new(RegionClientVerifier {
            trust: trust.clone(),
            policy: policy.clone(),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(crate::provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(cert);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // No resumption: every handshake verifies the client's current certificate against
        // the current CA and policy, and presents the current server certificate.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(MtlsServer {
            config: Arc::new(config),
            trust,
            policy,
        })
    }

    /// The rustls config (e.g. for a `tokio_rustls::TlsAcceptor` of one's own).
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }

    /// The CA trusted.
    pub fn trust(&self) -> &Arc<RegionTrust> {
        &self.trust
    }

    /// The client roles accepted.
    pub fn policy(&self) -> &PeerPolicy {
        &self.policy
    }

    /// Runs the handshake on `io` (bounded by [`HANDSHAKE_TIMEOUT`]) and returns the stream
    /// with the client's identity, or what was wrong with the client: log it on the server
    /// side, the client only sees an alert.
    pub async fn accept<IO>(
        &self,
        io: IO,
    ) -> Result<(tokio_rustls::server::TlsStream<IO>, PeerIdentity), MtlsError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config.clone());
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
            Err(_) => return Err(MtlsError::Timeout),
            Ok(Err(e)) => return Err(MtlsError::from_io(&e, Side::Server, &self.trust.region())),
            Ok(Ok(tls)) => tls,
        };
        let identity = self.identify(tls.get_ref().1)?;
        Ok((tls, identity))
    }

    /// The verified client identity of a connection made with [`config`](Self::config).
    pub fn identify(&self, conn: &rustls::CommonState) -> Result<PeerIdentity, MtlsError> {
        identify(conn, Side::Client, &self.policy, &self.trust.region())
    }
}

/// A mutual-TLS client: its rustls config and the handshake of each connection.
#[derive(Debug, Clone)]
pub struct MtlsClient {
    config: Arc<rustls::ClientConfig>,
    trust: Arc<RegionTrust>,
    policy: PeerPolicy,
}

impl MtlsClient {
    /// A client presenting `cert` (reloaded if from files and watched), trusting only
    /// `trust`'s CA, accepting servers whose role `policy` allows, offering these ALPN
    /// protocols.
    pub fn new(
        cert: Arc<ClientCert>,
        trust: Arc<RegionTrust>,
        policy: PeerPolicy,
        alpn: &[&[u8]],
    ) -> Result<MtlsClient, TlsError> {
        let verifier = Arc::new(RegionServerVerifier {
            trust: trust.clone(),
            policy: policy.clone(),
        });
        let mut config = rustls::ClientConfig::builder_with_provider(crate::provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(cert);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // No resumption (see `MtlsServer::new`): each connection verifies the server anew.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(MtlsClient {
            config: Arc::new(config),
            trust,
            policy,
        })
    }

    /// The rustls config (e.g. for a `tokio_rustls::TlsConnector` of one's own).
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// The CA trusted.
    pub fn trust(&self) -> &Arc<RegionTrust> {
        &self.trust
    }

    /// Runs the handshake on `io` for `server_name` (a DNS name or IP the server's certificate
    /// holds), bounded by [`HANDSHAKE_TIMEOUT`], and returns the stream with the server's
    /// identity. With TLS 1.3, a server refusing our certificate is only seen at the first
    /// read; [`MtlsError::from_io`] tells what it said.
    pub async fn connect<IO>(
        &self,
        io: IO,
        server_name: ServerName<'static>,
    ) -> Result<(tokio_rustls::client::TlsStream<IO>, PeerIdentity), MtlsError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let region = self.trust.region();
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(server_name, io))
            .await
        {
            Err(_) => return Err(MtlsError::Timeout),
            Ok(Err(e)) => return Err(MtlsError::from_io(&e, Side::Client, &region)),
            Ok(Ok(tls)) => tls,
        };
        let identity = identify(tls.get_ref().1, Side::Server, &self.policy, &region)?;
        Ok((tls, identity))
    }
}
