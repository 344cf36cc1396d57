//! `edgectl login` / `logout`: a token from the MC (`POST /api/v1/login`), kept with the MC's
//! address and CA in `login.json` (mode 0600, created so: never readable by others, even for
//! a moment) in `$EDGECTL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/edgeplane/`, else
//! `~/.config/edgeplane/`.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::transport::{chain, tls_config, tls_connect};

/// What a login leaves behind for later commands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFile {
    /// `https://HOST:PORT` (or `http://` on loopback).
    pub mc: String,
    /// The CA certificate the MC's certificate is checked against (absolute path).
    pub ca: Option<PathBuf>,
    pub token: String,
    pub username: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("no configuration directory: set EDGECTL_CONFIG_DIR, XDG_CONFIG_HOME or HOME")]
    NoConfigDir,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a login file ({source}): run edgectl login")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Http(String),
    #[error("login refused ({status}): {message}")]
    Refused { status: u16, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LoginError + '_ {
    move |source| LoginError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory of `login.json`.
pub fn config_dir() -> Result<PathBuf, LoginError> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("EDGECTL_CONFIG_DIR") {
        return Ok(d);
    }
    if let Some(d) = var("XDG_CONFIG_HOME") {
        return Ok(d.join("edgeplane"));
    }
    var("HOME")
        .map(|h| h.join(".config/edgeplane"))
        .ok_or(LoginError::NoConfigDir)
}

pub fn login_path() -> Result<PathBuf, LoginError> {
    Ok(config_dir()?.join("login.json"))
}

/// The stored login, if any.
pub fn load() -> Result<Option<LoginFile>, LoginError> {
    let path = login_path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| LoginError::Corrupt { path, source })
}

/// Writes `login` to a new file of mode 0600 (any older one is removed first, so that its
/// mode is not inherited).
pub fn save(login: &LoginFile) -> Result<PathBuf, LoginError> {
    let dir = config_dir()?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io(&dir))?;
    let path = dir.join("login.json");
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path)(e)),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io(&path))?;
    let text = serde_json::to_string_pretty(login).unwrap_or_default();
    f.write_all(text.as_bytes()).map_err(io(&path))?;
    Ok(path)
}

/// Removes the stored login; whether there was one.
pub fn remove() -> Result<bool, LoginError> {
    let path = login_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Asks the MC at `mc` for a token.
pub async fn request_token(
    mc: &str,
    ca: Option<&Path>,
    username: &str,
    password: &str,
) -> Result<String, LoginError> {
    let body = serde_json::json!({ "username": username, "password": password });
    let (status, reply) = post_json(mc, ca, "/api/v1/login", &body).await?;
    let field = |k: &str| reply.get(k).and_then(|v| v.as_str()).map(str::to_string);
    if status != 200 {
        return Err(LoginError::Refused {
            status,
            message: field("message").unwrap_or_else(|| reply.to_string()),
        });
    }
    field("token").ok_or_else(|| LoginError::Http(format!("the MC's reply has no token: {reply}")))
}

/// POSTs `body` as JSON to `base` + `path` (one HTTP/1.1 request on its own connection);
/// the status and the JSON reply.
pub async fn post_json(
    base: &str,
    ca: Option<&Path>,
    path: &str,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value), LoginError> {
    let http = |m: String| LoginError::Http(m);
    let uri: hyper::Uri = base
        .parse()
        .map_err(|e| http(format!("--mc {base:?}: {e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| http(format!("--mc {base:?}: no host")))?
        .to_string();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(http(format!("--mc {base:?}: use https://HOST:PORT"))),
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let req = hyper::Request::post(path)
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| http(format!("building the request: {e}")))?;
    let failed = |e: &dyn std::error::Error| http(format!("MC {base}: {}", chain(e)));
    let (status, bytes) = if https {
        let ca = ca.ok_or_else(|| http(format!("--mc {base} is HTTPS: give --ca PEM")))?;
        let config = tls_config(ca, &[b"http/1.1"]).map_err(http)?;
        let io = tls_connect(config, &host, port)
            .await
            .map_err(|e| failed(&*e))?;
        exchange(io, req).await.map_err(|e| failed(&*e))?
    } else {
        let io = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| failed(&e))?;
        exchange(io, req).await.map_err(|e| failed(&*e))?
    };
    let reply = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
    Ok((status, reply))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn exchange<IO>(io: IO, req: hyper::Request<Full<Bytes>>) -> Result<(u16, Bytes), BoxError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}
