//! [`ServerCert`]: the certificate a server answers with, swapped at run time when its files
//! change. Handshakes read the current pair with one atomic load (never a lock), so a reload
//! never makes a handshake wait; connections already up keep the certificate they started with.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{DevCert, TlsError, files};

/// A server certificate that can change at run time; implements
/// [`rustls::server::ResolvesServerCert`].
#[derive(Debug)]
pub struct ServerCert {
    current: ArcSwap<CertifiedKey>,
    /// Where it came from; `None` for a pair given in memory (never reloaded).
    files: Option<Files>,
}

#[derive(Debug)]
struct Files {
    cert: PathBuf,
    key: PathBuf,
    /// The files' stamps when last read (successfully or not), so one bad pair is reported
    /// once, not at every poll, and a fixed one is picked up as soon as it is written.
    seen: Mutex<(Stamp, Stamp)>,
}

/// What tells a changed file: modification time, size, and (on Unix) the inode, which changes
/// when a new file is renamed over the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode,
    })
}

fn stamps(cert: &Path, key: &Path) -> Result<(Stamp, Stamp), TlsError> {
    let c = stamp(cert).map_err(|e| TlsError::Cert {
        path: cert.to_path_buf(),
        reason: format!("cannot read: {e}"),
    })?;
    let k = stamp(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        reason: format!("cannot read: {e}"),
    })?;
    Ok((c, k))
}

fn read(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let certs = files::load_certs(cert)?;
    let private = files::load_key(key)?;
    files::certified(certs, private, cert, key)
}

impl ServerCert {
    /// The pair in these PEM files; [`reload_if_changed`](Self::reload_if_changed) re-reads
    /// them.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Arc<ServerCert>, TlsError> {
        // Stamps first: a file replaced while it is read is then seen as changed next time.
        let seen = stamps(cert, key)?;
        let current = read(cert, key)?;
        Ok(Arc::new(ServerCert {
            current: ArcSwap::from_pointee(current),
            files: Some(Files {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                seen: Mutex::new(seen),
            }),
        }))
    }

    /// A fixed pair given in memory (never reloaded).
    pub fn from_pair(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Arc<ServerCert>, TlsError> {
        let memory = Path::new("<memory>");
        let current = files::certified(certs, key, memory, memory)?;
        Ok(Arc::new(ServerCert {
            current: ArcSwap::from_pointee(current),
            files: None,
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
        self.current.load_full()
    }

    /// SHA-256 of the current leaf certificate (DER), as uppercase hex pairs joined by ':'.
    pub fn fingerprint(&self) -> String {
        match self.current.load().cert.first() {
            Some(leaf) => crate::fingerprint(leaf),
            None => String::new(),
        }
    }

    /// The certificate and key files, when the pair came from files.
    pub fn paths(&self) -> Option<(&Path, &Path)> {
        self.files
            .as_ref()
            .map(|f| (f.cert.as_path(), f.key.as_path()))
    }

    /// Re-reads the files if their modification time or size changed; a bad new pair keeps
    /// the old one and returns the error (log it). `Ok(true)` when it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let Some(files) = &self.files else {
            return Ok(false);
        };
        // Held while reading: two callers never reload the same change twice.
        let mut seen = files.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = stamps(&files.cert, &files.key)?;
        if now == *seen {
            return Ok(false);
        }
        *seen = now;
        let pair = read(&files.cert, &files.key)?;
        self.current.store(Arc::new(pair));
        Ok(true)
    }

    /// Spawns a tokio task polling [`reload_if_changed`](Self::reload_if_changed) every
    /// `every` until `shutdown` resolves (no-op for a pair not from files). Reloads are logged
    /// at info with the new fingerprint, failures at warn (the previous pair keeps serving).
    pub fn watch(
        self: &Arc<Self>,
        every: Duration,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            if this.files.is_none() {
                return;
            }
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    () = &mut shutdown => return,
                    _ = tick.tick() => {}
                }
                // File reads block; keep them off the async workers.
                let cert = this.clone();
                match tokio::task::spawn_blocking(move || cert.reload_if_changed()).await {
                    Ok(Ok(true)) => tracing::info!(
                        fingerprint = %this.fingerprint(),
                        "TLS certificate reloaded"
                    ),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::warn!(
                        "TLS certificate not reloaded, keeping the previous one: {e}"
                    ),
                    Err(e) => tracing::warn!("TLS certificate reload task failed: {e}"),
                }
            }
        })
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

#[cfg(test)]
mod tests;
