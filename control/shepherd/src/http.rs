//! The one HTTP client of the crate (InfluxDB writes, scrapes): hyper-util's legacy client over
//! plain HTTP, with a deadline on every request and a cap on every response body, so a slow or
//! misbehaving peer costs bounded time and memory.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    #[error("reading the body: {0}")]
    Body(String),
}

/// A response: status and (capped) body.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Response {
    /// The body as text, for logs: lossy UTF-8, at most `max` bytes.
    pub fn text(&self, max: usize) -> String {
        let end = self.body.len().min(max);
        String::from_utf8_lossy(&self.body[..end]).trim().to_owned()
    }
}

/// A cloneable client (clones share the connection pool).
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    max_body: usize,
}

impl HttpClient {
    /// A client whose requests (connect, send, read the whole body) take at most `timeout` and
    /// whose response bodies are cut off at `max_body` bytes.
    pub fn new(timeout: Duration, max_body: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(connector);
        Self {
            client,
            timeout,
            max_body,
        }
    }

    pub async fn get(&self, url: &str) -> Result<Response, HttpError> {
        self.send(http::Method::GET, url, None, Bytes::new()).await
    }

    pub async fn post(
        &self,
        url: &str,
        content_type: &'static str,
        body: Bytes,
    ) -> Result<Response, HttpError> {
        self.send(http::Method::POST, url, Some(content_type), body)
            .await
    }

    async fn send(
        &self,
        method: http::Method,
        url: &str,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Result<Response, HttpError> {
        let uri = parse_url(url)?;
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(Full::new(body)).map_err(|e| HttpError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let exchange = async {
            let resp = self.client.request(req).await?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), self.max_body)
                .collect()
                .await
                .map_err(|e| HttpError::Body(e.to_string()))?
                .to_bytes();
            Ok(Response { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))?
    }
}

/// An `http://host:port/...` URL (the legacy client's connector speaks plain HTTP only).
pub fn parse_url(url: &str) -> Result<Uri, HttpError> {
    let bad = |reason: &str| HttpError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http:// URLs are supported"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(uri)
}

/// Percent-encodes `s` for a URL query or form body (everything but unreserved characters).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencodes_reserved_and_non_ascii_bytes() {
        assert_eq!(urlencode("metrics"), "metrics");
        assert_eq!(
            urlencode("CREATE DATABASE \"m\""),
            "CREATE%20DATABASE%20%22m%22"
        );
        assert_eq!(urlencode("a&b=c/ü"), "a%26b%3Dc%2F%C3%BC");
    }

    #[test]
    fn accepts_only_plain_http_urls_with_a_host() {
        assert!(parse_url("http://127.0.0.1:8086/write?db=x").is_ok());
        for bad in [
            "https://127.0.0.1:8086",
            "127.0.0.1:8086",
            "http://",
            "",
            "ftp://h/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad:?}");
        }
    }
}
