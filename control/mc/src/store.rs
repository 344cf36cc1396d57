//! The MC's storage: the [`McStore`] trait, its two backends and the conformance suite they
//! both pass.
//!
//! # What this module owns
//! - **Persistence** of users, organisations, role grants, API keys, the audit log and the
//!   region registry, with every operation applied as **one transaction**: nothing half-applies.
//!   Deleting an organisation removes its grants and API keys in the same transaction; deleting
//!   a user removes its grants, its API keys and their grants; deleting a key removes its grants.
//! - **Integrity rules** that need a consistent view of several rows, checked inside that
//!   transaction so that concurrent requests cannot slip past them:
//!   - users, organisations and API key ids share one name space compared in
//!     [`model::name_key`] form (a grant's subject is a user name *or* a key id, and a user may
//!     not be named like an organisation); a clash is [`McStoreError::AlreadyExists`] (same kind)
//!     or [`McStoreError::NameTaken`] (another kind), naming what holds the name;
//!   - user e-mail addresses are unique ignoring ASCII case;
//!   - one role per (subject, organisation): a second role is [`McStoreError::RoleConflict`];
//!   - a grant names an existing subject (user or API key) and an existing organisation (or ""
//!     for the admin roles); an API key names an existing user and organisation;
//!   - controller regions and addresses are unique.
//! - **Audit log**: [`McStore::append_audit`] assigns an increasing `seq`; queries return newest
//!   first. Retention is bounded: an append drops entries whose `seq` is `audit_retention` or
//!   more below the new one (option of each backend, default [`DEFAULT_AUDIT_RETENTION`]).
//!
//! # What it does not own
//! Policy: name syntax, password rules, who may grant what, "not the last manager", lockout
//! thresholds and the API-key limit (the store counts, the caller decides). Input is only
//! checked as far as storage needs: names and ids are non-empty, no text holds a NUL character
//! (PostgreSQL cannot store one) and none exceeds [`MAX_TEXT`] bytes.
//!
//! # Backends
//! - [`RedbStore`]: the default. Embedded, one redb file (`mc.redb`) in a data directory; tables
//!   keyed by name key, values JSON. redb serialises write transactions, so every check-then-write
//!   is race-free.
//! - [`PgStore`]: PostgreSQL over `tokio-postgres` (no TLS: meant for 127.0.0.1 or a private
//!   network). It creates its versioned schema if missing. Writes run in `SERIALIZABLE`
//!   transactions retried on serialization failures, and the shared name space is also a
//!   primary key (`names.name_key`), so a user create and an organisation create of the same
//!   name racing on two connections (or two MC processes) cannot both succeed.
//!
//! # Conformance
//! [`conformance`] holds one async function per specified behaviour; [`conformance_tests!`]
//! (`mc::conformance_tests!`) turns them into `#[tokio::test]`s for a store factory.
//! `tests/store_redb.rs` and `tests/store_postgres.rs` run the same list.

pub mod conformance;
mod postgres;
mod redb;

pub use self::postgres::{PgOptions, PgStore};
pub use self::redb::{RedbOptions, RedbStore};

use std::fmt;

use async_trait::async_trait;

use crate::model::{ApiKey, AuditEntry, Controller, Grant, Org, User};

/// How many audit entries a store keeps by default (by `seq`, see the module doc).
pub const DEFAULT_AUDIT_RETENTION: u64 = 1_000_000;

/// The longest text field a store accepts, in bytes (audit request bodies included).
pub const MAX_TEXT: usize = 1 << 20;

/// The most audit entries one query returns.
pub const MAX_AUDIT_LIMIT: usize = 10_000;

/// What a name or key belongs to, for errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    User,
    Email,
    Org,
    ApiKey,
    Controller,
    ControllerAddress,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::User => "user",
            Kind::Email => "email",
            Kind::Org => "organisation",
            Kind::ApiKey => "API key",
            Kind::Controller => "controller for region",
            Kind::ControllerAddress => "controller address",
        })
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum McStoreError {
    /// Something of the same kind already has this name (ignoring ASCII case for users,
    /// organisations, e-mails and key ids).
    #[error("{kind} {name:?} already exists (case-insensitive)")]
    AlreadyExists { kind: Kind, name: String },
    /// The name is held by something of another kind, e.g. a user named like an organisation.
    #[error("name {name:?} is taken by {taken_by} {existing:?} (case-insensitive)")]
    NameTaken {
        name: String,
        taken_by: Kind,
        existing: String,
    },
    #[error("{kind} {name:?} not found")]
    NotFound { kind: Kind, name: String },
    /// The subject already holds another role in that organisation (one role per pair).
    #[error("{subject:?} already holds role {existing:?} in organisation {org:?}")]
    RoleConflict {
        subject: String,
        org: String,
        existing: String,
    },
    /// The request cannot be stored as given (empty name, NUL character, too long, bad limit).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The backend cannot be reached, or a commit's outcome is unknown.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Any other backend failure, naming the operation.
    #[error("store backend: {0}")]
    Backend(String),
}

/// A change to a user's failed-login record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailedLogins {
    /// A successful login: count 0 (the time of the last failure is kept).
    Reset,
    /// One more failure at `at` (Unix seconds), counted atomically.
    Increment { at: i64 },
}

/// The fields of a user that change after creation; `None` leaves a field alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserUpdate {
    pub email: Option<String>,
    pub passhash: Option<String>,
    pub locked: Option<bool>,
    pub failed_logins: Option<FailedLogins>,
}

/// Which audit entries to return: all filters must hold; newest first, at most `limit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    /// Entries whose `orgs` contain this organisation (ignoring ASCII case).
    pub org: Option<String>,
    /// Entries by this user or API key id (ignoring ASCII case).
    pub user: Option<String>,
    /// Only entries with `seq` below this one (paging backwards).
    pub before_seq: Option<u64>,
    /// 1 ..= [`MAX_AUDIT_LIMIT`].
    pub limit: usize,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            org: None,
            user: None,
            before_seq: None,
            limit: 100,
        }
    }
}

/// The MC's storage. Every method is one transaction; dropping a future never leaves one
/// half-applied. Lookups by user, organisation, e-mail, grant subject/org and key id ignore
/// ASCII case ([`model::name_key`](crate::model::name_key)); controller regions are exact.
#[async_trait]
pub trait McStore: Send + Sync {
    // ---- users ----
    /// Creates a user; refuses a taken name (user, organisation or key id) or e-mail.
    async fn create_user(&self, user: &User) -> Result<(), McStoreError>;
    async fn user(&self, name: &str) -> Result<Option<User>, McStoreError>;
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, McStoreError>;
    /// Applies `update` atomically and returns the user as stored; `NotFound` if absent.
    async fn update_user(&self, name: &str, update: &UserUpdate) -> Result<User, McStoreError>;
    /// Deletes the user, its grants, its API keys and their grants; `false` if absent.
    async fn delete_user(&self, name: &str) -> Result<bool, McStoreError>;
    /// Every user, by name key.
    async fn list_users(&self) -> Result<Vec<User>, McStoreError>;

    // ---- organisations ----
    /// Creates an organisation; refuses a taken name (organisation, user or key id).
    async fn create_org(&self, org: &Org) -> Result<(), McStoreError>;
    async fn org(&self, name: &str) -> Result<Option<Org>, McStoreError>;
    /// Every organisation, by name key.
    async fn list_orgs(&self) -> Result<Vec<Org>, McStoreError>;
    /// Sets or clears `delete_in_progress`; returns the organisation as stored.
    async fn set_org_delete_in_progress(&self, name: &str, on: bool) -> Result<Org, McStoreError>;
    /// Deletes the organisation, its grants and its API keys (and theirs); `false` if absent.
    async fn delete_org(&self, name: &str) -> Result<bool, McStoreError>;

    // ---- grants ----
    /// Adds a grant: `Ok(true)` if added, `Ok(false)` if this very grant exists,
    /// [`McStoreError::RoleConflict`] if the subject holds another role in that org.
    async fn add_grant(&self, grant: &Grant) -> Result<bool, McStoreError>;
    /// Removes a grant (subject, org and role must match); `false` if absent.
    async fn remove_grant(&self, grant: &Grant) -> Result<bool, McStoreError>;
    /// Every grant, ordered by (subject key, org key).
    async fn grants(&self) -> Result<Vec<Grant>, McStoreError>;
    async fn grants_of_subject(&self, subject: &str) -> Result<Vec<Grant>, McStoreError>;
    async fn grants_in_org(&self, org: &str) -> Result<Vec<Grant>, McStoreError>;

    // ---- API keys ----
    /// Stores a key; its user and organisation must exist, its id must be free.
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), McStoreError>;
    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, McStoreError>;
    /// The user's keys, by id key.
    async fn api_keys_of_user(&self, username: &str) -> Result<Vec<ApiKey>, McStoreError>;
    /// Deletes the key and its grants; `false` if absent.
    async fn delete_api_key(&self, id: &str) -> Result<bool, McStoreError>;
    async fn count_api_keys(&self, username: &str) -> Result<usize, McStoreError>;

    // ---- audit log ----
    /// Appends `entry` (its `seq` is ignored) and returns the `seq` assigned.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<u64, McStoreError>;
    async fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, McStoreError>;

    // ---- region registry ----
    /// Registers a region's controller; region and address must both be free.
    async fn create_controller(&self, controller: &Controller) -> Result<(), McStoreError>;
    async fn controller(&self, region: &str) -> Result<Option<Controller>, McStoreError>;
    /// Every controller, by region.
    async fn list_controllers(&self) -> Result<Vec<Controller>, McStoreError>;
    async fn delete_controller(&self, region: &str) -> Result<bool, McStoreError>;
}

// ---- input checks shared by the backends ----

/// A text field: no NUL, at most [`MAX_TEXT`] bytes.
fn check_text(what: &str, value: &str) -> Result<(), McStoreError> {
    if value.contains('\0') {
        return Err(McStoreError::InvalidArgument(format!(
            "{what} contains a NUL character"
        )));
    }
    if value.len() > MAX_TEXT {
        return Err(McStoreError::InvalidArgument(format!(
            "{what} is longer than {MAX_TEXT} bytes"
        )));
    }
    Ok(())
}

/// A name or id: a non-empty text field.
fn check_name(what: &str, value: &str) -> Result<(), McStoreError> {
    if value.is_empty() {
        return Err(McStoreError::InvalidArgument(format!("{what} is empty")));
    }
    check_text(what, value)
}

/// A lookup key: answers "absent" for what could never be stored (e.g. "" or a NUL).
fn lookup_ok(value: &str) -> bool {
    !value.is_empty() && !value.contains('\0') && value.len() <= MAX_TEXT
}

fn check_user(user: &User) -> Result<(), McStoreError> {
    check_name("user name", &user.name)?;
    check_name("user email", &user.email)?;
    check_text("user passhash", &user.passhash)
}

fn check_update(update: &UserUpdate) -> Result<(), McStoreError> {
    if let Some(email) = &update.email {
        check_name("user email", email)?;
    }
    if let Some(passhash) = &update.passhash {
        check_text("user passhash", passhash)?;
    }
    Ok(())
}

fn check_org(org: &Org) -> Result<(), McStoreError> {
    check_name("organisation name", &org.name)
}

fn check_grant(grant: &Grant) -> Result<(), McStoreError> {
    check_name("grant subject", &grant.subject)?;
    // "" is the admin roles' organisation.
    check_text("grant organisation", &grant.org)?;
    check_name("grant role", &grant.role)
}

fn check_api_key(key: &ApiKey) -> Result<(), McStoreError> {
    check_name("API key id", &key.id)?;
    check_name("API key organisation", &key.org)?;
    check_name("API key user", &key.username)?;
    check_text("API key description", &key.description)?;
    check_text("API key secret hash", &key.secret_hash)?;
    for (resource, action) in &key.permissions {
        check_text("API key permission", resource)?;
        check_text("API key permission", action)?;
    }
    Ok(())
}

fn check_audit(entry: &AuditEntry) -> Result<(), McStoreError> {
    check_text("audit username", &entry.username)?;
    for org in &entry.orgs {
        check_text("audit organisation", org)?;
    }
    check_text("audit operation", &entry.operation)?;
    check_text("audit request", &entry.request)?;
    check_text("audit error", &entry.error)?;
    check_text("audit remote", &entry.remote)
}

fn check_query(query: &AuditQuery) -> Result<(), McStoreError> {
    if query.limit == 0 || query.limit > MAX_AUDIT_LIMIT {
        return Err(McStoreError::InvalidArgument(format!(
            "audit query limit {} is not within 1..={MAX_AUDIT_LIMIT}",
            query.limit
        )));
    }
    if query.before_seq.is_some_and(|s| s > i64::MAX as u64) {
        return Err(McStoreError::InvalidArgument(
            "audit query before_seq is out of range".into(),
        ));
    }
    Ok(())
}

fn check_controller(c: &Controller) -> Result<(), McStoreError> {
    check_name("controller region", &c.region)?;
    check_name("controller address", &c.address)?;
    check_text("controller notify address", &c.notify_addr)
}

fn check_retention(retention: u64) -> Result<(), McStoreError> {
    if retention == 0 || retention > i64::MAX as u64 {
        return Err(McStoreError::InvalidArgument(format!(
            "audit retention {retention} is not within 1..={}",
            i64::MAX
        )));
    }
    Ok(())
}

/// The e-mail form compared for uniqueness (ASCII lower case, like names).
fn email_key(email: &str) -> String {
    email.to_ascii_lowercase()
}

/// Whether an audit entry passes a query's org/user filters (keys already in name-key form).
fn audit_matches(entry: &AuditEntry, org_key: Option<&str>, user_key: Option<&str>) -> bool {
    use crate::model::name_key;
    org_key.is_none_or(|o| entry.orgs.iter().any(|e| name_key(e) == o))
        && user_key.is_none_or(|u| name_key(&entry.username) == u)
}
