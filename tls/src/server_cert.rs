//! [`ServerCert`]: the certificate a server answers with, swapped at run time when its files
//! change. Handshakes read the current pair with one atomic load (never a lock), so a reload
//! never makes a handshake wait; connections already up keep the certificate they started with.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::reload::{self, FileKind, Reloadable};
use crate::{DevCert, TlsError, files};

/// A server certificate that can change at run time; implements
/// [`rustls::server::ResolvesServerCert`].
#[derive(Debug)]
pub struct ServerCert {
    pair: Reloadable<CertifiedKey>,
}

fn read(paths: &[PathBuf]) -> Result<CertifiedKey, TlsError> {
    let (cert, key) = (&paths[0], &paths[1]);
    let certs = files::load_certs(cert)?;
    let private = files::load_key(key)?;
    files::certified(certs, private, cert, key)
}

/// A certificate chain and key from PEM files, re-read by `reload_if_changed`: the state of
/// [`ServerCert`] (also used as [`ClientCert`](crate::ClientCert)).
fn pair_from_files(cert: &Path, key: &Path) -> Result<Reloadable<CertifiedKey>, TlsError> {
    Reloadable::from_files(&[(cert, FileKind::Cert), (key, FileKind::Key)], read)
}

/// A fixed pair given in memory.
fn pair_fixed(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Reloadable<CertifiedKey>, TlsError> {
    let memory = Path::new("<memory>");
    Ok(Reloadable::fixed(files::certified(
        certs, key, memory, memory,
    )?))
}

/// The leaf's fingerprint, or "" for an empty chain.
fn leaf_fingerprint(pair: &CertifiedKey) -> String {
    pair.cert
        .first()
        .map(crate::fingerprint)
        .unwrap_or_default()
}

/// The (cert, key) paths of a pair from files.
fn pair_paths(pair: &Reloadable<CertifiedKey>) -> Option<(&Path, &Path)> {
    pair.paths().map(|p| (p[0], p[1]))
}

impl ServerCert {
    /// The pair in these PEM files; [`reload_if_changed`](Self::reload_if_changed) re-reads
    /// them.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Arc<ServerCert>, TlsError> {
        Ok(Arc::new(ServerCert {
            pair: pair_from_files(cert, key)?,
        }))
    }

    /// A fixed pair given in memory (never reloaded).
    pub fn from_pair(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Arc<ServerCert>, TlsError> {
        Ok(Arc::new(ServerCert {
            pair: pair_fixed(certs, key)?,
        }))
    }

    /// Self-signed for local use (rcgen), for the given DNS names / IPs (e.g. `["localhost",
    /// "127.0.0.1"]`).
    pub fn dev_self_signed(names: &[&str]) -> Result<(Arc<ServerCert>, DevCert), TlsError> {
        let dev = DevCert::self_signed(names)?;
        let (certs, key) = dev.pair()?;
        Ok((ServerCert::from_pair(certs, key)?, dev))
    }

    /// The pair handshakes currently get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.pair.load_full()
    }

    /// SHA-256 of the current leaf certificate (DER), as uppercase hex pairs joined by ':'.
    pub fn fingerprint(&self) -> String {
        leaf_fingerprint(&self.pair.load())
    }

    /// The certificate and key files, when the pair came from files.
    pub fn paths(&self) -> Option<(&Path, &Path)> {
        pair_paths(&self.pair)
    }

    /// Re-reads the files if their modification time, size or inode changed; a bad new pair
    /// keeps the old one and returns the error (log it). `Ok(true)` when it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        self.pair.reload_if_changed()
    }

    /// Spawns a tokio task polling [`reload_if_changed`](Self::reload_if_changed) every
    /// `every` until `shutdown` resolves (no-op for a pair not from files). Reloads are logged
    /// at info with the new fingerprint, failures at warn (the previous pair keeps serving).
    pub fn watch(
        self: &Arc<Self>,
        every: Duration,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        reload::watch(self.clone(), every, shutdown)
    }
}

impl reload::Reload for ServerCert {
    const WHAT: &'static str = "TLS certificate";
    fn reload_if_changed(&self) -> Result<bool, TlsError> {
        self.pair.reload_if_changed()
    }
    fn watches_files(&self) -> bool {
        self.pair.paths().is_some()
    }
    fn current_fingerprint(&self) -> String {
        self.fingerprint()
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pair.load_full())
    }
}

/// The same pair, presented when dialling (mutual TLS: [`crate::ClientCert`]).
impl rustls::client::ResolvesClientCert for ServerCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.pair.load_full())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
