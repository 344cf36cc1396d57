//! The one reload mechanism of the crate: a value read from files (a certificate and its key, a
//! CA certificate), held in an [`ArcSwap`] so that handshakes read it with one atomic load and
//! never wait, re-read when the files' stamps change, and a polling task that does so until
//! shut down. [`ServerCert`](crate::ServerCert), [`ClientCert`](crate::ClientCert) and
//! [`RegionTrust`](crate::RegionTrust) are built on it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use crate::TlsError;

/// What a watched file holds, so that an unreadable one is reported as the right kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Cert,
    Key,
}

/// What tells a changed file: modification time, size, and (on Unix) the inode, which changes
/// when a new file is renamed over the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path, kind: FileKind) -> Result<Stamp, TlsError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        let (path, reason) = (path.to_path_buf(), format!("cannot read: {e}"));
        match kind {
            FileKind::Cert => TlsError::Cert { path, reason },
            FileKind::Key => TlsError::Key { path, reason },
        }
    })?;
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

#[derive(Debug)]
struct Files {
    paths: Vec<(PathBuf, FileKind)>,
    /// The files' stamps when last read (successfully or not), so one bad file is reported
    /// once, not at every poll, and a fixed one is picked up as soon as it is written.
    seen: Mutex<Vec<Stamp>>,
}

impl Files {
    fn stamps(&self) -> Result<Vec<Stamp>, TlsError> {
        self.paths.iter().map(|(p, k)| stamp(p, *k)).collect()
    }
}

/// Reads the value from its files (in the order given to [`Reloadable::from_files`]).
pub(crate) type Read<T> = fn(&[PathBuf]) -> Result<T, TlsError>;

/// A value from files (or fixed, from memory), swapped when the files change.
pub(crate) struct Reloadable<T> {
    current: ArcSwap<T>,
    /// `None` for a value given in memory (never reloaded).
    files: Option<(Files, Read<T>)>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Reloadable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloadable")
            .field("current", &self.current)
            .field("files", &self.files.as_ref().map(|(files, _)| files))
            .finish()
    }
}

impl<T> Reloadable<T> {
    /// The value read from these files now.
    pub(crate) fn from_files(
        paths: &[(&Path, FileKind)],
        read: Read<T>,
    ) -> Result<Reloadable<T>, TlsError> {
        let files = Files {
            paths: paths.iter().map(|(p, k)| (p.to_path_buf(), *k)).collect(),
            seen: Mutex::new(Vec::new()),
        };
        // Stamps first: a file replaced while it is read is then seen as changed next time.
        let seen = files.stamps()?;
        let value = read(&files.paths())?;
        *files.seen.lock().unwrap_or_else(|p| p.into_inner()) = seen;
        Ok(Reloadable {
            current: ArcSwap::from_pointee(value),
            files: Some((files, read)),
        })
    }

    /// A value that never changes.
    pub(crate) fn fixed(value: T) -> Reloadable<T> {
        Reloadable {
            current: ArcSwap::from_pointee(value),
            files: None,
        }
    }

    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<T>> {
        self.current.load()
    }

    pub(crate) fn load_full(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// The watched files, when the value came from files.
    pub(crate) fn paths(&self) -> Option<Vec<&Path>> {
        self.files
            .as_ref()
            .map(|(f, _)| f.paths.iter().map(|(p, _)| p.as_path()).collect())
    }

    /// Re-reads the files if one of their stamps changed; a bad new value keeps the old one
    /// and returns the error. `Ok(true)` when it reloaded.
    pub(crate) fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let Some((files, read)) = &self.files else {
            return Ok(false);
        };
        // Held while reading: two callers never reload the same change twice.
        let mut seen = files.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = files.stamps()?;
        if now == *seen {
            return Ok(false);
        }
        *seen = now;
        let value = read(&files.paths())?;
        self.current.store(Arc::new(value));
        Ok(true)
    }
}

impl Files {
    fn paths(&self) -> Vec<PathBuf> {
        self.paths.iter().map(|(p, _)| p.clone()).collect()
    }
}

/// Something [`watch`] can keep up to date.
pub(crate) trait Reload: Send + Sync + 'static {
    /// In log lines: "TLS certificate", "region CA".
    const WHAT: &'static str;
    fn reload_if_changed(&self) -> Result<bool, TlsError>;
    /// False for a value from memory: nothing to watch.
    fn watches_files(&self) -> bool;
    /// SHA-256 fingerprint of what is current, for the log line of a reload.
    fn current_fingerprint(&self) -> String;
}

/// Spawns a tokio task polling `this.reload_if_changed()` every `every` until `shutdown`
/// resolves (returns at once for a value not from files). Reloads are logged at info with the
/// new fingerprint, failures at warn (the previous value stays in use).
pub(crate) fn watch<R: Reload>(
    this: Arc<R>,
    every: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !this.watches_files() {
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
            let value = this.clone();
            match tokio::task::spawn_blocking(move || value.reload_if_changed()).await {
                Ok(Ok(true)) => tracing::info!(
                    fingerprint = %this.current_fingerprint(),
                    "{} reloaded",
                    R::WHAT
                ),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::warn!("{} not reloaded, keeping the previous one: {e}", R::WHAT)
                }
                Err(e) => tracing::warn!("{} reload task failed: {e}", R::WHAT),
            }
        }
    })
}
