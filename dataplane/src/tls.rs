//! TLS termination config: a rustls server config per listener, loaded from the PEM files named
//! in the route table. Loaded on every table apply, so replacing the files and reloading (file
//! change or SIGHUP) rotates certificates without touching open connections. Reading and
//! checking the files is `edge_tls`'s.

use std::sync::Arc;

use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::table::TlsFiles;

/// Why a listener's certificate could not be loaded: the file and the problem (missing,
/// unreadable, no PEM, key not matching the certificate, refused by rustls).
pub use edge_tls::TlsError;

/// Build an acceptor from the listener's certificate chain and key.
pub fn load_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let (certs, key) = edge_tls::load_pair(&files.cert, &files.key)?;
    let config = ServerConfig::builder_with_provider(edge_tls::provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
