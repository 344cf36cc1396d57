//! Who is calling: the [`Principal`] a verified login token names, extracted from the
//! `Authorization: Bearer <jwt>` header or, failing that, the `token` cookie.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;

use super::audit::AuditCtx;
use super::error::ApiError;
use super::state::McState;
use crate::rbac::Subject;

/// The API key a token was issued to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPrincipal {
    pub id: String,
    /// The one organisation the key acts in.
    pub org: String,
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user; for an API key, the user who created it.
    pub name: String,
    /// Set when the token came from an API-key login: the caller acts with the key's
    /// permissions only, never with its owner's others.
    pub key: Option<KeyPrincipal>,
}

impl Principal {
    /// The subject the enforcer decides on.
    pub fn subject(&self) -> Subject<'_> {
        match &self.key {
            Some(k) => Subject::Key(&k.id),
            None => Subject::User(&self.name),
        }
    }

    /// The name recorded in the audit log: the user, or for an API key its id (the model's
    /// `AuditEntry::username`: "the user or API key id who asked").
    pub fn audit_name(&self) -> String {
        match &self.key {
            Some(k) => k.id.clone(),
            None => self.name.clone(),
        }
    }

    /// Refuses API-key tokens for what only a password login may do (keys, passwords,
    /// deleting the account): a leaked key must not mint more keys or take over its owner.
    pub fn require_password_login(&self, what: &str) -> Result<(), ApiError> {
        match &self.key {
            Some(k) => Err(ApiError::forbidden(format!(
                "API key {} may not {what}: log in with the user's password",
                k.id
            ))),
            None => Ok(()),
        }
    }
}

/// The token of a request: the bearer token if present, else the `token` cookie.
pub fn request_token(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get(AUTHORIZATION) {
        let v = v.to_str().ok()?.trim();
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim());
    }
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == "token")
        .map(|(_, value)| value.trim())
}

impl FromRequestParts<Arc<McState>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<McState>,
    ) -> Result<Principal, ApiError> {
        let token = request_token(parts)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("no bearer token found"))?;
        let principal = state.authenticate(token)?;
        if let Some(ctx) = parts.extensions.get::<AuditCtx>() {
            ctx.set_user(principal.audit_name());
        }
        Ok(principal)
    }
}
