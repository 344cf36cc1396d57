//! The MC store conformance suite on PostgreSQL, plus PostgreSQL-only behaviour: the versioned
//! schema, stores in separate pools racing, lost connections, unreachable servers.
//!
//! The server comes from `EDGEPLANE_PG_URL` (`postgres://edgeplane@127.0.0.1:PORT/postgres`, a
//! superuser that may create databases), as printed by `control/mc/scripts/pg-test-server.sh
//! start`; `scripts/test.sh` starts one and exports it. Without it every test here FAILS,
//! saying so: the PostgreSQL backend is never silently left untested. Each test works in a
//! database of its own, `mc_<test>_<random>`, dropped when the test ends (pass or fail).

use std::sync::Arc;

use async_trait::async_trait;
use mc::store::conformance::{StoreFactory, org, user};
use mc::store::{Kind, McStore, McStoreError, PgOptions, PgStore};
use rand::Rng;
use tokio_postgres::{Config, NoTls};

const ENV: &str = "EDGEPLANE_PG_URL";

/// The server's URL; panics with how to get one when it is not set.
fn url() -> String {
    match std::env::var(ENV) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
        _ => panic!(
            "{ENV} is not set, so the MC store's PostgreSQL conformance suite cannot run. Run \
             scripts/test.sh (it starts a throwaway PostgreSQL), or start one yourself: \
             `export {ENV}=$(control/mc/scripts/pg-test-server.sh start)`, then \
             `control/mc/scripts/pg-test-server.sh stop` when done"
        ),
    }
}

/// A superuser client on the server's maintenance database.
async fn admin() -> tokio_postgres::Client {
    let url = url();
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {ENV}={url}: {e}"));
    tokio::spawn(connection);
    client
}

/// One test's own database, dropped (with any connections left) when this is dropped.
struct Pg {
    db: String,
    config: Config,
}

impl Pg {
    async fn new(test: &str) -> Self {
        let test: String = test.chars().take(40).collect();
        let db = format!("mc_{test}_{:016x}", rand::rng().random::<u64>());
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE \"{db}\""))
            .await
            .unwrap_or_else(|e| panic!("creating database {db}: {e}"));
        let mut config: Config = url().parse().unwrap();
        config.dbname(&db);
        Self { db, config }
    }

    async fn store(&self, options: PgOptions) -> PgStore {
        PgStore::connect_config(self.config.clone(), options)
            .await
            .unwrap()
    }

    /// A client on this test's database, to look behind the store.
    async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = self.config.connect(NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let db = self.db.clone();
        // Drop runs inside the test's runtime (or while unwinding from it): use a runtime of our
        // own on another thread.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                admin()
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("dropping test database {}: {dropped:?}", self.db);
        }
    }
}

#[async_trait]
impl StoreFactory for Pg {
    async fn open(&self) -> Arc<dyn McStore> {
        Arc::new(self.store(PgOptions::default()).await)
    }

    async fn open_with_audit_retention(&self, retention: u64) -> Arc<dyn McStore> {
        Arc::new(
            self.store(PgOptions {
                audit_retention: retention,
                ..Default::default()
            })
            .await,
        )
    }
}

mc::conformance_tests!(Pg::new);

/// The schema is created once and versioned; reconnecting keeps the data; a newer schema
/// than this build knows is refused, naming both versions.
#[tokio::test]
async fn schema_is_versioned() {
    let pg = Pg::new("schema_is_versioned").await;
    let s = pg.store(PgOptions::default()).await;
    s.create_user(&user("alice")).await.unwrap();
    drop(s);
    let s = pg.store(PgOptions::default()).await;
    assert!(s.user("alice").await.unwrap().is_some());
    drop(s);

    let client = pg.client().await;
    let rows = client
        .query("SELECT version FROM schema_version", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(0), 1);
    client
        .execute("UPDATE schema_version SET version = 99", &[])
        .await
        .unwrap();
    let Err(err) = PgStore::connect_config(pg.config.clone(), PgOptions::default()).await else {
        panic!("a newer schema was accepted");
    };
    assert!(
        matches!(&err, McStoreError::Backend(m) if m.contains("schema version 99") && m.contains("1")),
        "{err}"
    );
}

/// MCs starting together on an empty database create the schema once, without errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_connects_migrate_once() {
    let pg = Arc::new(Pg::new("concurrent_first_connects").await);
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let pg = Arc::clone(&pg);
            tokio::spawn(async move {
                PgStore::connect_config(pg.config.clone(), PgOptions::default())
                    .await
                    .map(drop)
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let n: i64 = pg
        .client()
        .await
        .query_one("SELECT count(*) FROM schema_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// Two stores with their own pools (as two MC processes) racing a user and an organisation of
/// the same name: exactly one of each pair is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_race_one_name() {
    let pg = Pg::new("two_processes_race_one_name").await;
    let a = Arc::new(pg.store(PgOptions::default()).await);
    let b = Arc::new(pg.store(PgOptions::default()).await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (a, b) = (Arc::clone(&a), Arc::clone(&b));
        tasks.push((
            tokio::spawn(async move { a.create_user(&user(&format!("Name{i}"))).await }),
            tokio::spawn(async move { b.create_org(&org(&format!("NAME{i}"))).await }),
        ));
    }
    for (u, o) in tasks {
        match (u.await.unwrap(), o.await.unwrap()) {
            (
                Ok(()),
                Err(McStoreError::NameTaken {
                    taken_by: Kind::User,
                    ..
                }),
            )
            | (
                Err(McStoreError::NameTaken {
                    taken_by: Kind::Org,
                    ..
                }),
                Ok(()),
            ) => {}
            other => panic!("user/org race ended {other:?}"),
        }
    }
    let names: i64 = pg
        .client()
        .await
        .query_one("SELECT count(*) FROM names", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(names, 20);
}

/// The server closing the store's connections (restart, idle kill) costs nothing: the next
/// operations reconnect.
#[tokio::test]
async fn reconnects_after_connections_are_killed() {
    let pg = Pg::new("reconnects_after_kill").await;
    let s = pg
        .store(PgOptions {
            pool_size: 2,
            ..Default::default()
        })
        .await;
    s.create_user(&user("alice")).await.unwrap();
    let killed: i64 = pg
        .client()
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "no store connection to kill");
    for _ in 0..4 {
        assert!(s.user("alice").await.unwrap().is_some());
    }
    s.create_user(&user("bob")).await.unwrap();
    assert_eq!(s.list_users().await.unwrap().len(), 2);
}

/// A server that is not there is `Unavailable` naming it, within the connect timeout; a URL
/// that does not parse and a pool of 0 are `InvalidArgument`.
#[tokio::test]
async fn bad_targets_are_clear_errors() {
    url(); // Same rule as every test here: fail without a server configured.
    let started = std::time::Instant::now();
    let options = PgOptions {
        connect_timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    };
    match PgStore::connect_with("postgres://edgeplane@127.0.0.1:9/postgres", options).await {
        Err(McStoreError::Unavailable(m)) => assert!(m.contains("127.0.0.1:9"), "{m}"),
        Err(e) => panic!("expected Unavailable, got {e}"),
        Ok(_) => panic!("connected to port 9"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(matches!(
        PgStore::connect("postgres://[oops").await,
        Err(McStoreError::InvalidArgument(_))
    ));
    let pool0 = PgOptions {
        pool_size: 0,
        ..Default::default()
    };
    assert!(matches!(
        PgStore::connect_with(&url(), pool0).await,
        Err(McStoreError::InvalidArgument(_))
    ));
}
