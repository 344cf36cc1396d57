//! The MC's shared state: the store, the regions, the token keys, the policies, and a snapshot
//! of every grant and API key that requests decide on without touching the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use super::auth::{KeyPrincipal, Principal};
use super::error::ApiError;
use super::region::Regions;
use crate::auth::{
    AuthType, HashParams, LockoutConfig, SigningKeys, StrengthPolicy, TokenConfig, hash_password,
};
use crate::model::{AuditEntry, Org, name_key};
use crate::rbac::Grants;
use crate::store::McStore;

/// Policies and limits of one MC.
#[derive(Clone, Debug)]
pub struct McConfig {
    pub lockout: LockoutConfig,
    pub tokens: TokenConfig,
    /// Argon2id cost of new password hashes.
    pub hash: HashParams,
    pub strength: StrengthPolicy,
    /// API keys per user (upstream's `UserApiKeyCreateLimit`).
    pub max_api_keys: usize,
    /// Whether the `token` cookie gets `Secure` (the API is served over HTTPS).
    pub secure_cookies: bool,
    /// The OAuth issuer (`iss` of access tokens): the MC's public URL, no trailing slash.
    pub issuer: String,
    /// Lifetime of an OAuth access token (client-credentials grant).
    pub access_ttl_secs: i64,
}

impl Default for McConfig {
    fn default() -> Self {
        McConfig {
            lockout: LockoutConfig::default(),
            tokens: TokenConfig::default(),
            hash: HashParams::PRODUCTION,
            strength: StrengthPolicy::default(),
            max_api_keys: 10,
            secure_cookies: false,
            issuer: "https://127.0.0.1:9900".into(),
            access_ttl_secs: 3600,
        }
    }
}

/// What requests decide on, rebuilt as a whole after every change of users, grants or keys.
#[derive(Default)]
struct Snapshot {
    grants: Arc<Grants>,
    /// Name keys of the users who may log in (present and not locked): a token of a deleted
    /// or locked user stops working at once.
    users: HashSet<String>,
    /// API key id (name key) → (owner, organisation): a deleted key's tokens stop working.
    keys: HashMap<String, (String, String)>,
}

pub struct McState {
    pub store: Arc<dyn McStore>,
    pub regions: Regions,
    pub keys: SigningKeys,
    pub config: McConfig,
    snapshot: ArcSwap<Snapshot>,
    /// Serialises snapshot rebuilds, so a slower, older rebuild never replaces a newer one.
    refresh: tokio::sync::Mutex<()>,
    /// Serialises account mutations whose rules read the snapshot (role changes, deletes):
    /// "not the last manager" holds against concurrent requests of this process.
    mutations: tokio::sync::Mutex<()>,
    /// A hash verified when a login names no user, so that unknown names cost as much time as
    /// wrong passwords (no user enumeration by timing).
    pub(crate) dummy_hash: String,
}

impl McState {
    /// The state, with its first snapshot loaded.
    pub async fn new(
        store: Arc<dyn McStore>,
        regions: Regions,
        keys: SigningKeys,
        config: McConfig,
    ) -> Result<Arc<McState>, ApiError> {
        let dummy_hash = hash_password("edgeplane-no-such-user", config.hash)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let state = Arc::new(McState {
            store,
            regions,
            keys,
            config,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            refresh: tokio::sync::Mutex::new(()),
            mutations: tokio::sync::Mutex::new(()),
            dummy_hash,
        });
        state.refresh_grants().await?;
        Ok(state)
    }

    /// The current grant index (never waits on a rebuild).
    pub fn grants(&self) -> Arc<Grants> {
        self.snapshot.load().grants.clone()
    }

    /// Rebuilds the snapshot from the store; called after every change of users, grants or
    /// keys, before the change is answered (read-your-writes for the caller).
    pub async fn refresh_grants(&self) -> Result<(), ApiError> {
        let _one = self.refresh.lock().await;
        let grants = self.store.grants().await?;
        let users = self.store.list_users().await?;
        let mut keys = Vec::new();
        // The store has no list of every key; one query per user is fine at MC sizes.
        for u in &users {
            keys.extend(self.store.api_keys_of_user(&u.name).await?);
        }
        let index = Grants::new(&grants, &keys);
        for g in index.rejected() {
            tracing::warn!(?g, "malformed grant ignored");
        }
        self.snapshot.store(Arc::new(Snapshot {
            grants: Arc::new(index),
            users: users
                .iter()
                .filter(|u| !u.locked)
                .map(|u| name_key(&u.name))
                .collect(),
            keys: keys
                .into_iter()
                .map(|k| (name_key(&k.id), (k.username, k.org)))
                .collect(),
        }));
        Ok(())
    }

    /// Verifies a login token: 401 when it is malformed, forged, expired, signed by an unknown
    /// key, or names a user or API key that no longer exists.
    pub fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        let claims = self
            .keys
            .verify(token, Self::now_ms() / 1000)
            .map_err(|e| ApiError::unauthorized(e.to_string()))?;
        let snap = self.snapshot.load();
        match claims.authtype {
            AuthType::Password => {
                if !snap.users.contains(&name_key(&claims.sub)) {
                    return Err(ApiError::unauthorized(format!(
                        "invalid token: user {} no longer exists or is locked",
                        claims.sub
                    )));
                }
                Ok(Principal {
                    name: claims.sub,
                    key: None,
                })
            }
            AuthType::ApiKey => self.key_principal(&claims.sub),
        }
    }

    /// The principal an API key acts as (login tokens and OAuth access tokens of a key): 401
    /// when the key, or the user who created it, no longer exists or is locked.
    pub fn key_principal(&self, key_id: &str) -> Result<Principal, ApiError> {
        let snap = self.snapshot.load();
        let gone =
            || ApiError::unauthorized(format!("invalid token: API key {key_id} no longer exists"));
        let (owner, org) = snap.keys.get(&name_key(key_id)).ok_or_else(gone)?;
        if !snap.users.contains(&name_key(owner)) {
            return Err(gone());
        }
        Ok(Principal {
            name: owner.clone(),
            key: Some(KeyPrincipal {
                id: key_id.to_string(),
                org: org.clone(),
            }),
        })
    }

    /// An organisation by name (ignoring ASCII case).
    pub async fn org(&self, name: &str) -> Result<Option<Org>, ApiError> {
        Ok(self.store.org(name).await?)
    }

    /// Appends to the audit log. Never fails the request: a store failure is logged.
    pub async fn audit(&self, entry: AuditEntry) {
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!(
                operation = entry.operation,
                user = entry.username,
                status = entry.status,
                "audit log append failed: {e}"
            );
        }
    }

    /// Holds off other account mutations while a rule is checked and applied.
    pub async fn lock_mutations(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.mutations.lock().await
    }

    /// Unix milliseconds.
    pub fn now_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// Unix seconds.
    pub fn now_secs() -> i64 {
        Self::now_ms() / 1000
    }
}
