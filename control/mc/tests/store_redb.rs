//! The MC store conformance suite on the embedded redb backend.

use std::sync::Arc;

use async_trait::async_trait;
use mc::store::conformance::StoreFactory;
use mc::store::{McStore, RedbOptions, RedbStore};
use tempfile::TempDir;

/// A fresh data directory per test; `open` reopens the same directory.
struct Redb {
    dir: TempDir,
}

#[async_trait]
impl StoreFactory for Redb {
    async fn open(&self) -> Arc<dyn McStore> {
        Arc::new(RedbStore::open(self.dir.path()).await.unwrap())
    }

    async fn open_with_audit_retention(&self, retention: u64) -> Arc<dyn McStore> {
        let options = RedbOptions {
            audit_retention: retention,
        };
        Arc::new(
            RedbStore::open_with(self.dir.path(), options)
                .await
                .unwrap(),
        )
    }
}

mc::conformance_tests!(|_name| async {
    Redb {
        dir: tempfile::tempdir().unwrap(),
    }
});

/// The store is one file, `mc.redb`, in the directory given.
#[tokio::test]
async fn one_file_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let s = RedbStore::open(&data).await.unwrap();
    assert_eq!(s.path(), data.join("mc.redb"));
    let files: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["mc.redb"]);
}
