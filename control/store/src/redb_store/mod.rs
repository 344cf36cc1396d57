//! The embedded default store: one redb file in a data directory.
//!
//! Tables: `kv` (key → create/mod revision, version, value), `meta` (current revision,
//! compaction floor, format), `changelog` (revision → that revision's events). Every mutation,
//! including its change-log entry and the trimming of old history, is one redb write
//! transaction, so a crash leaves either all of it or none of it.
//!
//! redb calls block, so each operation runs on tokio's blocking pool.

mod codec;
mod watch;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::broadcast;

use crate::{KeyValue, RangeResponse, Revision, Store, StoreError, Txn, TxnResponse, WatchStream};

const KV: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("changelog");

/// `meta` keys.
const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";
const META_FORMAT: &str = "format";

/// The file inside the data directory.
pub(crate) const DB_FILE: &str = "edge-store.redb";

/// Tuning for [`RedbStore`].
#[derive(Debug, Clone)]
pub struct RedbOptions {
    /// How many past revisions the change-log keeps so watches can resume from them. Older
    /// starts get [`StoreError::Compacted`]. Default 100 000.
    pub history: u64,
    /// How many commits the in-process fan-out to live watchers buffers. A watcher further
    /// behind than this is not lost: it re-reads the gap from the change-log. Default 1024.
    pub watch_buffer: usize,
}

impl Default for RedbOptions {
    fn default() -> Self {
        Self {
            history: 100_000,
            watch_buffer: 1024,
        }
    }
}

/// The embedded [`Store`]. Cheap to clone (clones share one open database); the file is closed
/// when the last clone is dropped, which also ends every watch with [`StoreError::Unavailable`].
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
    options: RedbOptions,
    /// Held across commit *and* publish. redb already serialises writers, but without this two
    /// commits could be published to watchers out of revision order.
    write_lock: Mutex<()>,
    /// Live fan-out of committed revisions. Watchers hold receivers only, so dropping `Inner`
    /// closes the channel and ends their streams.
    commits: broadcast::Sender<Arc<Commit>>,
}

/// One committed revision as published to live watchers.
struct Commit {
    revision: Revision,
    events: Vec<crate::Event>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens (or creates) the store in `dir` with default options.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir, RedbOptions::default()).await
    }

    /// Opens (or creates) the store in `dir`, creating the directory if needed.
    pub async fn open_with(
        dir: impl AsRef<Path>,
        options: RedbOptions,
    ) -> Result<Self, StoreError> {
        if options.history == 0 || options.watch_buffer == 0 {
            return Err(StoreError::InvalidRequest(
                "redb store options: history and watch_buffer must be at least 1".into(),
            ));
        }
        let dir = dir.as_ref().to_path_buf();
        let inner = tokio::task::spawn_blocking(move || Inner::open(&dir, options))
            .await
            .map_err(|e| StoreError::Backend(format!("opening redb store: task failed: {e}")))??;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs blocking redb work on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::Backend(format!("redb {op}: task failed: {e}")))?
    }
}

impl Inner {
    fn open(dir: &Path, options: RedbOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Backend(format!("creating data directory {}: {e}", dir.display()))
        })?;
        let path = dir.join(DB_FILE);
        let db = Database::create(&path)
            .map_err(|e| StoreError::Backend(format!("opening {}: {e}", path.display())))?;
        // Create the tables and stamp the format in one transaction, so readers can assume
        // they exist and an incompatible file is refused instead of misread.
        let wtx = db.begin_write().map_err(backend("open"))?;
        {
            wtx.open_table(KV).map_err(backend("open"))?;
            wtx.open_table(LOG).map_err(backend("open"))?;
            let mut meta = wtx.open_table(META).map_err(backend("open"))?;
            let format = meta
                .get(META_FORMAT)
                .map_err(backend("open"))?
                .map(|g| g.value());
            match format {
                None => {
                    meta.insert(META_FORMAT, codec::FORMAT)
                        .map_err(backend("open"))?;
                }
                Some(f) if f == codec::FORMAT => {}
                Some(f) => {
                    return Err(StoreError::Backend(format!(
                        "{} has store format {f}, this build reads format {}",
                        path.display(),
                        codec::FORMAT
                    )));
                }
            }
        }
        wtx.commit().map_err(backend("open"))?;
        let (commits, _) = broadcast::channel(options.watch_buffer);
        Ok(Self {
            db,
            path,
            options,
            write_lock: Mutex::new(()),
            commits,
        })
    }
}

/// Maps any redb error into [`StoreError::Backend`], naming the operation.
fn backend<E: Into<redb::Error>>(op: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError::Backend(format!("redb {op}: {}", e.into()))
}

/// Reads a `meta` counter (absent = 0, for a fresh file).
fn meta_u64(meta: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64, StoreError> {
    Ok(meta
        .get(key)
        .map_err(backend("read meta"))?
        .map_or(0, |g| g.value()))
}

#[async_trait]
impl Store for RedbStore {
    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        crate::check_key(key)?;
        let key = key.to_vec();
        self.blocking("get", move |inner| {
            let rtx = inner.db.begin_read().map_err(backend("get"))?;
            let kv = rtx.open_table(KV).map_err(backend("get"))?;
            let found = kv.get(key.as_slice()).map_err(backend("get"))?;
            found
                .map(|raw| codec::decode_entry(&key, raw.value()))
                .transpose()
        })
        .await
    }

    async fn range(&self, prefix: &[u8]) -> Result<RangeResponse, StoreError> {
        let prefix = prefix.to_vec();
        self.blocking("range", move |inner| {
            // One read transaction = one snapshot: the pairs and the revision agree.
            let rtx = inner.db.begin_read().map_err(backend("range"))?;
            let revision = meta_u64(
                &rtx.open_table(META).map_err(backend("range"))?,
                META_REVISION,
            )?;
            let kv = rtx.open_table(KV).map_err(backend("range"))?;
            let end = crate::prefix_end(&prefix);
            let iter = match &end {
                Some(end) => kv.range::<&[u8]>(prefix.as_slice()..end.as_slice()),
                None => kv.range::<&[u8]>(prefix.as_slice()..),
            }
            .map_err(backend("range"))?;
            let mut kvs = Vec::new();
            for item in iter {
                let (k, v) = item.map_err(backend("range"))?;
                kvs.push(codec::decode_entry(k.value(), v.value())?);
            }
            Ok(RangeResponse { kvs, revision })
        })
        .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        txn.validate()?;
        self.blocking("txn", move |inner| inner.apply(&txn)).await
    }

    async fn watch(
        &self,
        prefix: &[u8],
        start_revision: Revision,
    ) -> Result<WatchStream, StoreError> {
        Ok(watch::start(&self.inner, prefix.to_vec(), start_revision))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.blocking("current_revision", |inner| {
            let rtx = inner.db.begin_read().map_err(backend("current_revision"))?;
            meta_u64(
                &rtx.open_table(META).map_err(backend("current_revision"))?,
                META_REVISION,
            )
        })
        .await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.blocking("compact", move |inner| inner.compact(revision))
            .await
    }
}
