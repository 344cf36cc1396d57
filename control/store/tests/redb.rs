//! The conformance suite on the embedded redb store, plus redb-only behaviour: bounded history,
//! watchers lagging behind the live fan-out or behind compaction, and refusal of a second open.

use std::sync::Arc;

use async_trait::async_trait;
use edge_store::conformance::{StoreFactory, expect_response};
use edge_store::{RedbOptions, RedbStore, Store, StoreError};
use futures::StreamExt;
use tempfile::TempDir;

/// A fresh data directory per test; `open` reopens the same directory.
struct Redb {
    dir: TempDir,
    options: RedbOptions,
}

#[async_trait]
impl StoreFactory for Redb {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(
            RedbStore::open_with(self.dir.path(), self.options.clone())
                .await
                .unwrap(),
        )
    }
}

fn redb(options: RedbOptions) -> Redb {
    Redb {
        dir: tempfile::tempdir().unwrap(),
        options,
    }
}

/// The suite with default options.
mod default_options {
    edge_store::conformance_tests!(|_name| async { Some(super::redb(Default::default())) });
}

/// The suite again with a tiny live buffer, so nearly every watch also exercises the
/// "lagged: re-read the change-log" path.
mod tiny_watch_buffer {
    edge_store::conformance_tests!(|_name| async {
        Some(super::redb(edge_store::RedbOptions {
            watch_buffer: 2,
            ..Default::default()
        }))
    });
}

#[tokio::test]
async fn history_is_bounded_and_older_starts_are_compacted() {
    let f = redb(RedbOptions {
        history: 10,
        ..Default::default()
    });
    let s = f.open().await;
    let mut revisions = Vec::new();
    for i in 0..25 {
        revisions.push(s.put(b"h/k", i.to_string().as_bytes()).await.unwrap());
    }
    let last = *revisions.last().unwrap();
    // The last 10 revisions are replayable: start at last - 10 sees last-9 ..= last.
    let mut w = s.watch(b"h/", last - 10).await.unwrap();
    assert_eq!(expect_response(&mut w).await.revision, last - 9);
    let mut old = s.watch(b"h/", last - 11).await.unwrap();
    match old.next().await {
        Some(Err(StoreError::Compacted { requested, oldest })) => {
            assert_eq!((requested, oldest), (last - 11, last - 10));
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    // The window survives a reopen.
    drop((w, s));
    let s = f.open().await;
    assert!(matches!(
        s.watch(b"h/", last - 11).await.unwrap().next().await,
        Some(Err(StoreError::Compacted { .. }))
    ));
}

#[tokio::test]
async fn lagging_watcher_overtaken_by_compaction_gets_compacted() {
    let f = redb(RedbOptions {
        history: 5,
        watch_buffer: 1,
    });
    let s = f.open().await;
    let start = s.current_revision().await.unwrap();
    let mut w = s.watch(b"", start).await.unwrap();
    for i in 0..20 {
        s.put(b"k", i.to_string().as_bytes()).await.unwrap();
    }
    // The watcher never read; its position (start) is now out of the 5-revision window.
    match w.next().await {
        Some(Err(StoreError::Compacted { requested, .. })) => assert_eq!(requested, start),
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(w.next().await.is_none());
}

#[tokio::test]
async fn second_open_of_same_directory_is_a_clear_error() {
    let f = redb(RedbOptions::default());
    let _first = f.open().await;
    let err = RedbStore::open(f.dir.path()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Backend(ref m) if m.contains("edge-store.redb")),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = RedbStore::open_with(
        dir.path(),
        RedbOptions {
            history: 0,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::InvalidRequest(_)), "{err}");
}
