//! The embedded backend: one redb file, `mc.redb`, in a data directory.
//!
//! Tables are keyed by name key (ASCII lower case) and hold the model types as JSON. Secondary
//! indexes are tables of `(index key, primary key) -> ()`. redb runs one write transaction at a
//! time, so each operation's checks and writes see no concurrent change; the work runs on
//! tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    AuditQuery, DEFAULT_AUDIT_RETENTION, FailedLogins, Kind, McStore, McStoreError, UserUpdate,
    audit_matches, check_api_key, check_audit, check_controller, check_grant, check_org,
    check_query, check_retention, check_update, check_user, email_key, lookup_ok,
};
use crate::model::{ApiKey, AuditEntry, Controller, Grant, Org, User, name_key};

/// The file in the data directory.
const DB_FILE: &str = "mc.redb";
/// The layout this build reads and writes, stamped in `meta`.
const FORMAT: u64 = 1;

const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const USERS: TableDefinition<'_, &str, &str> = TableDefinition::new("users");
/// email key -> user name key.
const EMAILS: TableDefinition<'_, &str, &str> = TableDefinition::new("emails");
const ORGS: TableDefinition<'_, &str, &str> = TableDefinition::new("orgs");
/// (subject key, org key) -> Grant.
const GRANTS: TableDefinition<'_, (&str, &str), &str> = TableDefinition::new("grants");
/// (org key, subject key).
const GRANTS_BY_ORG: TableDefinition<'_, (&str, &str), ()> = TableDefinition::new("grants_by_org");
/// id key -> ApiKey.
const KEYS: TableDefinition<'_, &str, &str> = TableDefinition::new("api_keys");
/// (user key, id key).
const KEYS_BY_USER: TableDefinition<'_, (&str, &str), ()> = TableDefinition::new("keys_by_user");
/// (org key, id key).
const KEYS_BY_ORG: TableDefinition<'_, (&str, &str), ()> = TableDefinition::new("keys_by_org");
const AUDIT: TableDefinition<'_, u64, &str> = TableDefinition::new("audit");
/// region -> Controller.
const CONTROLLERS: TableDefinition<'_, &str, &str> = TableDefinition::new("controllers");

/// Options of [`RedbStore`].
#[derive(Clone, Debug)]
pub struct RedbOptions {
    /// Audit entries kept, by `seq` (see the module doc of `store`).
    pub audit_retention: u64,
}

impl Default for RedbOptions {
    fn default() -> Self {
        Self {
            audit_retention: DEFAULT_AUDIT_RETENTION,
        }
    }
}

/// The embedded [`McStore`]. Cheap to clone; all clones share the file. A second open of the
/// same file (by this process or another) is refused while one is open.
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
    options: RedbOptions,
}

type Res<T> = Result<T, McStoreError>;

/// Maps any redb error into [`McStoreError::Backend`], naming the operation.
fn backend<E: Into<::redb::Error>>(op: &'static str) -> impl Fn(E) -> McStoreError {
    move |e| McStoreError::Backend(format!("redb {op}: {}", e.into()))
}

fn encode<T: Serialize>(op: &'static str, value: &T) -> Res<String> {
    serde_json::to_string(value)
        .map_err(|e| McStoreError::Backend(format!("redb {op}: encoding: {e}")))
}

fn decode<T: DeserializeOwned>(op: &'static str, raw: &str) -> Res<T> {
    serde_json::from_str(raw)
        .map_err(|e| McStoreError::Backend(format!("redb {op}: undecodable record: {e}")))
}

impl RedbStore {
    /// Opens (or creates) the store in `dir`, creating the directory if needed.
    pub async fn open(dir: impl AsRef<Path>) -> Res<Self> {
        Self::open_with(dir, RedbOptions::default()).await
    }

    pub async fn open_with(dir: impl AsRef<Path>, options: RedbOptions) -> Res<Self> {
        check_retention(options.audit_retention)?;
        let dir = dir.as_ref().to_path_buf();
        let inner = tokio::task::spawn_blocking(move || Inner::open(&dir, options))
            .await
            .map_err(|e| {
                McStoreError::Backend(format!("opening redb store: task failed: {e}"))
            })??;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn read<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&ReadTransaction) -> Res<T> + Send + 'static,
    ) -> Res<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let rtx = inner.db.begin_read().map_err(backend(op))?;
            f(&rtx)
        })
        .await
        .map_err(|e| McStoreError::Backend(format!("redb {op}: task failed: {e}")))?
    }

    /// Runs `f` in one write transaction, committed only if it returns `Ok` (else aborted).
    async fn write<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&WriteTransaction, &RedbOptions) -> Res<T> + Send + 'static,
    ) -> Res<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let wtx = inner.db.begin_write().map_err(backend(op))?;
            match f(&wtx, &inner.options) {
                Ok(v) => {
                    wtx.commit().map_err(backend(op))?;
                    Ok(v)
                }
                Err(e) => {
                    wtx.abort().map_err(backend(op))?;
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| McStoreError::Backend(format!("redb {op}: task failed: {e}")))?
    }
}

impl Inner {
    fn open(dir: &Path, options: RedbOptions) -> Res<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            McStoreError::Backend(format!("creating data directory {}: {e}", dir.display()))
        })?;
        let path = dir.join(DB_FILE);
        let db = Database::create(&path)
            .map_err(|e| McStoreError::Backend(format!("opening {}: {e}", path.display())))?;
        // Create every table and stamp the format in one transaction, so readers can assume the
        // tables exist and a file of another format is refused instead of misread.
        let wtx = db.begin_write().map_err(backend("open"))?;
        {
            wtx.open_table(USERS).map_err(backend("open"))?;
            wtx.open_table(EMAILS).map_err(backend("open"))?;
            wtx.open_table(ORGS).map_err(backend("open"))?;
            wtx.open_table(GRANTS).map_err(backend("open"))?;
            wtx.open_table(GRANTS_BY_ORG).map_err(backend("open"))?;
            wtx.open_table(KEYS).map_err(backend("open"))?;
            wtx.open_table(KEYS_BY_USER).map_err(backend("open"))?;
            wtx.open_table(KEYS_BY_ORG).map_err(backend("open"))?;
            wtx.open_table(AUDIT).map_err(backend("open"))?;
            wtx.open_table(CONTROLLERS).map_err(backend("open"))?;
            let mut meta = wtx.open_table(META).map_err(backend("open"))?;
            let format = meta
                .get("format")
                .map_err(backend("open"))?
                .map(|g| g.value());
            match format {
                None => {
                    meta.insert("format", FORMAT).map_err(backend("open"))?;
                }
                Some(FORMAT) => {}
                Some(f) => {
                    return Err(McStoreError::Backend(format!(
                        "{} has MC store format {f}, this build reads format {FORMAT}",
                        path.display()
                    )));
                }
            }
        }
        wtx.commit().map_err(backend("open"))?;
        Ok(Self { db, path, options })
    }
}

// ---- helpers on a write transaction ----

/// The JSON value at `key` of a `&str`-keyed table, decoded.
fn get_json<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static str>,
    op: &'static str,
    key: &str,
) -> Res<Option<T>> {
    match table.get(key).map_err(backend(op))? {
        Some(raw) => decode(op, raw.value()).map(Some),
        None => Ok(None),
    }
}

/// Every JSON value of a `&str`-keyed table, in key order.
fn all_json<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static str>,
    op: &'static str,
) -> Res<Vec<T>> {
    let mut out = Vec::new();
    for item in table.iter().map_err(backend(op))? {
        let (_, v) = item.map_err(backend(op))?;
        out.push(decode(op, v.value())?);
    }
    Ok(out)
}

/// The second parts of the `(first, _)` keys of an index table.
fn index_seconds(
    table: &impl ReadableTable<(&'static str, &'static str), ()>,
    op: &'static str,
    first: &str,
) -> Res<Vec<String>> {
    let mut out = Vec::new();
    for item in table.range((first, "")..).map_err(backend(op))? {
        let (k, _) = item.map_err(backend(op))?;
        let (a, b) = k.value();
        if a != first {
            break;
        }
        out.push(b.to_owned());
    }
    Ok(out)
}

/// Fails with `AlreadyExists` / `NameTaken` if a user, organisation or API key holds `key`.
fn check_name_free(wtx: &WriteTransaction, op: &'static str, kind: Kind, name: &str) -> Res<()> {
    let key = name_key(name);
    let taken = |by: Kind, existing: String| {
        if by == kind {
            McStoreError::AlreadyExists {
                kind,
                name: name.to_owned(),
            }
        } else {
            McStoreError::NameTaken {
                name: name.to_owned(),
                taken_by: by,
                existing,
            }
        }
    };
    let users = wtx.open_table(USERS).map_err(backend(op))?;
    if let Some(u) = get_json::<User>(&users, op, &key)? {
        return Err(taken(Kind::User, u.name));
    }
    let orgs = wtx.open_table(ORGS).map_err(backend(op))?;
    if let Some(o) = get_json::<Org>(&orgs, op, &key)? {
        return Err(taken(Kind::Org, o.name));
    }
    let keys = wtx.open_table(KEYS).map_err(backend(op))?;
    if let Some(k) = get_json::<ApiKey>(&keys, op, &key)? {
        return Err(taken(Kind::ApiKey, k.id));
    }
    Ok(())
}

/// Removes every grant whose subject is `subject_key`.
fn remove_grants_of_subject(
    wtx: &WriteTransaction,
    op: &'static str,
    subject_key: &str,
) -> Res<()> {
    let mut grants = wtx.open_table(GRANTS).map_err(backend(op))?;
    let mut by_org = wtx.open_table(GRANTS_BY_ORG).map_err(backend(op))?;
    let mut orgs = Vec::new();
    for item in grants.range((subject_key, "")..).map_err(backend(op))? {
        let (k, _) = item.map_err(backend(op))?;
        let (s, o) = k.value();
        if s != subject_key {
            break;
        }
        orgs.push(o.to_owned());
    }
    for org in orgs {
        grants
            .remove((subject_key, org.as_str()))
            .map_err(backend(op))?;
        by_org
            .remove((org.as_str(), subject_key))
            .map_err(backend(op))?;
    }
    Ok(())
}

/// Removes an API key, its index entries and its grants; `false` if absent.
fn remove_api_key(wtx: &WriteTransaction, op: &'static str, id_key: &str) -> Res<bool> {
    let key: ApiKey = {
        let mut keys = wtx.open_table(KEYS).map_err(backend(op))?;
        let Some(raw) = keys.remove(id_key).map_err(backend(op))? else {
            return Ok(false);
        };
        decode(op, raw.value())?
    };
    wtx.open_table(KEYS_BY_USER)
        .map_err(backend(op))?
        .remove((name_key(&key.username).as_str(), id_key))
        .map_err(backend(op))?;
    wtx.open_table(KEYS_BY_ORG)
        .map_err(backend(op))?
        .remove((name_key(&key.org).as_str(), id_key))
        .map_err(backend(op))?;
    remove_grants_of_subject(wtx, op, id_key)?;
    Ok(true)
}

fn not_found(kind: Kind, name: &str) -> McStoreError {
    McStoreError::NotFound {
        kind,
        name: name.to_owned(),
    }
}

#[async_trait]
impl McStore for RedbStore {
    async fn create_user(&self, user: &User) -> Res<()> {
        check_user(user)?;
        let user = user.clone();
        self.write("create_user", move |wtx, _| {
            const OP: &str = "create_user";
            check_name_free(wtx, OP, Kind::User, &user.name)?;
            let ekey = email_key(&user.email);
            let mut emails = wtx.open_table(EMAILS).map_err(backend(OP))?;
            if emails.get(ekey.as_str()).map_err(backend(OP))?.is_some() {
                return Err(McStoreError::AlreadyExists {
                    kind: Kind::Email,
                    name: user.email.clone(),
                });
            }
            let key = name_key(&user.name);
            emails
                .insert(ekey.as_str(), key.as_str())
                .map_err(backend(OP))?;
            wtx.open_table(USERS)
                .map_err(backend(OP))?
                .insert(key.as_str(), encode(OP, &user)?.as_str())
                .map_err(backend(OP))?;
            Ok(())
        })
        .await
    }

    async fn user(&self, name: &str) -> Res<Option<User>> {
        if !lookup_ok(name) {
            return Ok(None);
        }
        let key = name_key(name);
        self.read("user", move |rtx| {
            let users = rtx.open_table(USERS).map_err(backend("user"))?;
            get_json(&users, "user", &key)
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> Res<Option<User>> {
        if !lookup_ok(email) {
            return Ok(None);
        }
        let ekey = email_key(email);
        self.read("user_by_email", move |rtx| {
            const OP: &str = "user_by_email";
            let emails = rtx.open_table(EMAILS).map_err(backend(OP))?;
            let Some(name) = emails.get(ekey.as_str()).map_err(backend(OP))? else {
                return Ok(None);
            };
            let users = rtx.open_table(USERS).map_err(backend(OP))?;
            get_json(&users, OP, name.value())
        })
        .await
    }

    async fn update_user(&self, name: &str, update: &UserUpdate) -> Res<User> {
        check_update(update)?;
        if !lookup_ok(name) {
            return Err(not_found(Kind::User, name));
        }
        let (name, update) = (name.to_owned(), update.clone());
        self.write("update_user", move |wtx, _| {
            const OP: &str = "update_user";
            let key = name_key(&name);
            let mut users = wtx.open_table(USERS).map_err(backend(OP))?;
            let mut user: User =
                get_json(&users, OP, &key)?.ok_or_else(|| not_found(Kind::User, &name))?;
            if let Some(email) = update.email {
                let (old, new) = (email_key(&user.email), email_key(&email));
                if old != new {
                    let mut emails = wtx.open_table(EMAILS).map_err(backend(OP))?;
                    if emails.get(new.as_str()).map_err(backend(OP))?.is_some() {
                        return Err(McStoreError::AlreadyExists {
                            kind: Kind::Email,
                            name: email,
                        });
                    }
                    emails.remove(old.as_str()).map_err(backend(OP))?;
                    emails
                        .insert(new.as_str(), key.as_str())
                        .map_err(backend(OP))?;
                }
                user.email = email;
            }
            if let Some(passhash) = update.passhash {
                user.passhash = passhash;
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
            users
                .insert(key.as_str(), encode(OP, &user)?.as_str())
                .map_err(backend(OP))?;
            Ok(user)
        })
        .await
    }

    async fn delete_user(&self, name: &str) -> Res<bool> {
        if !lookup_ok(name) {
            return Ok(false);
        }
        let key = name_key(name);
        self.write("delete_user", move |wtx, _| {
            const OP: &str = "delete_user";
            let user: User = {
                let mut users = wtx.open_table(USERS).map_err(backend(OP))?;
                let Some(raw) = users.remove(key.as_str()).map_err(backend(OP))? else {
                    return Ok(false);
                };
                decode(OP, raw.value())?
            };
            wtx.open_table(EMAILS)
                .map_err(backend(OP))?
                .remove(email_key(&user.email).as_str())
                .map_err(backend(OP))?;
            remove_grants_of_subject(wtx, OP, &key)?;
            let ids = {
                let by_user = wtx.open_table(KEYS_BY_USER).map_err(backend(OP))?;
                index_seconds(&by_user, OP, &key)?
            };
            for id in ids {
                remove_api_key(wtx, OP, &id)?;
            }
            Ok(true)
        })
        .await
    }

    async fn list_users(&self) -> Res<Vec<User>> {
        self.read("list_users", |rtx| {
            all_json(
                &rtx.open_table(USERS).map_err(backend("list_users"))?,
                "list_users",
            )
        })
        .await
    }

    async fn create_org(&self, org: &Org) -> Res<()> {
        check_org(org)?;
        let org = org.clone();
        self.write("create_org", move |wtx, _| {
            const OP: &str = "create_org";
            check_name_free(wtx, OP, Kind::Org, &org.name)?;
            wtx.open_table(ORGS)
                .map_err(backend(OP))?
                .insert(name_key(&org.name).as_str(), encode(OP, &org)?.as_str())
                .map_err(backend(OP))?;
            Ok(())
        })
        .await
    }

    async fn org(&self, name: &str) -> Res<Option<Org>> {
        if !lookup_ok(name) {
            return Ok(None);
        }
        let key = name_key(name);
        self.read("org", move |rtx| {
            get_json(&rtx.open_table(ORGS).map_err(backend("org"))?, "org", &key)
        })
        .await
    }

    async fn list_orgs(&self) -> Res<Vec<Org>> {
        self.read("list_orgs", |rtx| {
            all_json(
                &rtx.open_table(ORGS).map_err(backend("list_orgs"))?,
                "list_orgs",
            )
        })
        .await
    }

    async fn set_org_delete_in_progress(&self, name: &str, on: bool) -> Res<Org> {
        if !lookup_ok(name) {
            return Err(not_found(Kind::Org, name));
        }
        let name = name.to_owned();
        self.write("set_org_delete_in_progress", move |wtx, _| {
            const OP: &str = "set_org_delete_in_progress";
            let key = name_key(&name);
            let mut orgs = wtx.open_table(ORGS).map_err(backend(OP))?;
            let mut org: Org =
                get_json(&orgs, OP, &key)?.ok_or_else(|| not_found(Kind::Org, &name))?;
            org.delete_in_progress = on;
            orgs.insert(key.as_str(), encode(OP, &org)?.as_str())
                .map_err(backend(OP))?;
            Ok(org)
        })
        .await
    }

    async fn delete_org(&self, name: &str) -> Res<bool> {
        if !lookup_ok(name) {
            return Ok(false);
        }
        let key = name_key(name);
        self.write("delete_org", move |wtx, _| {
            const OP: &str = "delete_org";
            if wtx
                .open_table(ORGS)
                .map_err(backend(OP))?
                .remove(key.as_str())
                .map_err(backend(OP))?
                .is_none()
            {
                return Ok(false);
            }
            let ids = {
                let by_org = wtx.open_table(KEYS_BY_ORG).map_err(backend(OP))?;
                index_seconds(&by_org, OP, &key)?
            };
            for id in ids {
                remove_api_key(wtx, OP, &id)?;
            }
            let subjects = {
                let by_org = wtx.open_table(GRANTS_BY_ORG).map_err(backend(OP))?;
                index_seconds(&by_org, OP, &key)?
            };
            let mut grants = wtx.open_table(GRANTS).map_err(backend(OP))?;
            let mut by_org = wtx.open_table(GRANTS_BY_ORG).map_err(backend(OP))?;
            for subject in subjects {
                grants
                    .remove((subject.as_str(), key.as_str()))
                    .map_err(backend(OP))?;
                by_org
                    .remove((key.as_str(), subject.as_str()))
                    .map_err(backend(OP))?;
            }
            Ok(true)
        })
        .await
    }

    async fn add_grant(&self, grant: &Grant) -> Res<bool> {
        check_grant(grant)?;
        let grant = grant.clone();
        self.write("add_grant", move |wtx, _| {
            const OP: &str = "add_grant";
            let (skey, okey) = (name_key(&grant.subject), name_key(&grant.org));
            let subject_exists = wtx
                .open_table(USERS)
                .map_err(backend(OP))?
                .get(skey.as_str())
                .map_err(backend(OP))?
                .is_some()
                || wtx
                    .open_table(KEYS)
                    .map_err(backend(OP))?
                    .get(skey.as_str())
                    .map_err(backend(OP))?
                    .is_some();
            if !subject_exists {
                return Err(not_found(Kind::User, &grant.subject));
            }
            if !okey.is_empty()
                && wtx
                    .open_table(ORGS)
                    .map_err(backend(OP))?
                    .get(okey.as_str())
                    .map_err(backend(OP))?
                    .is_none()
            {
                return Err(not_found(Kind::Org, &grant.org));
            }
            let mut grants = wtx.open_table(GRANTS).map_err(backend(OP))?;
            if let Some(raw) = grants
                .get((skey.as_str(), okey.as_str()))
                .map_err(backend(OP))?
            {
                let existing: Grant = decode(OP, raw.value())?;
                if existing.role == grant.role {
                    return Ok(false);
                }
                return Err(McStoreError::RoleConflict {
                    subject: existing.subject,
                    org: existing.org,
                    existing: existing.role,
                });
            }
            grants
                .insert((skey.as_str(), okey.as_str()), encode(OP, &grant)?.as_str())
                .map_err(backend(OP))?;
            wtx.open_table(GRANTS_BY_ORG)
                .map_err(backend(OP))?
                .insert((okey.as_str(), skey.as_str()), ())
                .map_err(backend(OP))?;
            Ok(true)
        })
        .await
    }

    async fn remove_grant(&self, grant: &Grant) -> Res<bool> {
        if !lookup_ok(&grant.subject) || grant.org.contains('\0') {
            return Ok(false);
        }
        let grant = grant.clone();
        self.write("remove_grant", move |wtx, _| {
            const OP: &str = "remove_grant";
            let (skey, okey) = (name_key(&grant.subject), name_key(&grant.org));
            let mut grants = wtx.open_table(GRANTS).map_err(backend(OP))?;
            let existing: Grant = match grants
                .get((skey.as_str(), okey.as_str()))
                .map_err(backend(OP))?
            {
                Some(raw) => decode(OP, raw.value())?,
                None => return Ok(false),
            };
            if existing.role != grant.role {
                return Ok(false);
            }
            grants
                .remove((skey.as_str(), okey.as_str()))
                .map_err(backend(OP))?;
            wtx.open_table(GRANTS_BY_ORG)
                .map_err(backend(OP))?
                .remove((okey.as_str(), skey.as_str()))
                .map_err(backend(OP))?;
            Ok(true)
        })
        .await
    }

    async fn grants(&self) -> Res<Vec<Grant>> {
        self.read("grants", |rtx| {
            let grants = rtx.open_table(GRANTS).map_err(backend("grants"))?;
            let mut out = Vec::new();
            for item in grants.iter().map_err(backend("grants"))? {
                let (_, v) = item.map_err(backend("grants"))?;
                out.push(decode("grants", v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn grants_of_subject(&self, subject: &str) -> Res<Vec<Grant>> {
        if !lookup_ok(subject) {
            return Ok(Vec::new());
        }
        let skey = name_key(subject);
        self.read("grants_of_subject", move |rtx| {
            const OP: &str = "grants_of_subject";
            let grants = rtx.open_table(GRANTS).map_err(backend(OP))?;
            let mut out = Vec::new();
            for item in grants.range((skey.as_str(), "")..).map_err(backend(OP))? {
                let (k, v) = item.map_err(backend(OP))?;
                if k.value().0 != skey {
                    break;
                }
                out.push(decode(OP, v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn grants_in_org(&self, org: &str) -> Res<Vec<Grant>> {
        if org.contains('\0') {
            return Ok(Vec::new());
        }
        let okey = name_key(org);
        self.read("grants_in_org", move |rtx| {
            const OP: &str = "grants_in_org";
            let by_org = rtx.open_table(GRANTS_BY_ORG).map_err(backend(OP))?;
            let grants = rtx.open_table(GRANTS).map_err(backend(OP))?;
            let mut out: Vec<Grant> = Vec::new();
            for subject in index_seconds(&by_org, OP, &okey)? {
                if let Some(raw) = grants
                    .get((subject.as_str(), okey.as_str()))
                    .map_err(backend(OP))?
                {
                    out.push(decode(OP, raw.value())?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn create_api_key(&self, key: &ApiKey) -> Res<()> {
        check_api_key(key)?;
        let key = key.clone();
        self.write("create_api_key", move |wtx, _| {
            const OP: &str = "create_api_key";
            check_name_free(wtx, OP, Kind::ApiKey, &key.id)?;
            let (ukey, okey, ikey) = (
                name_key(&key.username),
                name_key(&key.org),
                name_key(&key.id),
            );
            if wtx
                .open_table(USERS)
                .map_err(backend(OP))?
                .get(ukey.as_str())
                .map_err(backend(OP))?
                .is_none()
            {
                return Err(not_found(Kind::User, &key.username));
            }
            if wtx
                .open_table(ORGS)
                .map_err(backend(OP))?
                .get(okey.as_str())
                .map_err(backend(OP))?
                .is_none()
            {
                return Err(not_found(Kind::Org, &key.org));
            }
            wtx.open_table(KEYS)
                .map_err(backend(OP))?
                .insert(ikey.as_str(), encode(OP, &key)?.as_str())
                .map_err(backend(OP))?;
            wtx.open_table(KEYS_BY_USER)
                .map_err(backend(OP))?
                .insert((ukey.as_str(), ikey.as_str()), ())
                .map_err(backend(OP))?;
            wtx.open_table(KEYS_BY_ORG)
                .map_err(backend(OP))?
                .insert((okey.as_str(), ikey.as_str()), ())
                .map_err(backend(OP))?;
            Ok(())
        })
        .await
    }

    async fn api_key(&self, id: &str) -> Res<Option<ApiKey>> {
        if !lookup_ok(id) {
            return Ok(None);
        }
        let key = name_key(id);
        self.read("api_key", move |rtx| {
            get_json(
                &rtx.open_table(KEYS).map_err(backend("api_key"))?,
                "api_key",
                &key,
            )
        })
        .await
    }

    async fn api_keys_of_user(&self, username: &str) -> Res<Vec<ApiKey>> {
        if !lookup_ok(username) {
            return Ok(Vec::new());
        }
        let ukey = name_key(username);
        self.read("api_keys_of_user", move |rtx| {
            const OP: &str = "api_keys_of_user";
            let by_user = rtx.open_table(KEYS_BY_USER).map_err(backend(OP))?;
            let keys = rtx.open_table(KEYS).map_err(backend(OP))?;
            let mut out = Vec::new();
            for id in index_seconds(&by_user, OP, &ukey)? {
                if let Some(k) = get_json(&keys, OP, &id)? {
                    out.push(k);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn delete_api_key(&self, id: &str) -> Res<bool> {
        if !lookup_ok(id) {
            return Ok(false);
        }
        let key = name_key(id);
        self.write("delete_api_key", move |wtx, _| {
            remove_api_key(wtx, "delete_api_key", &key)
        })
        .await
    }

    async fn count_api_keys(&self, username: &str) -> Res<usize> {
        if !lookup_ok(username) {
            return Ok(0);
        }
        let ukey = name_key(username);
        self.read("count_api_keys", move |rtx| {
            const OP: &str = "count_api_keys";
            let by_user = rtx.open_table(KEYS_BY_USER).map_err(backend(OP))?;
            Ok(index_seconds(&by_user, OP, &ukey)?.len())
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Res<u64> {
        check_audit(entry)?;
        let mut entry = entry.clone();
        self.write("append_audit", move |wtx, options| {
            const OP: &str = "append_audit";
            let mut audit = wtx.open_table(AUDIT).map_err(backend(OP))?;
            // The next seq comes from a counter, not the last entry: retention may have emptied
            // the table, and seqs are never reused.
            let mut meta = wtx.open_table(META).map_err(backend(OP))?;
            let last = meta
                .get("audit_seq")
                .map_err(backend(OP))?
                .map_or(0, |g| g.value());
            let seq = last + 1;
            meta.insert("audit_seq", seq).map_err(backend(OP))?;
            entry.seq = seq;
            audit
                .insert(seq, encode(OP, &entry)?.as_str())
                .map_err(backend(OP))?;
            if let Some(cut) = seq.checked_sub(options.audit_retention) {
                loop {
                    let first = match audit.first().map_err(backend(OP))? {
                        Some((k, _)) if k.value() <= cut => k.value(),
                        _ => break,
                    };
                    audit.remove(first).map_err(backend(OP))?;
                }
            }
            Ok(seq)
        })
        .await
    }

    async fn query_audit(&self, query: &AuditQuery) -> Res<Vec<AuditEntry>> {
        check_query(query)?;
        let org = query.org.as_deref().map(name_key);
        let user = query.user.as_deref().map(name_key);
        let (before, limit) = (query.before_seq, query.limit);
        self.read("query_audit", move |rtx| {
            const OP: &str = "query_audit";
            let audit = rtx.open_table(AUDIT).map_err(backend(OP))?;
            let mut out = Vec::new();
            let range = match before {
                Some(b) => audit.range(..b),
                None => audit.range(0..),
            }
            .map_err(backend(OP))?;
            for item in range.rev() {
                let (_, v) = item.map_err(backend(OP))?;
                let entry: AuditEntry = decode(OP, v.value())?;
                if audit_matches(&entry, org.as_deref(), user.as_deref()) {
                    out.push(entry);
                    if out.len() == limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn create_controller(&self, controller: &Controller) -> Res<()> {
        check_controller(controller)?;
        let c = controller.clone();
        self.write("create_controller", move |wtx, _| {
            const OP: &str = "create_controller";
            let mut table = wtx.open_table(CONTROLLERS).map_err(backend(OP))?;
            if table.get(c.region.as_str()).map_err(backend(OP))?.is_some() {
                return Err(McStoreError::AlreadyExists {
                    kind: Kind::Controller,
                    name: c.region,
                });
            }
            for existing in all_json::<Controller>(&table, OP)? {
                if existing.address == c.address {
                    return Err(McStoreError::AlreadyExists {
                        kind: Kind::ControllerAddress,
                        name: c.address,
                    });
                }
            }
            table
                .insert(c.region.as_str(), encode(OP, &c)?.as_str())
                .map_err(backend(OP))?;
            Ok(())
        })
        .await
    }

    async fn controller(&self, region: &str) -> Res<Option<Controller>> {
        if !lookup_ok(region) {
            return Ok(None);
        }
        let region = region.to_owned();
        self.read("controller", move |rtx| {
            get_json(
                &rtx.open_table(CONTROLLERS).map_err(backend("controller"))?,
                "controller",
                &region,
            )
        })
        .await
    }

    async fn list_controllers(&self) -> Res<Vec<Controller>> {
        self.read("list_controllers", |rtx| {
            all_json(
                &rtx.open_table(CONTROLLERS)
                    .map_err(backend("list_controllers"))?,
                "list_controllers",
            )
        })
        .await
    }

    async fn delete_controller(&self, region: &str) -> Res<bool> {
        if !lookup_ok(region) {
            return Ok(false);
        }
        let region = region.to_owned();
        self.write("delete_controller", move |wtx, _| {
            Ok(wtx
                .open_table(CONTROLLERS)
                .map_err(backend("delete_controller"))?
                .remove(region.as_str())
                .map_err(backend("delete_controller"))?
                .is_some())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second open of the same file is refused with the file's path in the message.
    #[tokio::test]
    async fn second_open_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let _first = RedbStore::open(dir.path()).await.unwrap();
        let Err(err) = RedbStore::open(dir.path()).await else {
            panic!("second open succeeded");
        };
        assert!(
            matches!(err, McStoreError::Backend(ref m) if m.contains(DB_FILE)),
            "{err}"
        );
    }

    #[tokio::test]
    async fn zero_retention_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let Err(err) = RedbStore::open_with(dir.path(), RedbOptions { audit_retention: 0 }).await
        else {
            panic!("opened with retention 0");
        };
        assert!(matches!(err, McStoreError::InvalidArgument(_)), "{err}");
    }
}
