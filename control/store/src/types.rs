//! Plain data returned by the store: key-value pairs, range snapshots and watch streams.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};

use crate::StoreError;

/// A store revision. Starts at 0 or 1 depending on the backend (etcd starts at 1), grows by one
/// per committed change; only its order is meaningful to callers.
pub type Revision = u64;

/// One key with its value and revision bookkeeping, as returned by `get`, `range` and watch puts.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, without any backend namespace prefix.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The revision of the put that created this key (since its last delete).
    pub create_revision: Revision,
    /// The revision of the last put to this key: the token for `Compare::mod_revision`.
    pub mod_revision: Revision,
    /// How many puts the key has seen since it was created (1 after creation).
    pub version: u64,
}

impl fmt::Debug for KeyValue {
    // Values can be megabytes; show their length, not their bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("value_len", &self.value.len())
            .field("create_revision", &self.create_revision)
            .field("mod_revision", &self.mod_revision)
            .field("version", &self.version)
            .finish()
    }
}

/// A consistent snapshot of a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeResponse {
    /// The pairs, in bytewise key order.
    pub kvs: Vec<KeyValue>,
    /// The store revision the snapshot was taken at; watch from here to continue it.
    pub revision: Revision,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The key was created or overwritten; carries the new value and its revisions.
    Put(KeyValue),
    /// The key was deleted at `mod_revision`.
    Delete {
        /// The deleted key.
        key: Vec<u8>,
        /// The revision of the deleting transaction.
        mod_revision: Revision,
    },
}

impl Event {
    /// The key this event is about.
    pub fn key(&self) -> &[u8] {
        match self {
            Self::Put(kv) => &kv.key,
            Self::Delete { key, .. } => key,
        }
    }

    /// The revision of the transaction that made this change.
    pub fn mod_revision(&self) -> Revision {
        match self {
            Self::Put(kv) => kv.mod_revision,
            Self::Delete { mod_revision, .. } => *mod_revision,
        }
    }
}

/// All the changes one revision made under the watched prefix, in the order the transaction
/// listed them (a delete-by-prefix expands to its keys in key order).
///
/// Grouping by revision lets a consumer apply a transaction as a unit: it never sees half of a
/// multi-key commit and does not have to guess whether more events of a revision are coming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchResponse {
    /// The revision of the transaction; every event in `events` carries it.
    pub revision: Revision,
    /// At least one event.
    pub events: Vec<Event>,
}

/// The stream returned by [`Store::watch`](crate::Store::watch).
///
/// Yields `Ok` items in strictly increasing revision order. After an `Err` item it ends.
pub struct WatchStream {
    inner: Pin<Box<dyn Stream<Item = Result<WatchResponse, StoreError>> + Send>>,
}

impl WatchStream {
    /// Wraps a backend's stream. Backends must uphold the ordering and end-after-error rules.
    pub(crate) fn new(
        stream: impl Stream<Item = Result<WatchResponse, StoreError>> + Send + 'static,
    ) -> Self {
        Self {
            inner: Box::pin(stream),
        }
    }

    /// The next revision's changes; `None` once the stream has ended.
    pub async fn recv(&mut self) -> Option<Result<WatchResponse, StoreError>> {
        self.inner.next().await
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchResponse, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStream").finish_non_exhaustive()
    }
}
