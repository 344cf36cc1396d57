//! The conformance suite against a real etcd (feature `etcd`).
//!
//! The endpoint comes from `EDGEPLANE_ETCD_ENDPOINTS` (comma-separated), e.g. as printed by
//! `control/store/scripts/etcd-test-server.sh start`. Without it the tests skip with a note,
//! except under CI (`CI` set), where they fail: CI must never pass without having run them.
//! Built without the `etcd` feature, this file holds a single guard test with the same rule.

/// Under CI, refuse a build that left the etcd suite out.
#[cfg(not(feature = "etcd"))]
#[test]
fn etcd_suite_is_compiled_in_ci() {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but edge-store was built without its `etcd` feature, so the etcd conformance \
         suite did not run; run the tests with `--features edge-store/etcd`"
    );
}

#[cfg(feature = "etcd")]
mod suite {
    use std::fs::File;
    use std::sync::Arc;
    use std::time::{SystemTime, UNIX_EPOCH};

    use async_trait::async_trait;
    use edge_store::conformance::StoreFactory;
    use edge_store::{EtcdOptions, EtcdStore, Store, StoreError};

    const ENV: &str = "EDGEPLANE_ETCD_ENDPOINTS";

    /// One test's view of the shared etcd: its own key namespace, plus a lock on the server.
    struct Etcd {
        options: EtcdOptions,
        /// Compaction is server-wide: it would break other tests' replays from past revisions.
        /// So the compaction test holds this file lock exclusively and every other test holds
        /// it shared. A file lock, because nextest runs each test in its own process.
        _lock: File,
    }

    #[async_trait]
    impl StoreFactory for Etcd {
        async fn open(&self) -> Arc<dyn Store> {
            Arc::new(EtcdStore::connect(self.options.clone()).await.unwrap())
        }

        /// Other tests write to the same server concurrently: revisions jump.
        fn exclusive(&self) -> bool {
            false
        }
    }

    /// The endpoints to test against, `None` to skip (outside CI only).
    fn endpoints() -> Option<Vec<String>> {
        match std::env::var(ENV) {
            Ok(v) if !v.trim().is_empty() => {
                Some(v.split(',').map(|e| e.trim().to_owned()).collect())
            }
            _ if std::env::var_os("CI").is_some() => panic!(
                "{ENV} is not set, but CI is: the etcd conformance suite must run in CI. Start \
                 etcd and export its endpoint first: \
                 `{ENV}=$(control/store/scripts/etcd-test-server.sh start) && export {ENV}`"
            ),
            _ => {
                eprintln!(
                    "skipping: {ENV} is not set (start etcd with \
                     control/store/scripts/etcd-test-server.sh start)"
                );
                None
            }
        }
    }

    async fn factory(test: &'static str) -> Option<Etcd> {
        let endpoints = endpoints()?;
        let exclusive = test == "watch_compacted_start";
        let lock = tokio::task::spawn_blocking(move || {
            let path = std::env::temp_dir().join("edge-store-etcd-tests.lock");
            let file = File::create(&path).unwrap();
            if exclusive {
                file.lock()
            } else {
                file.lock_shared()
            }
            .unwrap();
            file
        })
        .await
        .unwrap();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let namespace = format!("/edge-store-test/{test}/{}-{nanos}/", std::process::id());
        Some(Etcd {
            options: EtcdOptions::new(endpoints, namespace),
            _lock: lock,
        })
    }

    edge_store::conformance_tests!(factory);

    /// Two namespaces on one etcd do not see each other's keys or events.
    #[tokio::test]
    async fn namespaces_are_isolated() {
        let (Some(a), Some(b)) = (factory("ns_a").await, factory("ns_b").await) else {
            return;
        };
        let (a, b) = (a.open().await, b.open().await);
        let start = b.current_revision().await.unwrap();
        let mut watch_b = b.watch(b"", start).await.unwrap();
        a.put(b"k", b"from a").await.unwrap();
        let rb = b.put(b"k", b"from b").await.unwrap();
        assert_eq!(a.get(b"k").await.unwrap().unwrap().value, b"from a");
        assert_eq!(b.range(b"").await.unwrap().kvs.len(), 1);
        let first = edge_store::conformance::expect_response(&mut watch_b).await;
        assert_eq!(first.revision, rb, "b's watch saw a's write");
        a.txn(edge_store::Txn::new().and_then([edge_store::Op::delete_prefix("")]))
            .await
            .unwrap();
        assert!(
            b.get(b"k").await.unwrap().is_some(),
            "a's delete-all reached b"
        );
    }

    /// A private etcd from the test-server script, stopped (and its data removed) on drop, so
    /// a failing test does not leak the process.
    struct PrivateEtcd {
        state: tempfile::TempDir,
        endpoint: String,
    }

    const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/etcd-test-server.sh");

    impl PrivateEtcd {
        fn start() -> Self {
            let state = tempfile::tempdir().unwrap();
            let out = std::process::Command::new(SCRIPT)
                .arg("start")
                .arg(state.path())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{SCRIPT} start failed: {stderr}");
            let endpoint = String::from_utf8(out.stdout).unwrap().trim().to_owned();
            assert!(
                endpoint.starts_with("http://127.0.0.1:"),
                "script printed {endpoint:?}"
            );
            Self { state, endpoint }
        }

        fn stop(&self) {
            let status = std::process::Command::new(SCRIPT)
                .arg("stop")
                .arg(self.state.path())
                .status()
                .unwrap();
            assert!(status.success(), "{SCRIPT} stop failed");
        }
    }

    impl Drop for PrivateEtcd {
        fn drop(&mut self) {
            let _ = std::process::Command::new(SCRIPT)
                .arg("stop")
                .arg(self.state.path())
                .status();
        }
    }

    /// When etcd itself goes away, a watch ends with `Unavailable` and requests fail with
    /// `Unavailable` within the request timeout; nothing hangs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_going_away_is_unavailable() {
        if endpoints().is_none() {
            return;
        }
        let etcd = tokio::task::spawn_blocking(PrivateEtcd::start)
            .await
            .unwrap();
        let mut options = EtcdOptions::new(vec![etcd.endpoint.clone()], "/gone/");
        options.request_timeout = std::time::Duration::from_secs(1);
        let s = EtcdStore::connect(options).await.unwrap();
        let start = s.current_revision().await.unwrap();
        let mut w = s.watch(b"", start).await.unwrap();
        let r = s.put(b"k", b"v").await.unwrap();
        assert_eq!(
            edge_store::conformance::expect_response(&mut w)
                .await
                .revision,
            r
        );

        let etcd = tokio::task::spawn_blocking(move || {
            etcd.stop();
            etcd
        })
        .await
        .unwrap();
        match edge_store::conformance::next_item(&mut w).await {
            Some(Err(StoreError::Unavailable(msg))) => assert!(!msg.is_empty()),
            other => panic!("watch after etcd stopped gave {other:?}"),
        }
        assert!(edge_store::conformance::next_item(&mut w).await.is_none());
        match s.get(b"k").await {
            Err(StoreError::Unavailable(msg)) => assert!(msg.contains("etcd get"), "{msg}"),
            other => panic!("get after etcd stopped gave {other:?}"),
        }
        drop(etcd);
    }

    /// A wrong endpoint is a clear `Unavailable`, not a hang.
    #[tokio::test]
    async fn unreachable_endpoint_is_unavailable() {
        if endpoints().is_none() {
            return;
        }
        let mut options = EtcdOptions::new(vec!["http://127.0.0.1:9".into()], "/x/");
        options.connect_timeout = std::time::Duration::from_secs(2);
        match EtcdStore::connect(options).await {
            Err(StoreError::Unavailable(msg)) => assert!(msg.contains("127.0.0.1:9"), "{msg}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}
