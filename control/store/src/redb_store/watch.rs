//! Watchers: catch up from the change-log, then follow the live broadcast; fall back to the
//! change-log whenever the broadcast lagged, so a slow watcher is late but never loses events.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use redb::ReadableDatabase;
use tokio::sync::broadcast::{self, error::RecvError};

use super::{Commit, Inner, LOG, META, META_COMPACTED, META_REVISION, backend, codec, meta_u64};
use crate::{Event, Revision, StoreError, WatchResponse, WatchStream};

/// Caps on one change-log read, so catching up a long way does not load it all into memory.
const CATCH_UP_REVISIONS: usize = 256;
const CATCH_UP_BYTES: usize = 8 << 20;

pub(super) fn start(inner: &Arc<Inner>, prefix: Vec<u8>, start_revision: Revision) -> WatchStream {
    let watcher = Watcher {
        prefix,
        last: start_revision,
        // Subscribe before the first change-log read: every commit is then either already in
        // the log when we read it, or arrives on this receiver afterwards. No gap either way.
        commits: inner.commits.subscribe(),
        // Weak, so an idle watcher does not keep the database file open after the store is
        // dropped (a reopen of the same directory would otherwise fail).
        store: Arc::downgrade(inner),
        pending: VecDeque::new(),
        catching_up: true,
        done: false,
    };
    WatchStream::new(futures::stream::unfold(watcher, |mut w| async move {
        let item = w.next().await?;
        Some((item, w))
    }))
}

struct Watcher {
    prefix: Vec<u8>,
    /// Every revision `<= last` has been dealt with (delivered, or had nothing for us).
    last: Revision,
    commits: broadcast::Receiver<Arc<Commit>>,
    store: Weak<Inner>,
    /// Responses read from the change-log and not yet handed out.
    pending: VecDeque<WatchResponse>,
    /// True while the change-log may hold revisions after `last` that the receiver won't bring.
    catching_up: bool,
    /// Set after an error item: the stream then ends.
    done: bool,
}

impl Watcher {
    async fn next(&mut self) -> Option<Result<WatchResponse, StoreError>> {
        if self.done {
            return None;
        }
        let item = self.next_response().await;
        self.done = item.is_err();
        Some(item)
    }

    async fn next_response(&mut self) -> Result<WatchResponse, StoreError> {
        loop {
            if let Some(response) = self.pending.pop_front() {
                return Ok(response);
            }
            if self.catching_up {
                self.read_log().await?;
                continue;
            }
            match self.commits.recv().await {
                Ok(commit) if commit.revision <= self.last => {} // already read from the log
                Ok(commit) if commit.revision == self.last + 1 => {
                    self.last = commit.revision;
                    let events: Vec<Event> = commit
                        .events
                        .iter()
                        .filter(|e| e.key().starts_with(&self.prefix))
                        .cloned()
                        .collect();
                    if !events.is_empty() {
                        return Ok(WatchResponse {
                            revision: commit.revision,
                            events,
                        });
                    }
                }
                // A hole (cannot happen while commits are published in order, but the log is
                // the source of truth either way) or a lag: re-read from the change-log.
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    tracing::debug!(
                        after = self.last,
                        "redb watcher fell behind; re-reading the change-log"
                    );
                    self.catching_up = true;
                }
                Err(RecvError::Closed) => return Err(closed()),
            }
        }
    }

    async fn read_log(&mut self) -> Result<(), StoreError> {
        let store = self.store.upgrade().ok_or_else(closed)?;
        let (prefix, last) = (self.prefix.clone(), self.last);
        let batch = tokio::task::spawn_blocking(move || read_batch(&store, &prefix, last))
            .await
            .map_err(|e| StoreError::Backend(format!("redb watch: task failed: {e}")))??;
        self.pending.extend(batch.responses);
        self.last = batch.last;
        self.catching_up = !batch.complete;
        Ok(())
    }
}

struct Batch {
    responses: Vec<WatchResponse>,
    last: Revision,
    /// The read reached the end of the log as of its snapshot.
    complete: bool,
}

/// Reads change-log entries after `last`, up to the catch-up caps.
fn read_batch(inner: &Inner, prefix: &[u8], last: Revision) -> Result<Batch, StoreError> {
    let rtx = inner.db.begin_read().map_err(backend("watch"))?;
    let meta = rtx.open_table(META).map_err(backend("watch"))?;
    let compacted = meta_u64(&meta, META_COMPACTED)?;
    let current = meta_u64(&meta, META_REVISION)?;
    if last < compacted {
        return Err(StoreError::Compacted {
            requested: last,
            oldest: compacted,
        });
    }
    let mut batch = Batch {
        responses: Vec::new(),
        last,
        complete: false,
    };
    let Some(from) = last.checked_add(1) else {
        batch.complete = true;
        return Ok(batch);
    };
    let log = rtx.open_table(LOG).map_err(backend("watch"))?;
    let (mut revisions, mut bytes) = (0, 0);
    for item in log.range(from..).map_err(backend("watch"))? {
        let (key, raw) = item.map_err(backend("watch"))?;
        let revision = key.value();
        let events = codec::decode_events(revision, raw.value(), prefix)?;
        batch.last = revision;
        if !events.is_empty() {
            batch.responses.push(WatchResponse { revision, events });
        }
        revisions += 1;
        bytes += raw.value().len();
        if revisions >= CATCH_UP_REVISIONS || bytes >= CATCH_UP_BYTES {
            return Ok(batch);
        }
    }
    // A future start revision stays where it is: events must still be after it.
    batch.last = batch.last.max(current);
    batch.complete = true;
    Ok(batch)
}

fn closed() -> StoreError {
    StoreError::Unavailable("the redb store was closed (last handle dropped)".into())
}
