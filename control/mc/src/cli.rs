//! `edgeplane mc`: the master controller's flags (environment `EDGEPLANE_MC_*`), start-up
//! (store, token keys, first administrator, TLS) and serving until SIGINT/SIGTERM.
//!
//! Plaintext HTTP is served only on loopback addresses: anywhere else `--tls-cert/--tls-key`
//! (or the `--mtls-*` certificate) is required, since the API carries passwords and tokens.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use edge_tls::{PeerPolicy, Role, ServerCert, TlsError};

use crate::auth::{HashParams, LockoutConfig, SigningKeys, TokenConfig, token::KeyError};
pub use crate::server::accounts::bootstrap::{
    ADMIN, BootstrapError, BootstrapParams, bootstrap_admin,
};
use crate::server::error::ApiError;
use crate::server::region::Regions;
use crate::server::state::{McConfig, McState};
use crate::store::{McStore, McStoreError, PgStore, RedbStore};

#[derive(clap::Args, Debug, Clone)]
pub struct McArgs {
    /// Address of the REST API (port 0: any free port; the bound address is printed).
    #[arg(long, env = "EDGEPLANE_MC_LISTEN", default_value = "127.0.0.1:9900")]
    pub listen: SocketAddr,
    /// Directory of the embedded store (`mc.redb`) and of the token key file.
    #[arg(
        long,
        env = "EDGEPLANE_MC_DATA_DIR",
        default_value = "./edgeplane-data/mc"
    )]
    pub data_dir: PathBuf,
    /// Store users, organisations and grants in PostgreSQL instead
    /// (`postgres://user@host:port/db`).
    #[arg(long, env = "EDGEPLANE_MC_POSTGRES", value_name = "URL")]
    pub postgres: Option<String>,
    /// Create the user `admin` (AdminManager) at start if missing, with the password in this
    /// file; a missing file is created (mode 0600) with a generated password.
    #[arg(long, env = "EDGEPLANE_MC_ADMIN_PASSWORD_FILE", value_name = "PATH")]
    pub admin_password_file: Option<PathBuf>,
    /// Token signing keys (default DATA_DIR/mc-signing-keys.json; created 0600 if missing).
    #[arg(long, env = "EDGEPLANE_MC_SIGNING_KEYS", value_name = "FILE")]
    pub signing_keys: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM; reloaded when it changes).
    #[arg(
        long,
        env = "EDGEPLANE_MC_TLS_CERT",
        requires = "tls_key",
        value_name = "PEM"
    )]
    pub tls_cert: Option<PathBuf>,
    #[arg(
        long,
        env = "EDGEPLANE_MC_TLS_KEY",
        requires = "tls_cert",
        value_name = "PEM"
    )]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS towards the regions' controllers; without --tls-cert the API is served with
    /// this certificate too.
    #[command(flatten)]
    pub mtls: edge_tls::cli::MtlsArgs,
    /// Consecutive failed logins that lock an account for --lockout1-secs.
    #[arg(long, env = "EDGEPLANE_MC_LOCKOUT_THRESHOLD1", default_value_t = 3)]
    pub lockout_threshold1: u32,
    #[arg(long, env = "EDGEPLANE_MC_LOCKOUT1_SECS", default_value_t = 60)]
    pub lockout1_secs: i64,
    /// Consecutive failed logins that lock an account for --lockout2-secs.
    #[arg(long, env = "EDGEPLANE_MC_LOCKOUT_THRESHOLD2", default_value_t = 10)]
    pub lockout_threshold2: u32,
    #[arg(long, env = "EDGEPLANE_MC_LOCKOUT2_SECS", default_value_t = 300)]
    pub lockout2_secs: i64,
    /// Lifetime of a password login's token.
    #[arg(long, env = "EDGEPLANE_MC_TOKEN_TTL_SECS", default_value_t = 24 * 3600)]
    pub token_ttl_secs: i64,
    /// Lifetime of an API-key login's token.
    #[arg(long, env = "EDGEPLANE_MC_APIKEY_TOKEN_TTL_SECS", default_value_t = 4 * 3600)]
    pub apikey_token_ttl_secs: i64,
    /// The OAuth issuer URL (`iss` of access tokens, base of the token endpoint and JWKS in
    /// the discovery document). Default: `https://<bound address>` (`http://` when serving
    /// plaintext on loopback).
    #[arg(long, env = "EDGEPLANE_MC_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// Lifetime of an OAuth access token (client-credentials grant, CAMARA APIs).
    #[arg(
        long,
        env = "EDGEPLANE_MC_ACCESS_TOKEN_TTL_SECS",
        default_value_t = 3600
    )]
    pub access_token_ttl_secs: i64,
    /// TESTS ONLY: Argon2id cost `M_KIB,T,P` of new password hashes instead of OWASP's
    /// 19456,2,1. Weak hashes; refused unless listening on a loopback address.
    #[arg(long, hide = true, value_name = "M_KIB,T,P")]
    pub insecure_password_hash: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(String),
    #[error("store: {0}")]
    Store(#[from] McStoreError),
    #[error("token keys: {0}")]
    Keys(#[from] KeyError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    #[error("starting: {0}")]
    State(#[from] ApiError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let what = what.into();
    move |source| CliError::Io { what, source }
}

/// The policies the flags give.
pub fn config(args: &McArgs) -> Result<McConfig, CliError> {
    let bad = |m: &str| Err(CliError::Config(m.to_string()));
    if args.lockout_threshold1 == 0 || args.lockout_threshold2 < args.lockout_threshold1 {
        return bad("--lockout-threshold1 must be >= 1 and <= --lockout-threshold2");
    }
    if args.lockout1_secs < 0 || args.lockout2_secs < 0 {
        return bad("--lockout1-secs and --lockout2-secs must not be negative");
    }
    if args.token_ttl_secs <= 0 || args.apikey_token_ttl_secs <= 0 {
        return bad("--token-ttl-secs and --apikey-token-ttl-secs must be positive");
    }
    if args.access_token_ttl_secs <= 0 {
        return bad("--access-token-ttl-secs must be positive");
    }
    let issuer = match &args.issuer {
        Some(url) => issuer_url(url)?,
        // Replaced by the bound address in `prepare` (the listen port may be 0).
        None => format!("https://{}", args.listen),
    };
    let hash = match &args.insecure_password_hash {
        None => HashParams::PRODUCTION,
        Some(_) if !args.listen.ip().is_loopback() => {
            return bad("--insecure-password-hash is for tests on a loopback address only");
        }
        Some(text) => parse_hash_params(text)?,
    };
    Ok(McConfig {
        lockout: LockoutConfig {
            threshold1: args.lockout_threshold1,
            lock1_secs: args.lockout1_secs,
            threshold2: args.lockout_threshold2,
            lock2_secs: args.lockout2_secs,
        },
        tokens: TokenConfig {
            user_ttl_secs: args.token_ttl_secs,
            apikey_ttl_secs: args.apikey_token_ttl_secs,
        },
        hash,
        secure_cookies: args.tls_cert.is_some() || args.mtls.mtls_cert.is_some(),
        issuer,
        access_ttl_secs: args.access_token_ttl_secs,
        ..McConfig::default()
    })
}

/// An issuer as given: an absolute http(s) URL without query or fragment; a trailing `/` is
/// dropped so that `{issuer}/oauth2/token` is well formed.
fn issuer_url(text: &str) -> Result<String, CliError> {
    let url = text.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.contains(['?', '#']) && !r.contains(char::is_whitespace) => {
            Ok(url.to_string())
        }
        _ => Err(CliError::Config(format!(
            "--issuer {text:?}: an absolute http(s) URL without query or fragment is required"
        ))),
    }
}

fn parse_hash_params(text: &str) -> Result<HashParams, CliError> {
    let n: Vec<u32> = text
        .split(',')
        .map(|p| p.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|e| CliError::Config(format!("--insecure-password-hash {text:?}: {e}")))?;
    match n[..] {
        [m_kib, t, p] => Ok(HashParams { m_kib, t, p }),
        _ => Err(CliError::Config(format!(
            "--insecure-password-hash {text:?}: expected M_KIB,T,P"
        ))),
    }
}

/// The store the flags name.
async fn open_store(args: &McArgs) -> Result<Arc<dyn McStore>, CliError> {
    Ok(match &args.postgres {
        Some(url) => Arc::new(PgStore::connect(url).await?),
        None => Arc::new(RedbStore::open(&args.data_dir).await?),
    })
}

/// The token keys: loaded, or generated and saved (0600) on first start.
fn signing_keys(path: &Path) -> Result<SigningKeys, CliError> {
    if path.exists() {
        return Ok(SigningKeys::load(path)?);
    }
    let keys = SigningKeys::generate()?;
    keys.save(path)?;
    tracing::info!(path = %path.display(), "generated token signing keys");
    Ok(keys)
}

/// The API's TLS config: --tls-cert/--tls-key, else the mutual-TLS certificate, else none.
fn api_tls(
    args: &McArgs,
    mtls: Option<&edge_tls::cli::Mtls>,
) -> Result<Option<Arc<rustls::ServerConfig>>, CliError> {
    let alpn: &[&[u8]] = &[b"h2", b"http/1.1"];
    let cert = match (&args.tls_cert, &args.tls_key, mtls) {
        (Some(c), Some(k), _) => ServerCert::from_files(c, k)?,
        (_, _, Some(m)) => m.cert.clone(),
        _ => return Ok(None),
    };
    Ok(Some(edge_tls::server_config(cert, alpn)?))
}

/// Everything `edgeplane mc` serves with, built from its flags.
pub struct Prepared {
    pub listener: tokio::net::TcpListener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub state: Arc<McState>,
}

/// Opens the store, loads the keys, bootstraps the admin, binds the listener.
pub async fn prepare(args: &McArgs) -> Result<Prepared, CliError> {
    let mut config = config(args)?;
    let mtls = args.mtls.load()?;
    let tls = api_tls(args, mtls.as_ref())?;
    if tls.is_none() && !args.listen.ip().is_loopback() {
        return Err(CliError::Config(format!(
            "refusing to serve plaintext HTTP on {}: give --tls-cert/--tls-key (or \
             --mtls-ca/--mtls-cert/--mtls-key), or listen on a loopback address",
            args.listen
        )));
    }
    std::fs::create_dir_all(&args.data_dir)
        .map_err(io_err(format!("data dir {}", args.data_dir.display())))?;
    let store = open_store(args).await?;
    let keys_path = args
        .signing_keys
        .clone()
        .unwrap_or_else(|| args.data_dir.join("mc-signing-keys.json"));
    let keys = signing_keys(&keys_path)?;
    if let Some(file) = &args.admin_password_file {
        let params = BootstrapParams {
            hash: config.hash,
            strength: config.strength,
        };
        if bootstrap_admin(store.as_ref(), file, &params)
            .await?
            .is_some()
        {
            tracing::info!(file = %file.display(), "created user {ADMIN}; its password is in the file");
        }
    }
    let client = match &mtls {
        Some(m) => Some(m.client(PeerPolicy::roles(&[Role::Controller]), &[b"h2"])?),
        None => None,
    };
    if let Some(m) = &mtls {
        m.watch();
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(io_err(format!("binding {}", args.listen)))?;
    if args.issuer.is_none() {
        let addr = listener
            .local_addr()
            .map_err(io_err("reading the bound address"))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        config.issuer = format!("{scheme}://{addr}");
    }
    let regions = Regions::new(store.clone(), client);
    let state = McState::new(store, regions, keys, config).await?;
    Ok(Prepared {
        listener,
        tls,
        state,
    })
}

/// Runs `edgeplane mc` until SIGINT or SIGTERM. Prints `MC API on http(s)://ADDR` (the bound
/// address) once serving.
pub async fn run(args: McArgs) -> Result<(), CliError> {
    let p = prepare(&args).await?;
    let addr = p
        .listener
        .local_addr()
        .map_err(io_err("reading the bound address"))?;
    let scheme = if p.tls.is_some() { "https" } else { "http" };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "MC API on {scheme}://{addr}");
    let _ = out.flush();
    crate::server::run(p.listener, p.tls, p.state, shutdown_signal())
        .await
        .map_err(io_err("serving the MC API"))
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("MC shutting down");
}
