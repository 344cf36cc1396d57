//! The open routes: `/api/v1/login` (password or API key) and `/api/v1/usercreate`.
//!
//! A password login is gated by the lockout ([`crate::auth::lockout`]): while an account is
//! locked every attempt gets 429 with `Retry-After`, before (and without) checking the
//! password, and does not count. A login naming no user costs one hash verification like a
//! wrong password, and both get the same 401 message. API-key logins have no lockout: their
//! secrets are 256 random bits.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{blocking, message};
use crate::auth::apikey::verify_secret;
use crate::auth::{
    Claims, Gate, LoginFailures, check_password, hash_password, needs_rehash, valid_name,
    verify_password,
};
use crate::model::{ApiKey, User};
use crate::server::audit::AuditCtx;
use crate::server::body::Json;
use crate::server::error::ApiError;
use crate::server::state::McState;
use crate::store::{FailedLogins, UserUpdate};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    apikeyid: Option<String>,
    #[serde(default)]
    apikey: Option<String>,
}

const BAD_LOGIN: &str = "Invalid username or password";

pub async fn login(
    State(state): State<Arc<McState>>,
    Extension(ctx): Extension<AuditCtx>,
    Json(req): Json<Login>,
) -> Result<Response, LoginError> {
    let (token, ttl, admin) = match req {
        Login {
            username: Some(user),
            password: Some(password),
            apikeyid: None,
            apikey: None,
        } => {
            ctx.set_user(user.clone());
            let token = password_login(&state, &user, password).await?;
            let admin = !state.grants().roles(&user, "").is_empty();
            (token, state.config.tokens.user_ttl_secs, admin)
        }
        Login {
            username: None,
            password: None,
            apikeyid: Some(id),
            apikey: Some(secret),
        } => {
            ctx.set_user(id.clone());
            let token = key_login(&state, &id, &secret).await?;
            (token, state.config.tokens.apikey_ttl_secs, false)
        }
        _ => {
            return Err(ApiError::bad_request(
                "give either \"username\" and \"password\", or \"apikeyid\" and \"apikey\"",
            )
            .into());
        }
    };
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("token={token}; Path=/; Max-Age={ttl}; HttpOnly; SameSite=Strict{secure}");
    let mut body = json!({ "token": token });
    if admin {
        body["admin"] = json!(true);
    }
    let mut resp = axum::Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    Ok(resp)
}

/// A refused login: an error, or the lockout's 429 with `Retry-After`.
pub enum LoginError {
    Api(ApiError),
    Locked { retry_after: i64, message: String },
}

impl From<ApiError> for LoginError {
    fn from(e: ApiError) -> LoginError {
        LoginError::Api(e)
    }
}

impl From<crate::store::McStoreError> for LoginError {
    fn from(e: crate::store::McStoreError) -> LoginError {
        LoginError::Api(e.into())
    }
}

impl IntoResponse for LoginError {
    fn into_response(self) -> Response {
        match self {
            LoginError::Api(e) => e.into_response(),
            LoginError::Locked {
                retry_after,
                message,
            } => {
                let mut resp =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response();
                resp.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
                resp
            }
        }
    }
}

async fn password_login(
    state: &Arc<McState>,
    name: &str,
    password: String,
) -> Result<String, LoginError> {
    let user = state.store.user(name).await?;
    let now = McState::now_secs();
    if let Some(u) = &user {
        let failures = LoginFailures {
            failed_logins: u.failed_logins,
            last_failed_login: u.last_failed_login,
        };
        let gate = failures.gate(now, &state.config.lockout);
        if let Gate::Locked { retry_after, .. } = gate {
            return Err(LoginError::Locked {
                retry_after,
                message: gate.message().unwrap_or_default(),
            });
        }
    }
    let phc = user
        .as_ref()
        .map_or(state.dummy_hash.clone(), |u| u.passhash.clone());
    let pw = password.clone();
    let ok = blocking(move || verify_password(&pw, &phc)).await?;
    let Some(user) = user else {
        return Err(ApiError::unauthorized(BAD_LOGIN).into());
    };
    match ok {
        Ok(true) => {}
        Ok(false) => {
            let update = UserUpdate {
                failed_logins: Some(FailedLogins::Increment { at: now }),
                ..UserUpdate::default()
            };
            state.store.update_user(&user.name, &update).await?;
            return Err(ApiError::unauthorized(BAD_LOGIN).into());
        }
        Err(e) => {
            tracing::error!(user = user.name, "stored password hash unreadable: {e}");
            return Err(ApiError::internal("cannot check the password").into());
        }
    }
    if user.locked {
        return Err(
            ApiError::forbidden("Account is locked, please contact an administrator").into(),
        );
    }
    after_success(state, &user, password).await?;
    Ok(state
        .keys
        .sign(&Claims::user(&user.name, now, &state.config.tokens)))
}

/// Resets the failure count, and re-hashes a password stored with other parameters.
async fn after_success(
    state: &Arc<McState>,
    user: &User,
    password: String,
) -> Result<(), ApiError> {
    let params = state.config.hash;
    let mut update = UserUpdate::default();
    if user.failed_logins > 0 {
        update.failed_logins = Some(FailedLogins::Reset);
    }
    if needs_rehash(&user.passhash, params) {
        update.passhash = blocking(move || hash_password(&password, params))
            .await?
            .ok();
    }
    if update != UserUpdate::default() {
        state.store.update_user(&user.name, &update).await?;
    }
    Ok(())
}

/// Checks an API key's id and secret: the key, or 401 (the same message for an unknown id and
/// a wrong secret). Shared by the API-key login and the OAuth token endpoint.
pub(crate) async fn verify_api_key(
    state: &McState,
    id: &str,
    secret: &str,
) -> Result<ApiKey, ApiError> {
    let bad = || ApiError::unauthorized("Invalid API key id or secret");
    let key = state.store.api_key(id).await?.ok_or_else(bad)?;
    if !verify_secret(&key.id, secret, &key.secret_hash) {
        return Err(bad());
    }
    Ok(key)
}

async fn key_login(state: &Arc<McState>, id: &str, secret: &str) -> Result<String, ApiError> {
    let key = verify_api_key(state, id, secret).await?;
    let now = McState::now_secs();
    Ok(state.keys.sign(&Claims::api_key(
        &key.id,
        &key.org,
        now,
        &state.config.tokens,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    name: String,
    email: String,
    /// The password in clear, under upstream's field name.
    passhash: String,
}

/// Creates a user (open, as upstream). 400 for a bad name, e-mail or weak password; 409 for a
/// name taken by a user or an organisation (ignoring case) or a taken e-mail.
pub async fn usercreate(
    State(state): State<Arc<McState>>,
    Extension(ctx): Extension<AuditCtx>,
    Json(req): Json<UserCreate>,
) -> Result<Json<serde_json::Value>, ApiError> {
    ctx.set_user(req.name.clone());
    valid_name(&req.name).map_err(|e| ApiError::bad_request(format!("Invalid name: {e}")))?;
    let email = req.email.trim();
    if email.len() < 3 || !email.contains('@') || email.chars().any(char::is_whitespace) {
        return Err(ApiError::bad_request(format!(
            "Invalid email address {email:?}"
        )));
    }
    if let Some(u) = state.store.user(&req.name).await? {
        return Err(ApiError::conflict(format!(
            "user {:?} already exists (case-insensitive)",
            u.name
        )));
    }
    if let Some(o) = state.store.org(&req.name).await? {
        return Err(ApiError::conflict(format!(
            "name {:?} is taken by organisation {:?} (case-insensitive)",
            req.name, o.name
        )));
    }
    check_password(
        &req.passhash,
        false,
        &[&req.name, email],
        &state.config.strength,
    )
    .map_err(|e| ApiError::bad_request(format!("Invalid password: {e}")))?;
    let params = state.config.hash;
    let pw = req.passhash;
    let passhash = blocking(move || hash_password(&pw, params))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let user = User {
        name: req.name,
        email: email.to_string(),
        passhash,
        locked: false,
        failed_logins: 0,
        last_failed_login: 0,
        created_at: McState::now_secs(),
    };
    state.store.create_user(&user).await?;
    state.refresh_grants().await?;
    Ok(message(format!("user {} created", user.name)))
}
