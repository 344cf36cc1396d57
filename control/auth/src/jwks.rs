//! Where a verifier gets the MC's public keys: a fixed set, a JWKS file re-read when it
//! changes, or the MC's JWKS URL fetched at start, every [`REFRESH`], and soon after a token
//! names a key id it does not know (the MC rotated), at most once per [`MIN_REFETCH`], so a
//! stream of tokens with made-up key ids cannot turn into a stream of fetches.
//!
//! Readers load the current [`Verifier`] with one atomic load; a fetch or reload that fails
//! keeps the keys there were and is logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Uri;
use hyper::body::Bytes;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::access::AccessClaims;
use crate::cache::{Cached, TokenCache};
use crate::token::{KeyError, TokenError, Verifier};

/// Verified access tokens kept (slots): a busy DME's clients, each a few hundred bytes.
pub const CACHE_SLOTS: usize = 1 << 14;

/// An access token that verified, with its claims.
#[derive(Debug)]
pub struct VerifiedAccess {
    token: Box<str>,
    pub claims: AccessClaims,
}

impl Cached for VerifiedAccess {
    fn token(&self) -> &str {
        &self.token
    }

    fn exp(&self) -> i64 {
        self.claims.exp
    }
}

/// How often a URL source fetches the keys again.
pub const REFRESH: Duration = Duration::from_secs(300);
/// The least time between two fetches prompted by unknown key ids.
pub const MIN_REFETCH: Duration = Duration::from_secs(5);
/// How often a file source checks its file.
const FILE_POLL: Duration = Duration::from_secs(2);
/// The largest JWKS document read.
const MAX_JWKS_BYTES: usize = 256 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why keys could not be fetched or read.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("JWKS URL {0:?}: must be http:// or https:// with a host")]
    Url(String),
    #[error("JWKS URL {url}: https needs a CA to trust (--camara-jwks-ca)")]
    NoCa { url: String },
    #[error("fetching {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: not JSON: {source}")]
    Json {
        origin: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{origin}: {source}")]
    Keys {
        origin: String,
        #[source]
        source: KeyError,
    },
    #[error("CA file: {0}")]
    Ca(#[from] edge_tls::TlsError),
}

/// The current public keys, and how to get newer ones; verified tokens are cached (see
/// [`crate::cache`]), and the cache is cleared when a key is retired.
pub struct KeySource {
    current: ArcSwap<Verifier>,
    cache: TokenCache<VerifiedAccess>,
    /// Woken when a token names an unknown key id (URL sources only).
    refetch: Notify,
    origin: Origin,
}

enum Origin {
    Fixed,
    File(PathBuf),
    Url {
        url: String,
        tls: Option<Arc<rustls::ClientConfig>>,
    },
}

impl KeySource {
    /// Keys that never change.
    pub fn fixed(verifier: Verifier) -> Arc<KeySource> {
        Arc::new(KeySource {
            current: ArcSwap::from_pointee(verifier),
            cache: TokenCache::new(CACHE_SLOTS),
            refetch: Notify::new(),
            origin: Origin::Fixed,
        })
    }

    /// A JWKS file, read now (it must be valid) and re-read when its modification time changes.
    pub fn file(path: &Path) -> Result<Arc<KeySource>, JwksError> {
        let verifier = read_file(path)?;
        let source = Arc::new(KeySource {
            current: ArcSwap::from_pointee(verifier),
            cache: TokenCache::new(CACHE_SLOTS),
            refetch: Notify::new(),
            origin: Origin::File(path.to_path_buf()),
        });
        tokio::spawn(watch_file(Arc::downgrade(&source), path.to_path_buf()));
        Ok(source)
    }

    /// The MC's JWKS URL. `ca` is the PEM file of the CA that signed the MC's certificate
    /// (needed for https). The first fetch happens in the background: until it succeeds every
    /// token is refused as signed by an unknown key, and a fetch is retried at each.
    pub fn url(url: &str, ca: Option<&Path>) -> Result<Arc<KeySource>, JwksError> {
        let uri: Uri = url.parse().map_err(|_| JwksError::Url(url.into()))?;
        let tls = match uri.scheme_str() {
            Some("http") => None,
            Some("https") => {
                let ca = ca.ok_or_else(|| JwksError::NoCa { url: url.into() })?;
                Some(client_config(ca)?)
            }
            _ => return Err(JwksError::Url(url.into())),
        };
        if uri.host().is_none() {
            return Err(JwksError::Url(url.into()));
        }
        let source = Arc::new(KeySource {
            current: ArcSwap::from_pointee(Verifier::default()),
            cache: TokenCache::new(CACHE_SLOTS),
            refetch: Notify::new(),
            origin: Origin::Url {
                url: url.into(),
                tls,
            },
        });
        tokio::spawn(refresh_url(source.clone()));
        Ok(source)
    }

    /// The keys as they are now.
    pub fn verifier(&self) -> Arc<Verifier> {
        self.current.load_full()
    }

    /// Verifies an access token with the current keys, or finds it verified in the cache; an
    /// unknown key id asks a URL source to fetch the keys again (the token itself stays
    /// refused).
    pub fn verify_access(&self, token: &str, now: i64) -> Result<Arc<VerifiedAccess>, TokenError> {
        if let Some(hit) = self.cache.get(token, now) {
            return Ok(hit);
        }
        match self.current.load().verify_access(token, now) {
            Ok(claims) => {
                let entry = Arc::new(VerifiedAccess {
                    token: token.into(),
                    claims,
                });
                self.cache.insert_shared(entry.clone());
                Ok(entry)
            }
            Err(e) => {
                if let TokenError::UnknownKid(_) = &e {
                    self.refetch.notify_one();
                }
                Err(e)
            }
        }
    }

    /// Fetches (URL) or re-reads (file) the keys now, replacing the current ones on success.
    pub async fn reload(&self) -> Result<(), JwksError> {
        let verifier = match &self.origin {
            Origin::Fixed => return Ok(()),
            Origin::File(path) => read_file(path)?,
            Origin::Url { url, tls } => fetch(url, tls.clone()).await?,
        };
        let old = self.current.swap(Arc::new(verifier));
        let new = self.current.load();
        // Tokens of a retired key must stop verifying now, not when they expire.
        if old.kids().any(|k| !new.kids().any(|n| n == k)) {
            self.cache.clear();
        }
        Ok(())
    }
}

fn parse(origin: &str, bytes: &[u8]) -> Result<Verifier, JwksError> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|source| JwksError::Json {
            origin: origin.into(),
            source,
        })?;
    Verifier::from_jwks(&doc).map_err(|source| JwksError::Keys {
        origin: origin.into(),
        source,
    })
}

fn read_file(path: &Path) -> Result<Verifier, JwksError> {
    let bytes = std::fs::read(path).map_err(|source| JwksError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&path.display().to_string(), &bytes)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

async fn watch_file(source: std::sync::Weak<KeySource>, path: PathBuf) {
    let mut seen = modified(&path);
    loop {
        tokio::time::sleep(FILE_POLL).await;
        let Some(source) = source.upgrade() else {
            return;
        };
        let now = modified(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match source.reload().await {
            Ok(()) => tracing::info!(path = %path.display(), "reloaded the JWKS file"),
            Err(e) => tracing::warn!(error = %e, "keeping the previous keys"),
        }
    }
}

/// Lives as long as the process: a URL source is made once, at start.
async fn refresh_url(source: Arc<KeySource>) {
    let mut last: Option<Instant> = None;
    loop {
        if let Some(at) = last {
            let since = at.elapsed();
            if since < MIN_REFETCH {
                tokio::time::sleep(MIN_REFETCH - since).await;
            }
        }
        last = Some(Instant::now());
        match source.reload().await {
            Ok(()) => {
                tracing::debug!("fetched the MC's JWKS");
                let _ = tokio::time::timeout(REFRESH, source.refetch.notified()).await;
            }
            // Not reachable yet (it may be starting): try again soon, not in REFRESH.
            Err(e) => tracing::warn!(error = %e, "keeping the previous keys; retrying"),
        }
    }
}

fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, JwksError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in edge_tls::load_certs(ca)? {
        roots.add(cert).map_err(edge_tls::TlsError::Config)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(edge_tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(edge_tls::TlsError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One GET of the JWKS over HTTP/1.1, bounded in time and size.
async fn fetch(url: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Verifier, JwksError> {
    let err = |reason: String| JwksError::Fetch {
        url: url.into(),
        reason,
    };
    let body = tokio::time::timeout(FETCH_TIMEOUT, get(url, tls))
        .await
        .map_err(|_| err(format!("no answer within {FETCH_TIMEOUT:?}")))?
        .map_err(err)?;
    parse(url, &body)
}

async fn get(url: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Bytes, String> {
    let uri: Uri = url.parse().map_err(|e| format!("{e}"))?;
    let host = uri.host().ok_or("no host")?.to_string();
    let port = uri
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tcp = TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, host.as_str())
        .header(hyper::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    match tls {
        None => send(hyper_util::rt::TokioIo::new(tcp), req).await,
        Some(config) => {
            let name = rustls_pki_types::ServerName::try_from(bare)
                .map_err(|e| format!("server name: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            send(hyper_util::rt::TokioIo::new(stream), req).await
        }
    }
}

async fn send<T>(io: T, req: hyper::Request<Empty<Bytes>>) -> Result<Bytes, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("HTTP status {}", resp.status()));
    }
    let body = Limited::new(resp.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?;
    Ok(body.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::ACCESS_TYP;
    use crate::token::SigningKeys;

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "mc".into(),
            sub: "k".into(),
            client_id: "k".into(),
            org: "DevA".into(),
            scope: "simple-edge-discovery:read".into(),
            iat: now,
            exp: now + 60,
            jti: "j".into(),
        }
    }

    #[tokio::test]
    async fn a_file_source_follows_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let mut keys = SigningKeys::generate().unwrap();
        std::fs::write(&path, keys.jwks().to_string()).unwrap();
        let source = KeySource::file(&path).unwrap();
        let old = keys.sign_typed(ACCESS_TYP, &claims(100));
        assert!(source.verify_access(&old, 100).is_ok());

        keys.rotate().unwrap();
        let new = keys.sign_typed(ACCESS_TYP, &claims(100));
        assert!(matches!(
            source.verify_access(&new, 100),
            Err(TokenError::UnknownKid(_))
        ));
        std::fs::write(&path, keys.jwks().to_string()).unwrap();
        source.reload().await.unwrap();
        assert!(source.verify_access(&new, 100).is_ok());
        assert!(source.verify_access(&old, 100).is_ok());

        // A broken file keeps the keys there were.
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(source.reload().await, Err(JwksError::Json { .. })));
        assert!(source.verify_access(&new, 100).is_ok());

        // Retiring the old key: its token, verified (and cached) above, is refused at once.
        let old_kid = keys.kids()[1].to_string();
        assert!(keys.retire(&old_kid));
        std::fs::write(&path, keys.jwks().to_string()).unwrap();
        source.reload().await.unwrap();
        assert!(matches!(
            source.verify_access(&old, 100),
            Err(TokenError::UnknownKid(_))
        ));
        assert!(source.verify_access(&new, 100).is_ok());
    }

    #[test]
    fn bad_urls_are_named() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _g = rt.enter();
        assert!(matches!(
            KeySource::url("ftp://x/jwks", None),
            Err(JwksError::Url(_))
        ));
        assert!(matches!(
            KeySource::url("https://127.0.0.1:1/jwks", None),
            Err(JwksError::NoCa { .. })
        ));
    }
}
