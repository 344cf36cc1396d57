//! The first administrator: at start, if no user `admin` exists, it is created with the
//! password in a file (created 0600 with a generated one when missing) and granted
//! AdminManager on the empty organisation.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

use crate::auth::{HashParams, PasswordError, StrengthPolicy, check_password, hash_password};
use crate::model::{Grant, User};
use crate::rbac::Role;
use crate::store::{McStore, McStoreError};

/// The administrator's user name.
pub const ADMIN: &str = "admin";

/// How the administrator's password is hashed and checked.
#[derive(Clone, Copy, Debug)]
pub struct BootstrapParams {
    pub hash: HashParams,
    pub strength: StrengthPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("admin password file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin password file {path}: {source}")]
    Password {
        path: PathBuf,
        source: PasswordError,
    },
    #[error("creating the admin user: {0}")]
    Store(#[from] McStoreError),
    #[error("no system randomness for the admin password")]
    Random,
}

/// Creates the administrator if missing. Returns the password when it was generated now
/// (the caller shows it once); `None` when the admin existed or the file supplied it.
pub async fn bootstrap_admin(
    store: &dyn McStore,
    password_file: &Path,
    params: &BootstrapParams,
) -> Result<Option<String>, BootstrapError> {
    if store.user(ADMIN).await?.is_some() {
        return Ok(None);
    }
    let io = |source| BootstrapError::Io {
        path: password_file.to_path_buf(),
        source,
    };
    let (password, generated) = match std::fs::read_to_string(password_file) {
        Ok(text) => (text.trim_end_matches(['\n', '\r']).to_string(), false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (write_new(password_file)?, true),
        Err(e) => return Err(io(e)),
    };
    check_password(&password, true, &[ADMIN], &params.strength).map_err(|source| {
        BootstrapError::Password {
            path: password_file.to_path_buf(),
            source,
        }
    })?;
    let passhash =
        hash_password(&password, params.hash).map_err(|source| BootstrapError::Password {
            path: password_file.to_path_buf(),
            source,
        })?;
    let user = User {
        name: ADMIN.into(),
        email: "admin@localhost".into(),
        passhash,
        locked: false,
        failed_logins: 0,
        last_failed_login: 0,
        created_at: crate::server::state::McState::now_secs(),
    };
    match store.create_user(&user).await {
        Ok(()) => {}
        // Another MC on the same store got there first.
        Err(McStoreError::AlreadyExists { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    store
        .add_grant(&Grant {
            subject: ADMIN.into(),
            org: String::new(),
            role: Role::AdminManager.to_string(),
        })
        .await?;
    Ok(generated.then_some(password))
}

/// A random password (256 bits, base64url) written to a new 0600 file.
fn write_new(path: &Path) -> Result<String, BootstrapError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| BootstrapError::Random)?;
    let password = URL_SAFE_NO_PAD.encode(bytes);
    let io = |source| BootstrapError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(format!("{password}\n").as_bytes())
        .map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(password)
}
