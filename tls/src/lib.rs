//! TLS material for every component: PEM certificate chains and keys read from files (with
//! errors that name the file and the problem), a server certificate that is swapped at run time
//! when its files change ([`ServerCert`], a rustls `ResolvesServerCert`), self-signed and
//! CA-issued certificates for development and tests ([`dev`]), fingerprints, and rustls server
//! configs on the ring provider. And the region PKI with the mutual TLS every connection between
//! components uses: a region CA issuing each component a certificate tagged with its role and
//! region ([`pki`], [`identity`]), and rustls client and server configs that require the
//! other end's certificate of that CA and check its role ([`mtls`]).
//!
//! Owns: loading and checking certificate/key pairs, reloading them (one mechanism, `reload`,
//! for server and client certificates and the CA), generating development certificates, the
//! region CA and component certificates (files and their modes), the identity format
//! (`edgeplane://<region>/<role>/<name>` URI SAN), which peers a mutual-TLS handshake accepts
//! and the wording of its refusals, the crypto provider choice (ring, always passed explicitly:
//! no process-wide default provider is installed or relied on), TLS versions and ALPN of the
//! configs it builds.
//! And the one TLS accept loop servers share ([`serve`]: tonic and axum), the mutual-TLS
//! connector for gRPC clients ([`grpc`]), and the `--mtls-*` flags every component takes
//! ([`cli`]).
//! Does not own: plain TCP listeners (the root LB's proxy listeners are its own), which
//! certificate files a component uses (its flags or its route table), which roles a listener
//! admits (the component passes a [`PeerPolicy`]), or any policy about when plaintext is
//! acceptable.
//!
//! # Layout
//! - `files`: [`load_pair`], [`load_certs`], [`load_key`].
//! - `reload`: the value-from-files-swapped-on-change mechanism and its polling task.
//! - `server_cert`: [`ServerCert`], the reloadable server certificate.
//! - [`dev`]: [`DevCert`], [`dev::DevCa`]: certificates generated with rcgen, never from files.
//! - [`identity`]: [`Role`], [`PeerIdentity`], [`peer_identity`] (x509-parser).
//! - [`pki`]: [`RegionCa`], [`LeafRequest`], [`IssuedCert`], `init`/`issue` on a directory.
//! - [`serve`]: [`serve::accept`] → [`serve::TlsIncoming`]; [`grpc`]: [`grpc::MtlsConnector`];
//!   [`cli`]: [`cli::MtlsArgs`] → [`cli::Mtls`].
//! - [`mtls`]: [`RegionTrust`], [`ClientCert`], [`PeerPolicy`], [`MtlsServer`],
//!   [`MtlsClient`], [`MtlsError`].

pub mod cli;
pub mod dev;
mod files;
pub mod grpc;
pub mod identity;
pub mod mtls;
pub mod pki;
mod reload;
pub mod serve;
mod server_cert;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::server::ResolvesServerCert;

pub use dev::DevCert;
pub use files::{load_certs, load_key, load_pair};
pub use identity::{IdentityError, PeerIdentity, Role, peer_identity};
pub use mtls::{ClientCert, MtlsClient, MtlsError, MtlsServer, PeerPolicy, RegionTrust, Side};
pub use pki::{IssuedCert, LeafRequest, PkiError, RegionCa};
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer};
pub use server_cert::ServerCert;

/// Why TLS material could not be loaded, checked or used. Each variant names the file(s).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable, not PEM, or holds no certificate.
    #[error("certificate {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    /// The key file is missing, unreadable, not PEM, holds no private key, or one of a type
    /// the provider does not support.
    #[error("private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    /// The private key is not the key of the chain's first (leaf) certificate.
    #[error("private key {key} does not belong to the certificate in {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
    /// A development certificate could not be generated.
    #[error("generating a development certificate: {0}")]
    Generate(String),
    /// rustls refused a configuration or a certificate/key pair.
    #[error("rustls: {0}")]
    Config(#[from] rustls::Error),
}

/// The crypto provider of every config this crate builds: ring. Passed explicitly, so that
/// nothing depends on which provider a process happens to install as its default.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// SHA-256 of a certificate (DER), as uppercase hex pairs joined by ':' (the form browsers and
/// `openssl x509 -fingerprint -sha256` show).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    let mut out = String::with_capacity(digest.as_ref().len() * 3);
    for (i, byte) in digest.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{byte:02X}"));
    }
    out
}

/// A TLS 1.2 and 1.3 server config answering with `cert` (whatever it holds at each handshake)
/// and offering these ALPN protocols (e.g. `[b"h2", b"http/1.1"]`), on the ring provider.
pub fn server_config(
    cert: Arc<ServerCert>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    server_config_with_resolver(cert, alpn)
}

/// As [`server_config`], for any certificate resolver (e.g. one choosing by SNI).
pub fn server_config_with_resolver(
    resolver: Arc<dyn ResolvesServerCert>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_uppercase_hex_pairs_joined_by_colons() {
        let fp = fingerprint(&CertificateDer::from(b"abc".to_vec()));
        // SHA-256("abc"), a published test vector.
        assert!(fp.starts_with("BA:78:16:BF:8F:01:CF:EA"), "{fp}");
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.split(':').all(|p| {
            p.len() == 2
                && p.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        }));
    }

    #[test]
    fn server_config_offers_the_given_alpn() {
        let (cert, _) = ServerCert::dev_self_signed(&["localhost"]).unwrap();
        let config = server_config(cert, &[b"h2", b"http/1.1"]).unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
