//! The one behavioural contract every [`Store`] implementation must pass.
//!
//! Each `pub async fn` checks one behaviour against a fresh store from a [`StoreFactory`] and
//! panics (assert-style) on a violation. [`conformance_tests!`](crate::conformance_tests) expands
//! to one `#[tokio::test]` per function, so a backend's test file is a factory plus one macro
//! call and cannot silently skip a behaviour. Needs `tokio` (with `macros`, `rt-multi-thread`)
//! in the calling crate.
//!
//! Functions only assume that revisions grow; exact revision arithmetic ("a failed txn creates
//! no revision") is asserted only when [`StoreFactory::exclusive`] says nothing else writes to
//! the store (not so for a shared etcd server, where parallel tests advance the revision).

mod kv;
mod scale;
mod txn;
mod watch;

pub use kv::*;
pub use scale::*;
pub use txn::*;
pub use watch::*;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use crate::{Event, KeyValue, Store, StoreError, WatchResponse, WatchStream};

/// Makes stores for one test. Every `open` on the same factory must reach the same data (same
/// directory, same etcd namespace), so reopening tests durability; different factories must be
/// isolated from each other.
#[async_trait]
pub trait StoreFactory: Send + Sync {
    /// Opens, or reopens, the store under test.
    async fn open(&self) -> Arc<dyn Store>;

    /// Whether this test is the only writer of the whole store, so that the global revision
    /// moves only through this test's own writes.
    fn exclusive(&self) -> bool {
        true
    }
}

/// Expands to one `#[tokio::test]` per conformance behaviour.
///
/// `$factory` is an async fn (or closure) taking the test name (`&'static str`, handy for a
/// unique namespace) and returning `Option<impl StoreFactory>`; `None` skips the test (for a
/// backend that is not available, when that is allowed).
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            get_put_delete,
            range_prefix_isolation,
            revisions_monotonic_and_shared,
            txn_compare_absent,
            txn_compare_present,
            txn_compare_mod_revision,
            txn_compare_value,
            txn_failed_writes_nothing,
            txn_else_branch,
            txn_invalid_rejected,
            delete_prefix,
            watch_from_now,
            watch_replay_from_past_revision,
            watch_txn_events_same_revision,
            watch_compacted_start,
            watch_slow_consumer_gets_everything,
            watch_list_then_watch_no_gap,
            watch_ends_when_store_dropped,
            concurrent_conflicting_txns,
            concurrent_increments_serialize,
            large_values,
            many_keys,
            durable_across_reopen,
        );
    };
    (@each $factory:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(factory) = ($factory)(stringify!($name)).await {
                    $crate::conformance::$name(&factory).await;
                }
            }
        )+
    };
}

/// How long any single expected event or operation may take before the test fails.
pub(crate) const STEP: Duration = Duration::from_secs(10);

/// The next watch response; fails the test on error, end of stream or timeout.
pub async fn expect_response(watch: &mut WatchStream) -> WatchResponse {
    match tokio::time::timeout(STEP, watch.next()).await {
        Ok(Some(Ok(response))) => response,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended unexpectedly"),
        Err(_) => panic!("no watch response within {STEP:?}"),
    }
}

/// The next watch item, whatever it is (for error-path tests).
pub async fn next_item(watch: &mut WatchStream) -> Option<Result<WatchResponse, StoreError>> {
    tokio::time::timeout(STEP, watch.next())
        .await
        .unwrap_or_else(|_| panic!("no watch item within {STEP:?}"))
}

/// Asserts that the watch delivers nothing for a short while.
pub(crate) async fn assert_quiet(watch: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), watch.next()).await {
        panic!("expected no watch item, got {item:?}");
    }
}

/// `(key, Some(value))` for puts, `(key, None)` for deletes: compact to compare.
pub(crate) fn summary(events: &[Event]) -> Vec<(String, Option<String>)> {
    events
        .iter()
        .map(|e| match e {
            Event::Put(kv) => (text(&kv.key), Some(text(&kv.value))),
            Event::Delete { key, .. } => (text(key), None),
        })
        .collect()
}

/// `(key, value)` pairs of a listing.
pub(crate) fn pairs(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| (text(&kv.key), text(&kv.value)))
        .collect()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Some and owned, for terse expected values.
pub(crate) fn put(key: &str, value: &str) -> (String, Option<String>) {
    (key.to_owned(), Some(value.to_owned()))
}

/// A delete, for terse expected values.
pub(crate) fn del(key: &str) -> (String, Option<String>) {
    (key.to_owned(), None)
}
