//! The MC's domain types: users, organisations, role grants, API keys, audit entries and the
//! region registry. Names of users and organisations are unique ignoring ASCII case, and a user
//! may not share a name with an organisation: [`name_key`] is the form they are compared in.

use serde::{Deserialize, Serialize};

/// The form a user or organisation name is compared and indexed in (ASCII lower case).
pub fn name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// A user account. The password is kept only as its PHC hash string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// As the user spelled it at creation.
    pub name: String,
    pub email: String,
    /// Argon2id PHC string (`$argon2id$v=19$m=...`).
    pub passhash: String,
    /// Locked by an administrator: no login at all.
    pub locked: bool,
    /// Consecutive failed logins and when the last one happened (Unix seconds), for lockout.
    pub failed_logins: u32,
    pub last_failed_login: i64,
    pub created_at: i64,
}

/// Whose organisation it is, which decides the roles it can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgType {
    Developer,
    Operator,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    /// As spelled at creation.
    pub name: String,
    #[serde(rename = "type")]
    pub org_type: OrgType,
    /// Set while a delete checks the regions: creates naming the org are refused meanwhile.
    pub delete_in_progress: bool,
    pub created_at: i64,
}

/// A role of upstream's ten (see `rbac`), held by a subject in an organisation ("" for the
/// admin roles, which hold in every organisation).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    /// A user name. (An API key's rights are its own `permissions`, capped by its creator's
    /// current rights in its organisation: see `rbac`; keys hold no grants.)
    pub subject: String,
    /// "" for admin roles.
    pub org: String,
    pub role: String,
}

/// An API key: an id and a secret (only its hash is kept), acting in one organisation with
/// rights that are a subset of its creator's there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub org: String,
    /// The user who created it.
    pub username: String,
    pub description: String,
    /// The secret's hash (`auth::apikey`: HMAC-SHA256 keyed by the id, for 256-bit random
    /// secrets; an Argon2id PHC string also verifies).
    pub secret_hash: String,
    /// (resource, action) pairs, e.g. ("apps", "manage").
    pub permissions: Vec<(String, String)>,
    pub created_at: i64,
}

/// One audited mutation: who, what, the result and when. Secrets are already redacted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Assigned by the store, increasing.
    pub seq: u64,
    /// Unix milliseconds.
    pub time_ms: i64,
    /// The user (or API key id) who asked; "" before login.
    pub username: String,
    /// The organisations the request concerned (for per-organisation queries).
    pub orgs: Vec<String>,
    /// The API path, e.g. `/api/v1/auth/ctrl/CreateApp`.
    pub operation: String,
    /// The request body, redacted.
    pub request: String,
    /// HTTP status and the error message if any.
    pub status: u16,
    pub error: String,
    pub remote: String,
}

/// A region's controller in the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controller {
    pub region: String,
    /// The controller's API address (host:port).
    pub address: String,
    pub notify_addr: String,
}
