//! Shared set-up of shepherd's integration tests: the InfluxDB under test, canned HTTP
//! endpoints, fixture objects, and the sink conformance suite.
#![allow(dead_code)] // each test file uses its own part

pub mod conformance;
pub mod fixtures;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use shepherd::http::{HttpClient, urlencode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const INFLUX_ENV: &str = "EDGEPLANE_INFLUX_URL";

/// The InfluxDB to test against. Panics, saying how to start one, when it is not configured:
/// these tests must never pass without having run.
pub fn influx_url() -> String {
    match std::env::var(INFLUX_ENV) {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_owned(),
        _ => panic!(
            "{INFLUX_ENV} is not set, so there is no InfluxDB to test against. Start the \
             throwaway server and export its URL first:\n  \
             export {INFLUX_ENV}=$(control/shepherd/scripts/influx-test-server.sh start)\n\
             (stop it with `control/shepherd/scripts/influx-test-server.sh stop`; \
             scripts/test.sh does both)"
        ),
    }
}

/// A database name no other test (process) uses.
pub fn unique_db(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `"name"` as an InfluxQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Tags → value of one field's series.
pub type Series = BTreeMap<BTreeMap<String, String>, Value>;

/// Runs `q` on `db` and returns its series: `(name, tags, columns, rows)`.
pub async fn influx_query(
    url: &str,
    db: &str,
    q: &str,
) -> Vec<(
    String,
    BTreeMap<String, String>,
    Vec<String>,
    Vec<Vec<Value>>,
)> {
    let http = HttpClient::new(Duration::from_secs(10), 16 << 20);
    let full = format!("{url}/query?db={}&q={}", urlencode(db), urlencode(q));
    let r = http.get(&full).await.unwrap();
    assert!(r.status.is_success(), "{q}: {} {}", r.status, r.text(2000));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let result = &v["results"][0];
    assert!(result.get("error").is_none(), "{q}: {result}");
    let mut out = Vec::new();
    for s in result["series"].as_array().cloned().unwrap_or_default() {
        let tags = s["tags"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let columns = s["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        let rows = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().clone())
            .collect();
        out.push((
            s["name"].as_str().unwrap_or_default().to_owned(),
            tags,
            columns,
            rows,
        ));
    }
    out
}

/// Runs statement `q` (CREATE, DROP: 1.x refuses them on GET) and asserts it succeeded.
pub async fn influx_exec(url: &str, q: &str) {
    let http = HttpClient::new(Duration::from_secs(10), 1 << 20);
    let body = format!("q={}", urlencode(q));
    let r = http
        .post(
            &format!("{url}/query"),
            "application/x-www-form-urlencoded",
            body.into(),
        )
        .await
        .unwrap();
    let text = r.text(2000);
    assert!(
        r.status.is_success() && !text.contains("\"error\""),
        "{q}: {} {text}",
        r.status
    );
}

/// Serves `body` with status 200 to every request on 127.0.0.1 (port 0); returns the URL of
/// `/metrics`. Ends with the runtime.
pub async fn serve_text(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                // Read the request head (bounded), then answer.
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 65536 {
                    match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                        Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}/metrics")
}

/// A URL nothing listens on (a port bound, then released).
pub async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A URL whose server accepts connections and never answers. Ends with the runtime.
pub async fn silent_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    format!("http://{addr}")
}
