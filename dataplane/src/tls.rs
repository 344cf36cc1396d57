//! TLS termination config: a rustls server config per listener, loaded from the PEM files named
//! in the route table. Loaded on every table apply, so replacing the files and reloading (file
//! change or SIGHUP) rotates certificates without touching open connections.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::table::TlsFiles;

/// Why a listener's certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable, or holds no PEM certificate.
    #[error("certificate {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    /// The key file is missing, unreadable, or holds no PEM private key.
    #[error("private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    /// rustls refused the pair (e.g. key does not match the certificate).
    #[error("rustls rejected the certificate/key pair: {0}")]
    Config(#[from] rustls::Error),
}

/// Build an acceptor from the listener's certificate chain and key.
pub fn load_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let cert_err = |reason: String| TlsError::Cert {
        path: files.cert.clone(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no certificate in file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
