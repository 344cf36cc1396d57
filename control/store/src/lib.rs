//! Edgeplane's revisioned key-value store: the [`Store`] trait, its implementations, and the one
//! conformance suite every implementation must pass.
//!
//! # What this crate owns
//! - **Persistence** of a flat map of byte keys to byte values, with every mutation applied as one
//!   atomic [`Txn`] (compares, then puts and deletes): nothing is ever half-written.
//! - **Revisions**: one global counter, as in etcd. Every transaction that changes something
//!   advances it by exactly one, and every key records the revision that created it and the one
//!   that last modified it. A transaction that changes nothing leaves it alone.
//! - **Watches**: ordered, gap-free, exactly-once change streams for a key prefix, resumable from
//!   any past revision still in the history, with [`StoreError::Compacted`] when it is not (the
//!   caller then re-lists with [`Store::range`] and watches from that snapshot's revision).
//!
//! # What it does not own
//! The object model, key layout and referential rules ("no AppInst without its App", "no delete
//! of a referenced Cloudlet") belong to the controller. It builds them on [`Txn`] compares: read
//! the objects involved, then commit with a `mod_revision` compare on each, and retry on failure.
//!
//! # Implementations
//! - [`RedbStore`]: the default. Embedded, one redb file in a data directory, so a fresh machine
//!   needs nothing else.
//! - `EtcdStore` (cargo feature `etcd`): a real etcd v3 cluster, keys under a configurable
//!   namespace prefix. The feature is off by default because `etcd-client` needs `protoc` at
//!   build time.
//!
//! # Conformance
//! [`conformance`] holds one async function per specified behaviour; [`conformance_tests!`] turns
//! them into `#[tokio::test]`s for a store factory. `tests/redb.rs` and `tests/etcd.rs` run the
//! same list, so the two stores cannot drift apart silently. A new backend is "done" when it
//! passes the same macro.

pub mod conformance;
mod error;
#[cfg(feature = "etcd")]
mod etcd;
mod redb_store;
mod txn;
mod types;

pub use error::StoreError;
#[cfg(feature = "etcd")]
pub use etcd::{EtcdOptions, EtcdStore};
pub use redb_store::{RedbOptions, RedbStore};
pub use txn::{Compare, MAX_TXN_OPS, Op, Txn, TxnResponse};
pub use types::{Event, KeyValue, RangeResponse, Revision, WatchResponse, WatchStream};

use async_trait::async_trait;

/// A flat, revisioned byte-key/byte-value store with transactions and watches (etcd's model).
///
/// Keys are ordered bytewise. An empty key is invalid; an empty *prefix* means "every key".
/// All methods are cancel-safe in the sense that dropping a future never leaves a transaction
/// half-applied (it is either committed in full or not at all).
#[async_trait]
pub trait Store: Send + Sync {
    /// The current value of `key` with its revisions, or `None` if it does not exist.
    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError>;

    /// Every pair whose key starts with `prefix`, in key order, from one consistent snapshot, and
    /// that snapshot's revision: watching from it afterwards misses and repeats nothing.
    async fn range(&self, prefix: &[u8]) -> Result<RangeResponse, StoreError>;

    /// Applies `txn` atomically: if every compare holds, its `success` ops run, else its
    /// `failure` ops. See [`Txn`] for the rules (no key written twice, at most 128 ops).
    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError>;

    /// Changes under `prefix` with revision `> start_revision`, grouped one [`WatchResponse`] per
    /// revision, in revision order, each exactly once.
    ///
    /// Pass the revision of a [`Store::range`] to continue that snapshot, or
    /// [`Store::current_revision`] to see only future changes. If history after `start_revision`
    /// has been compacted away, the stream's first item is `Err(StoreError::Compacted)`; a watcher
    /// that falls behind compaction later gets the same error. After any `Err` item the stream
    /// ends: compaction, the store being closed or dropped ([`StoreError::Unavailable`]), or a
    /// backend failure. The caller re-lists and watches again.
    async fn watch(
        &self,
        prefix: &[u8],
        start_revision: Revision,
    ) -> Result<WatchStream, StoreError>;

    /// The store's current revision (that of the last change anywhere in the store).
    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// Discards watch history up to and including `revision`: afterwards watches must start at
    /// `revision` or later. Compacting to an already compacted revision is a no-op; compacting
    /// past the current revision is [`StoreError::InvalidRequest`]. Key values are unaffected.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;

    /// Puts one key unconditionally; returns the new revision.
    async fn put(&self, key: &[u8], value: &[u8]) -> Result<Revision, StoreError> {
        Ok(self
            .txn(Txn::new().and_then([Op::put(key, value)]))
            .await?
            .revision)
    }

    /// Deletes one key; returns the new revision, or `None` if the key did not exist.
    async fn delete(&self, key: &[u8]) -> Result<Option<Revision>, StoreError> {
        let resp = self
            .txn(
                Txn::new()
                    .when([Compare::present(key)])
                    .and_then([Op::delete(key)]),
            )
            .await?;
        Ok(resp.succeeded.then_some(resp.revision))
    }
}

/// Rejects an empty key: etcd cannot store one, so neither backend accepts it.
pub(crate) fn check_key(key: &[u8]) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidRequest("empty key".into()));
    }
    Ok(())
}

/// The exclusive upper bound of the keys that start with `prefix`, or `None` when there is none
/// (empty prefix or all `0xff` bytes): then the range runs to the end of the key space.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_last_non_ff_byte() {
        assert_eq!(prefix_end(b"foo1").as_deref(), Some(&b"foo2"[..]));
        assert_eq!(prefix_end(b"fo\xff").as_deref(), Some(&b"fp"[..]));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
