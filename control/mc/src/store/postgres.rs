//! The PostgreSQL backend, on `tokio-postgres` without TLS (127.0.0.1 or a private network).
//!
//! # Schema
//! Created on connect if missing, under a `schema_version` table (one row). Each migration runs
//! in one transaction holding an advisory lock, so MCs starting together migrate once; a
//! database whose version is newer than this build knows is refused. Names are compared in
//! [`name_key`] form, computed here and stored beside the spelling in a `*_key` column with a
//! unique index (the same rule as the redb backend, independent of the database's locale;
//! `citext` would follow Postgres' own case folding). Users, organisations and API key ids
//! share the `names` table (primary key `name_key`), which they reference, so no two of them
//! can hold one name however requests interleave. Lists are ordered `COLLATE "C"` (byte
//! order, as in redb).
//!
//! # Transactions and connections
//! Every operation is one transaction. Writes that check before they write run `SERIALIZABLE`
//! and are retried (with a short random back-off) on serialization failures, deadlocks and
//! unique violations: the retry re-reads, so the caller gets the precise error (`NameTaken`,
//! `RoleConflict`, ...) rather than a constraint name. User updates run `READ COMMITTED` with
//! the row locked (`FOR UPDATE`), so concurrent failed logins all count without retries. Audit
//! appends are an insert and a retention delete in one `READ COMMITTED` transaction.
//!
//! Connections: a small fixed pool (`PgOptions::pool_size`, default 4) of `Client`s, each
//! behind a `tokio::sync::Mutex` (a transaction needs `&mut Client`). An operation takes a free
//! one, or waits for one. A connection found closed is replaced on next use, and an operation
//! whose connection failed before `COMMIT` was sent is retried on a new one; if it fails during
//! `COMMIT`, the outcome is unknown and the error ([`McStoreError::Unavailable`]) says so.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, IsolationLevel, NoTls, Row, Transaction};

use super::{
    AuditQuery, DEFAULT_AUDIT_RETENTION, FailedLogins, Kind, McStore, McStoreError, UserUpdate,
    check_api_key, check_audit, check_controller, check_grant, check_org, check_query,
    check_retention, check_update, check_user, email_key, lookup_ok,
};
use crate::model::{ApiKey, AuditEntry, Controller, Grant, Org, OrgType, User, name_key};

/// The schema this build creates and reads.
const SCHEMA_VERSION: i32 = 1;

/// Migrations: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE names (
    name_key text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('user', 'org', 'apikey')),
    name text NOT NULL
);
CREATE TABLE users (
    name_key text PRIMARY KEY REFERENCES names (name_key),
    name text NOT NULL,
    email text NOT NULL,
    email_key text NOT NULL UNIQUE,
    passhash text NOT NULL,
    locked boolean NOT NULL,
    failed_logins bigint NOT NULL,
    last_failed_login bigint NOT NULL,
    created_at bigint NOT NULL
);
CREATE TABLE orgs (
    name_key text PRIMARY KEY REFERENCES names (name_key),
    name text NOT NULL,
    org_type text NOT NULL,
    delete_in_progress boolean NOT NULL,
    created_at bigint NOT NULL
);
CREATE TABLE api_keys (
    id_key text PRIMARY KEY REFERENCES names (name_key),
    id text NOT NULL,
    org_key text NOT NULL REFERENCES orgs (name_key),
    org text NOT NULL,
    username_key text NOT NULL REFERENCES users (name_key),
    username text NOT NULL,
    description text NOT NULL,
    secret_hash text NOT NULL,
    permissions text NOT NULL,
    created_at bigint NOT NULL
);
CREATE INDEX api_keys_by_user ON api_keys (username_key, id_key);
CREATE INDEX api_keys_by_org ON api_keys (org_key);
-- org_key '' holds the admin roles, so it cannot reference orgs; the store checks it.
CREATE TABLE grants (
    subject_key text NOT NULL REFERENCES names (name_key),
    org_key text NOT NULL,
    subject text NOT NULL,
    org text NOT NULL,
    role text NOT NULL,
    PRIMARY KEY (subject_key, org_key)
);
CREATE INDEX grants_by_org ON grants (org_key, subject_key);
CREATE TABLE audit (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time_ms bigint NOT NULL,
    username text NOT NULL,
    username_key text NOT NULL,
    orgs text[] NOT NULL,
    org_keys text[] NOT NULL,
    operation text NOT NULL,
    request text NOT NULL,
    status integer NOT NULL,
    error text NOT NULL,
    remote text NOT NULL
);
CREATE INDEX audit_by_user ON audit (username_key, seq);
CREATE INDEX audit_by_org ON audit USING gin (org_keys);
CREATE TABLE controllers (
    region text PRIMARY KEY,
    address text NOT NULL UNIQUE,
    notify_addr text NOT NULL
);
"#];

/// The advisory lock key migrations hold ("mcstore").
const MIGRATION_LOCK: i64 = 0x006d_6373_746f_7265;

/// Attempts per operation (serialization failures, dropped connections).
const MAX_ATTEMPTS: u32 = 30;

/// Options of [`PgStore`].
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Connections kept (at least 1).
    pub pool_size: usize,
    /// Audit entries kept, by `seq`.
    pub audit_retention: u64,
    /// For each connection attempt, unless the URL sets `connect_timeout`.
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 4,
            audit_retention: DEFAULT_AUDIT_RETENTION,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL [`McStore`]. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// host:port/dbname, for messages.
    target: String,
    slots: Vec<Mutex<Option<Client>>>,
    next: AtomicUsize,
    options: PgOptions,
}

type Res<T> = Result<T, McStoreError>;

/// An error inside a transaction body: the database's (maybe retried) or the store's verdict.
enum TxError {
    Pg(tokio_postgres::Error),
    Store(McStoreError),
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> Self {
        TxError::Pg(e)
    }
}

impl From<McStoreError> for TxError {
    fn from(e: McStoreError) -> Self {
        TxError::Store(e)
    }
}

type TxRes<T> = Result<T, TxError>;

/// Runs `$body` (a block using `$tx: &Transaction`, `?` on database errors, `return
/// Err(McStoreError::...into())` for verdicts) in one transaction at isolation `$iso`, retrying
/// as the module doc says, and evaluates to `Res<T>`.
macro_rules! transaction {
    ($store:expr, $op:expr, $iso:expr, |$tx:ident| $body:block) => {{
        let inner: &Inner = &$store.inner;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut conn = inner.conn().await?;
            let mut committing = false;
            let result: TxRes<_> = async {
                let $tx = conn
                    .build_transaction()
                    .isolation_level($iso)
                    .start()
                    .await?;
                let value = $body;
                committing = true;
                $tx.commit().await?;
                Ok(value)
            }
            .await;
            match result {
                Ok(value) => break Ok(value),
                Err(TxError::Store(e)) => break Err(e),
                Err(TxError::Pg(e)) => {
                    let lost = conn.is_closed() || connection_lost(&e);
                    drop(conn);
                    if attempt < MAX_ATTEMPTS && (retryable(&e) || (lost && !committing)) {
                        backoff(attempt).await;
                        continue;
                    }
                    break Err(pg_error(&inner.target, $op, &e, lost, committing));
                }
            }
        }
    }};
}

/// Serialization failure, deadlock, or a unique violation a re-read will explain.
fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

/// The connection is gone (closed, or the server is shutting it down).
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || matches!(
            e.code(),
            Some(c) if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
        )
}

async fn backoff(attempt: u32) {
    let max = 2 + 3 * u64::from(attempt.min(10));
    let ms = rand::rng().random_range(1..=max);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            msg
        }
    }
}

fn pg_error(
    target: &str,
    op: &str,
    e: &tokio_postgres::Error,
    lost: bool,
    committing: bool,
) -> McStoreError {
    let msg = format!("postgres {target} {op}: {}", describe(e));
    if lost && committing {
        McStoreError::Unavailable(format!(
            "{msg} (connection lost during COMMIT: whether it applied is unknown)"
        ))
    } else if lost {
        McStoreError::Unavailable(msg)
    } else {
        McStoreError::Backend(msg)
    }
}

fn decode_err(op: &str, what: &str) -> TxError {
    TxError::Store(McStoreError::Backend(format!(
        "postgres {op}: undecodable {what} in the database"
    )))
}

impl PgStore {
    /// Connects to `url` (`postgres://user@127.0.0.1:5432/db`) and creates or checks the schema.
    pub async fn connect(url: &str) -> Res<Self> {
        Self::connect_with(url, PgOptions::default()).await
    }

    pub async fn connect_with(url: &str, options: PgOptions) -> Res<Self> {
        let config: Config = url.parse().map_err(|e| {
            McStoreError::InvalidArgument(format!("postgres URL {url:?}: {}", describe(&e)))
        })?;
        Self::connect_config(config, options).await
    }

    /// As [`PgStore::connect_with`], from a parsed configuration.
    pub async fn connect_config(mut config: Config, options: PgOptions) -> Res<Self> {
        check_retention(options.audit_retention)?;
        if options.pool_size == 0 {
            return Err(McStoreError::InvalidArgument(
                "postgres pool_size must be at least 1".into(),
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        let target = target(&config);
        let inner = Inner {
            config,
            target,
            slots: (0..options.pool_size).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            options,
        };
        let store = Self {
            inner: Arc::new(inner),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Creates the schema, or brings it to [`SCHEMA_VERSION`].
    async fn migrate(&self) -> Res<()> {
        transaction!(
            self,
            "schema migration",
            IsolationLevel::ReadCommitted,
            |tx| {
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                    .await?;
                tx.batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)",
                )
                .await?;
                let version: Option<i32> = tx
                    .query_opt("SELECT version FROM schema_version", &[])
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?;
                let current = version.unwrap_or(0);
                if current > SCHEMA_VERSION {
                    return Err(McStoreError::Backend(format!(
                        "postgres {}: schema version {current} is newer than this build's \
                     {SCHEMA_VERSION}",
                        self.inner.target
                    ))
                    .into());
                }
                for step in &MIGRATIONS[usize::try_from(current).unwrap_or(0)..] {
                    tx.batch_execute(step).await?;
                }
                if version.is_none() {
                    tx.execute(
                        "INSERT INTO schema_version (version) VALUES ($1)",
                        &[&SCHEMA_VERSION],
                    )
                    .await?;
                } else if current < SCHEMA_VERSION {
                    tx.execute("UPDATE schema_version SET version = $1", &[&SCHEMA_VERSION])
                        .await?;
                }
            }
        )
    }
}

/// `host:port/dbname` of a configuration, for messages.
fn target(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

impl Inner {
    /// A connected client of the pool: a free one, else the next in turn once it is free.
    async fn conn(&self) -> Res<MappedMutexGuard<'_, Client>> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let free = (0..n).find_map(|i| self.slots[(start + i) % n].try_lock().ok());
        let mut slot = match free {
            Some(slot) => slot,
            None => self.slots[start].lock().await,
        };
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = Some(self.connect().await?);
        }
        MutexGuard::try_map(slot, Option::as_mut)
            .map_err(|_| McStoreError::Backend(format!("postgres {}: no connection", self.target)))
    }

    async fn connect(&self) -> Res<Client> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(|e| {
            McStoreError::Unavailable(format!(
                "postgres {}: connecting: {}",
                self.target,
                describe(&e)
            ))
        })?;
        let target = self.target.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("postgres {target}: connection ended: {}", describe(&e));
            }
        });
        Ok(client)
    }
}

// ---- row decoding ----

fn user_row(op: &str, r: &Row) -> TxRes<User> {
    Ok(User {
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        passhash: r.try_get("passhash")?,
        locked: r.try_get("locked")?,
        failed_logins: u32::try_from(r.try_get::<_, i64>("failed_logins")?)
            .map_err(|_| decode_err(op, "failed_logins"))?,
        last_failed_login: r.try_get("last_failed_login")?,
        created_at: r.try_get("created_at")?,
    })
}

const USER_COLS: &str =
    "name, email, passhash, locked, failed_logins, last_failed_login, created_at";

fn org_type_str(t: OrgType) -> &'static str {
    match t {
        OrgType::Developer => "developer",
        OrgType::Operator => "operator",
    }
}

fn org_row(op: &str, r: &Row) -> TxRes<Org> {
    let org_type = match r.try_get::<_, &str>("org_type")? {
        "developer" => OrgType::Developer,
        "operator" => OrgType::Operator,
        _ => return Err(decode_err(op, "org_type")),
    };
    Ok(Org {
        name: r.try_get("name")?,
        org_type,
        delete_in_progress: r.try_get("delete_in_progress")?,
        created_at: r.try_get("created_at")?,
    })
}

const ORG_COLS: &str = "name, org_type, delete_in_progress, created_at";

fn grant_row(r: &Row) -> TxRes<Grant> {
    Ok(Grant {
        subject: r.try_get("subject")?,
        org: r.try_get("org")?,
        role: r.try_get("role")?,
    })
}

fn key_row(op: &str, r: &Row) -> TxRes<ApiKey> {
    let permissions: Vec<(String, String)> = serde_json::from_str(r.try_get("permissions")?)
        .map_err(|_| decode_err(op, "permissions"))?;
    Ok(ApiKey {
        id: r.try_get("id")?,
        org: r.try_get("org")?,
        username: r.try_get("username")?,
        description: r.try_get("description")?,
        secret_hash: r.try_get("secret_hash")?,
        permissions,
        created_at: r.try_get("created_at")?,
    })
}

const KEY_COLS: &str = "id, org, username, description, secret_hash, permissions, created_at";

fn audit_row(op: &str, r: &Row) -> TxRes<AuditEntry> {
    Ok(AuditEntry {
        seq: u64::try_from(r.try_get::<_, i64>("seq")?).map_err(|_| decode_err(op, "seq"))?,
        time_ms: r.try_get("time_ms")?,
        username: r.try_get("username")?,
        orgs: r.try_get("orgs")?,
        operation: r.try_get("operation")?,
        request: r.try_get("request")?,
        status: u16::try_from(r.try_get::<_, i32>("status")?)
            .map_err(|_| decode_err(op, "status"))?,
        error: r.try_get("error")?,
        remote: r.try_get("remote")?,
    })
}

fn controller_row(r: &Row) -> TxRes<Controller> {
    Ok(Controller {
        region: r.try_get("region")?,
        address: r.try_get("address")?,
        notify_addr: r.try_get("notify_addr")?,
    })
}

// ---- shared transaction steps ----

/// Fails with `AlreadyExists` / `NameTaken` if a user, organisation or API key holds `name`.
async fn check_name_free(tx: &Transaction<'_>, kind: Kind, name: &str) -> TxRes<()> {
    let Some(row) = tx
        .query_opt(
            "SELECT kind, name FROM names WHERE name_key = $1",
            &[&name_key(name)],
        )
        .await?
    else {
        return Ok(());
    };
    let taken_by = match row.try_get::<_, &str>("kind")? {
        "user" => Kind::User,
        "org" => Kind::Org,
        _ => Kind::ApiKey,
    };
    Err(if taken_by == kind {
        McStoreError::AlreadyExists {
            kind,
            name: name.to_owned(),
        }
    } else {
        McStoreError::NameTaken {
            name: name.to_owned(),
            taken_by,
            existing: row.try_get("name")?,
        }
    }
    .into())
}

/// Deletes the API keys matching `filter` (`username_key = $1` or `org_key = $1`), their
/// grants and names; returns how many.
async fn delete_keys_where(tx: &Transaction<'_>, filter: &str, key: &str) -> TxRes<u64> {
    tx.execute(
        &format!(
            "DELETE FROM grants WHERE subject_key IN (SELECT id_key FROM api_keys WHERE {filter})"
        ),
        &[&key],
    )
    .await?;
    let ids: Vec<String> = tx
        .query(
            &format!("DELETE FROM api_keys WHERE {filter} RETURNING id_key"),
            &[&key],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    tx.execute("DELETE FROM names WHERE name_key = ANY($1)", &[&ids])
        .await?;
    Ok(ids.len() as u64)
}

fn not_found(kind: Kind, name: &str) -> McStoreError {
    McStoreError::NotFound {
        kind,
        name: name.to_owned(),
    }
}

const SER: IsolationLevel = IsolationLevel::Serializable;
/// Reads: one snapshot; a read-only transaction never fails to serialize at this level.
const SNAP: IsolationLevel = IsolationLevel::RepeatableRead;

#[async_trait]
impl McStore for PgStore {
    async fn create_user(&self, user: &User) -> Res<()> {
        check_user(user)?;
        let (key, ekey) = (name_key(&user.name), email_key(&user.email));
        transaction!(self, "create_user", SER, |tx| {
            check_name_free(&tx, Kind::User, &user.name).await?;
            if tx
                .query_opt("SELECT 1 FROM users WHERE email_key = $1", &[&ekey])
                .await?
                .is_some()
            {
                return Err(McStoreError::AlreadyExists {
                    kind: Kind::Email,
                    name: user.email.clone(),
                }
                .into());
            }
            tx.execute(
                "INSERT INTO names (name_key, kind, name) VALUES ($1, 'user', $2)",
                &[&key, &user.name],
            )
            .await?;
            tx.execute(
                "INSERT INTO users (name_key, name, email, email_key, passhash, locked, \
                 failed_logins, last_failed_login, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &key,
                    &user.name,
                    &user.email,
                    &ekey,
                    &user.passhash,
                    &user.locked,
                    &i64::from(user.failed_logins),
                    &user.last_failed_login,
                    &user.created_at,
                ],
            )
            .await?;
        })
    }

    async fn user(&self, name: &str) -> Res<Option<User>> {
        if !lookup_ok(name) {
            return Ok(None);
        }
        let key = name_key(name);
        transaction!(self, "user", SNAP, |tx| {
            let row = tx
                .query_opt(
                    &format!("SELECT {USER_COLS} FROM users WHERE name_key = $1"),
                    &[&key],
                )
                .await?;
            row.map(|r| user_row("user", &r)).transpose()?
        })
    }

    async fn user_by_email(&self, email: &str) -> Res<Option<User>> {
        if !lookup_ok(email) {
            return Ok(None);
        }
        let ekey = email_key(email);
        transaction!(self, "user_by_email", SNAP, |tx| {
            let row = tx
                .query_opt(
                    &format!("SELECT {USER_COLS} FROM users WHERE email_key = $1"),
                    &[&ekey],
                )
                .await?;
            row.map(|r| user_row("user_by_email", &r)).transpose()?
        })
    }

    async fn update_user(&self, name: &str, update: &UserUpdate) -> Res<User> {
        check_update(update)?;
        if !lookup_ok(name) {
            return Err(not_found(Kind::User, name));
        }
        let key = name_key(name);
        transaction!(self, "update_user", IsolationLevel::ReadCommitted, |tx| {
            let Some(row) = tx
                .query_opt(
                    &format!("SELECT {USER_COLS} FROM users WHERE name_key = $1 FOR UPDATE"),
                    &[&key],
                )
                .await?
            else {
                return Err(not_found(Kind::User, name).into());
            };
            let mut user = user_row("update_user", &row)?;
            if let Some(email) = &update.email {
                let new = email_key(email);
                if new != email_key(&user.email)
                    && tx
                        .query_opt("SELECT 1 FROM users WHERE email_key = $1", &[&new])
                        .await?
                        .is_some()
                {
                    return Err(McStoreError::AlreadyExists {
                        kind: Kind::Email,
                        name: email.clone(),
                    }
                    .into());
                }
                user.email.clone_from(email);
            }
            if let Some(passhash) = &update.passhash {
                user.passhash.clone_from(passhash);
            }
            if let Some(locked) = update.locked {
                user.locked = locked;
            }
            match update.failed_logins {
                None => {}
                Some(FailedLogins::Reset) => user.failed_logins = 0,
                Some(FailedLogins::Increment { at }) => {
                    user.failed_logins = user.failed_logins.saturating_add(1);
                    user.last_failed_login = at;
                }
            }
            tx.execute(
                "UPDATE users SET email = $2, email_key = $3, passhash = $4, locked = $5, \
                 failed_logins = $6, last_failed_login = $7 WHERE name_key = $1",
                &[
                    &key,
                    &user.email,
                    &email_key(&user.email),
                    &user.passhash,
                    &user.locked,
                    &i64::from(user.failed_logins),
                    &user.last_failed_login,
                ],
            )
            .await?;
            user
        })
    }

    async fn delete_user(&self, name: &str) -> Res<bool> {
        if !lookup_ok(name) {
            return Ok(false);
        }
        let key = name_key(name);
        transaction!(self, "delete_user", SER, |tx| {
            if tx
                .query_opt("SELECT 1 FROM users WHERE name_key = $1", &[&key])
                .await?
                .is_none()
            {
                return Ok(false);
            }
            delete_keys_where(&tx, "username_key = $1", &key).await?;
            tx.execute("DELETE FROM grants WHERE subject_key = $1", &[&key])
                .await?;
            tx.execute("DELETE FROM users WHERE name_key = $1", &[&key])
                .await?;
            tx.execute("DELETE FROM names WHERE name_key = $1", &[&key])
                .await?;
            true
        })
    }

    async fn list_users(&self) -> Res<Vec<User>> {
        transaction!(self, "list_users", SNAP, |tx| {
            tx.query(
                &format!("SELECT {USER_COLS} FROM users ORDER BY name_key COLLATE \"C\""),
                &[],
            )
            .await?
            .iter()
            .map(|r| user_row("list_users", r))
            .collect::<TxRes<Vec<_>>>()?
        })
    }

    async fn create_org(&self, org: &Org) -> Res<()> {
        check_org(org)?;
        let key = name_key(&org.name);
        transaction!(self, "create_org", SER, |tx| {
            check_name_free(&tx, Kind::Org, &org.name).await?;
            tx.execute(
                "INSERT INTO names (name_key, kind, name) VALUES ($1, 'org', $2)",
                &[&key, &org.name],
            )
            .await?;
            tx.execute(
                "INSERT INTO orgs (name_key, name, org_type, delete_in_progress, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &key,
                    &org.name,
                    &org_type_str(org.org_type),
                    &org.delete_in_progress,
                    &org.created_at,
                ],
            )
            .await?;
        })
    }

    async fn org(&self, name: &str) -> Res<Option<Org>> {
        if !lookup_ok(name) {
            return Ok(None);
        }
        let key = name_key(name);
        transaction!(self, "org", SNAP, |tx| {
            let row = tx
                .query_opt(
                    &format!("SELECT {ORG_COLS} FROM orgs WHERE name_key = $1"),
                    &[&key],
                )
                .await?;
            row.map(|r| org_row("org", &r)).transpose()?
        })
    }

    async fn list_orgs(&self) -> Res<Vec<Org>> {
        transaction!(self, "list_orgs", SNAP, |tx| {
            tx.query(
                &format!("SELECT {ORG_COLS} FROM orgs ORDER BY name_key COLLATE \"C\""),
                &[],
            )
            .await?
            .iter()
            .map(|r| org_row("list_orgs", r))
            .collect::<TxRes<Vec<_>>>()?
        })
    }

    async fn set_org_delete_in_progress(&self, name: &str, on: bool) -> Res<Org> {
        if !lookup_ok(name) {
            return Err(not_found(Kind::Org, name));
        }
        let key = name_key(name);
        transaction!(self, "set_org_delete_in_progress", SER, |tx| {
            let Some(row) = tx
                .query_opt(
                    &format!(
                        "UPDATE orgs SET delete_in_progress = $2 WHERE name_key = $1 \
                         RETURNING {ORG_COLS}"
                    ),
                    &[&key, &on],
                )
                .await?
            else {
                return Err(not_found(Kind::Org, name).into());
            };
            org_row("set_org_delete_in_progress", &row)?
        })
    }

    async fn delete_org(&self, name: &str) -> Res<bool> {
        if !lookup_ok(name) {
            return Ok(false);
        }
        let key = name_key(name);
        transaction!(self, "delete_org", SER, |tx| {
            if tx
                .query_opt("SELECT 1 FROM orgs WHERE name_key = $1", &[&key])
                .await?
                .is_none()
            {
                return Ok(false);
            }
            delete_keys_where(&tx, "org_key = $1", &key).await?;
            tx.execute("DELETE FROM grants WHERE org_key = $1", &[&key])
                .await?;
            tx.execute("DELETE FROM orgs WHERE name_key = $1", &[&key])
                .await?;
            tx.execute("DELETE FROM names WHERE name_key = $1", &[&key])
                .await?;
            true
        })
    }

    async fn add_grant(&self, grant: &Grant) -> Res<bool> {
        check_grant(grant)?;
        let (skey, okey) = (name_key(&grant.subject), name_key(&grant.org));
        transaction!(self, "add_grant", SER, |tx| {
            if tx
                .query_opt(
                    "SELECT 1 FROM names WHERE name_key = $1 AND kind IN ('user', 'apikey')",
                    &[&skey],
                )
                .await?
                .is_none()
            {
                return Err(not_found(Kind::User, &grant.subject).into());
            }
            if !okey.is_empty()
                && tx
                    .query_opt("SELECT 1 FROM orgs WHERE name_key = $1", &[&okey])
                    .await?
                    .is_none()
            {
                return Err(not_found(Kind::Org, &grant.org).into());
            }
            if let Some(row) = tx
                .query_opt(
                    "SELECT subject, org, role FROM grants WHERE subject_key = $1 AND org_key = $2",
                    &[&skey, &okey],
                )
                .await?
            {
                let existing = grant_row(&row)?;
                if existing.role == grant.role {
                    return Ok(false);
                }
                return Err(McStoreError::RoleConflict {
                    subject: existing.subject,
                    org: existing.org,
                    existing: existing.role,
                }
                .into());
            }
            tx.execute(
                "INSERT INTO grants (subject_key, org_key, subject, org, role) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[&skey, &okey, &grant.subject, &grant.org, &grant.role],
            )
            .await?;
            true
        })
    }

    async fn remove_grant(&self, grant: &Grant) -> Res<bool> {
        if !lookup_ok(&grant.subject) || grant.org.contains('\0') || grant.role.contains('\0') {
            return Ok(false);
        }
        let (skey, okey) = (name_key(&grant.subject), name_key(&grant.org));
        transaction!(self, "remove_grant", SER, |tx| {
            tx.execute(
                "DELETE FROM grants WHERE subject_key = $1 AND org_key = $2 AND role = $3",
                &[&skey, &okey, &grant.role],
            )
            .await?
                > 0
        })
    }

    async fn grants(&self) -> Res<Vec<Grant>> {
        transaction!(self, "grants", SNAP, |tx| {
            tx.query(
                "SELECT subject, org, role FROM grants \
                 ORDER BY subject_key COLLATE \"C\", org_key COLLATE \"C\"",
                &[],
            )
            .await?
            .iter()
            .map(grant_row)
            .collect::<TxRes<Vec<_>>>()?
        })
    }

    async fn grants_of_subject(&self, subject: &str) -> Res<Vec<Grant>> {
        if !lookup_ok(subject) {
            return Ok(Vec::new());
        }
        let skey = name_key(subject);
        transaction!(self, "grants_of_subject", SNAP, |tx| {
            tx.query(
                "SELECT subject, org, role FROM grants WHERE subject_key = $1 \
                 ORDER BY org_key COLLATE \"C\"",
                &[&skey],
            )
            .await?
            .iter()
            .map(grant_row)
            .collect::<TxRes<Vec<_>>>()?
        })
    }

    async fn grants_in_org(&self, org: &str) -> Res<Vec<Grant>> {
        if org.contains('\0') {
            return Ok(Vec::new());
        }
        let okey = name_key(org);
        transaction!(self, "grants_in_org", SNAP, |tx| {
            tx.query(
                "SELECT subject, org, role FROM grants WHERE org_key = $1 \
                 ORDER BY subject_key COLLATE \"C\"",
                &[&okey],
            )
            .await?
            .iter()
            .map(grant_row)
            .collect::<TxRes<Vec<_>>>()?
        })
    }

    async fn create_api_key(&self, key: &ApiKey) -> Res<()> {
        check_api_key(key)?;
        let (ikey, ukey, okey) = (
            name_key(&key.id),
            name_key(&key.username),
            name_key(&key.org),
        );
        let permissions = serde_json::to_string(&key.permissions)
            .map_err(|e| McStoreError::Backend(format!("encoding permissions: {e}")))?;
        transaction!(self, "create_api_key", SER, |tx| {
            check_name_free(&tx, Kind::ApiKey, &key.id).await?;
            if tx
                .query_opt("SELECT 1 FROM users WHERE name_key = $1", &[&ukey])
                .await?
                .is_none()
            {
                return Err(not_found(Kind::User, &key.username).into());
            }
            if tx
                .query_opt("SELECT 1 FROM orgs WHERE name_key = $1", &[&okey])
                .await?
                .is_none()
            {
                return Err(not_found(Kind::Org, &key.org).into());
            }
            tx.execute(
                "INSERT INTO names (name_key, kind, name) VALUES ($1, 'apikey', $2)",
                &[&ikey, &key.id],
            )
            .await?;
            tx.execute(
                "INSERT INTO api_keys (id_key, id, org_key, org, username_key, username, \
                 description, secret_hash, permissions, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &ikey,
                    &key.id,
                    &okey,
                    &key.org,
                    &ukey,
                    &key.username,
                    &key.description,
                    &key.secret_hash,
                    &permissions,
                    &key.created_at,
                ],
            )
            .await?;
        })
    }

    async fn api_key(&self, id: &str) -> Res<Option<ApiKey>> {
        if !lookup_ok(id) {
            return Ok(None);
        }
        let ikey = name_key(id);
        transaction!(self, "api_key", SNAP, |tx| {
            let row = tx
                .query_opt(
                    &format!("SELECT {KEY_COLS} FROM api_keys WHERE id_key = $1"),
                    &[&ikey],
                )
                .await?;
            row.map(|r| key_row("api_key", &r)).transpose()?
        })
    }

    async fn api_keys_of_user(&self, username: &str) -> Res<Vec<ApiKey>> {
        if !lookup_ok(username) {
            return Ok(Vec::new());
        }
        let ukey = name_key(username);
        transaction!(self, "api_keys_of_user", SNAP, |tx| {
            tx.query(
                &format!(
                    "SELECT {KEY_COLS} FROM api_keys WHERE username_key = $1 \
                     ORDER BY id_key COLLATE \"C\""
                ),
                &[&ukey],
            )
            .await?
            .iter()
            .map(|r| key_row("api_keys_of_user", r))
            .collect::<TxRes<Vec<_>>>()?
        })
    }

    async fn delete_api_key(&self, id: &str) -> Res<bool> {
        if !lookup_ok(id) {
            return Ok(false);
        }
        let ikey = name_key(id);
        transaction!(self, "delete_api_key", SER, |tx| {
            delete_keys_where(&tx, "id_key = $1", &ikey).await? > 0
        })
    }

    async fn count_api_keys(&self, username: &str) -> Res<usize> {
        if !lookup_ok(username) {
            return Ok(0);
        }
        let ukey = name_key(username);
        transaction!(self, "count_api_keys", SNAP, |tx| {
            let n: i64 = tx
                .query_one(
                    "SELECT count(*) FROM api_keys WHERE username_key = $1",
                    &[&ukey],
                )
                .await?
                .try_get(0)?;
            usize::try_from(n).map_err(|_| decode_err("count_api_keys", "count"))?
        })
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Res<u64> {
        check_audit(entry)?;
        let org_keys: Vec<String> = entry.orgs.iter().map(|o| name_key(o)).collect();
        let user_key = name_key(&entry.username);
        // check_retention bounds it to i64.
        let retention = i64::try_from(self.inner.options.audit_retention).unwrap_or(i64::MAX);
        transaction!(self, "append_audit", IsolationLevel::ReadCommitted, |tx| {
            let seq: i64 = tx
                .query_one(
                    "INSERT INTO audit (time_ms, username, username_key, orgs, org_keys, \
                     operation, request, status, error, remote) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq",
                    &[
                        &entry.time_ms,
                        &entry.username,
                        &user_key,
                        &entry.orgs,
                        &org_keys,
                        &entry.operation,
                        &entry.request,
                        &i32::from(entry.status),
                        &entry.error,
                        &entry.remote,
                    ],
                )
                .await?
                .try_get(0)?;
            if seq > retention {
                tx.execute("DELETE FROM audit WHERE seq <= $1", &[&(seq - retention)])
                    .await?;
            }
            u64::try_from(seq).map_err(|_| decode_err("append_audit", "seq"))?
        })
    }

    async fn query_audit(&self, query: &AuditQuery) -> Res<Vec<AuditEntry>> {
        check_query(query)?;
        let org = query.org.as_deref().map(name_key);
        let user = query.user.as_deref().map(name_key);
        if [&org, &user]
            .into_iter()
            .flatten()
            .any(|s| s.contains('\0'))
        {
            return Ok(Vec::new());
        }
        // check_query bounds both to i64.
        let before = query.before_seq.map(|s| s as i64);
        let limit = query.limit as i64;
        transaction!(self, "query_audit", SNAP, |tx| {
            tx.query(
                "SELECT seq, time_ms, username, orgs, operation, request, status, error, remote \
                 FROM audit \
                 WHERE ($1::text IS NULL OR org_keys @> ARRAY[$1::text]) \
                   AND ($2::text IS NULL OR username_key = $2) \
                   AND ($3::bigint IS NULL OR seq < $3) \
                 ORDER BY seq DESC LIMIT $4",
                &[&org, &user, &before, &limit],
            )
            .await?
            .iter()
            .map(|r| audit_row("query_audit", r))
            .collect::<TxRes<Vec<_>>>()?
        })
    }

    async fn create_controller(&self, controller: &Controller) -> Res<()> {
        check_controller(controller)?;
        let c = controller;
        transaction!(self, "create_controller", SER, |tx| {
            if tx
                .query_opt("SELECT 1 FROM controllers WHERE region = $1", &[&c.region])
                .await?
                .is_some()
            {
                return Err(McStoreError::AlreadyExists {
                    kind: Kind::Controller,
                    name: c.region.clone(),
                }
                .into());
            }
            if tx
                .query_opt(
                    "SELECT 1 FROM controllers WHERE address = $1",
                    &[&c.address],
                )
                .await?
                .is_some()
            {
                return Err(McStoreError::AlreadyExists {
                    kind: Kind::ControllerAddress,
                    name: c.address.clone(),
                }
                .into());
            }
            tx.execute(
                "INSERT INTO controllers (region, address, notify_addr) VALUES ($1, $2, $3)",
                &[&c.region, &c.address, &c.notify_addr],
            )
            .await?;
        })
    }

    async fn controller(&self, region: &str) -> Res<Option<Controller>> {
        if !lookup_ok(region) {
            return Ok(None);
        }
        transaction!(self, "controller", SNAP, |tx| {
            let row = tx
                .query_opt(
                    "SELECT region, address, notify_addr FROM controllers WHERE region = $1",
                    &[&region],
                )
                .await?;
            row.as_ref().map(controller_row).transpose()?
        })
    }

    async fn list_controllers(&self) -> Res<Vec<Controller>> {
        transaction!(self, "list_controllers", SNAP, |tx| {
            tx.query(
                "SELECT region, address, notify_addr FROM controllers \
                 ORDER BY region COLLATE \"C\"",
                &[],
            )
            .await?
            .iter()
            .map(controller_row)
            .collect::<TxRes<Vec<_>>>()?
        })
    }

    async fn delete_controller(&self, region: &str) -> Res<bool> {
        if !lookup_ok(region) {
            return Ok(false);
        }
        transaction!(self, "delete_controller", SER, |tx| {
            tx.execute("DELETE FROM controllers WHERE region = $1", &[&region])
                .await?
                > 0
        })
    }
}
