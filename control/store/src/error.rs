use crate::Revision;

/// Everything a [`Store`](crate::Store) operation can fail with. Shared by every backend, so
/// callers match on one type whichever store they run on.
///
/// A transaction whose compares do not hold is *not* an error: it reports
/// `TxnResponse { succeeded: false, .. }`, and the caller decides whether to re-read and retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or has been closed: etcd is down or timed out, or the embedded
    /// store was dropped under a live watch. Retrying later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),

    /// A watch asked for history that compaction has discarded: the events after `requested` are
    /// gone, and the oldest revision a watch may start from is `oldest`. Re-list with
    /// [`Store::range`](crate::Store::range) and watch from the snapshot's revision.
    #[error(
        "watch history compacted: changes after revision {requested} are gone; the oldest \
         revision a watch can start from is {oldest}; re-list and watch again"
    )]
    Compacted {
        /// The revision the watcher needed to continue from.
        requested: Revision,
        /// The oldest start revision still accepted.
        oldest: Revision,
    },

    /// The request itself is malformed (empty key, a key written twice in one transaction, too
    /// many operations, compaction past the current revision). Retrying cannot help.
    #[error("invalid store request: {0}")]
    InvalidRequest(String),

    /// The backend failed in a way the caller cannot fix: an I/O error, a corrupt file, an
    /// unexpected etcd error. The message names the operation and the backend's own error.
    #[error("store backend error: {0}")]
    Backend(String),
}
