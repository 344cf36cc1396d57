//! The InfluxDB sink: points go into a bounded buffer without waiting (when it is full they
//! are dropped and counted), and a background task writes them as line protocol to InfluxDB
//! 1.x, `POST {url}/write?db={db}&precision=ms`, in batches: when a batch is full, every flush
//! interval, and on [`MetricsSink::flush`]. It creates the database first (`CREATE DATABASE`
//! is idempotent) and again whenever a write says it is missing.
//!
//! A batch that fails (no answer in time, 5xx, database missing) is retried a bounded number of
//! times, then given up and counted as failed. While InfluxDB stays down each further batch
//! gets a single attempt until one succeeds, so a backlog drains in bounded time. A batch
//! InfluxDB refuses (400: bad points, partial write) is not retried.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::{Counters, Flush, MetricsSink, SinkStats};
use crate::http::{HttpClient, HttpError, parse_url, urlencode};
use crate::line::{Point, encode_all};
use crate::throttle::Throttle;

/// Where and how to write.
#[derive(Clone, Debug)]
pub struct InfluxConfig {
    /// Base URL of the server, `http://host:port`.
    pub url: String,
    /// Database (upstream: `metrics`).
    pub db: String,
    /// Points buffered before new ones are dropped.
    pub capacity: usize,
    /// Points per write request.
    pub batch: usize,
    /// Longest a point waits in a partial batch.
    pub flush_interval: Duration,
    /// Deadline of one request (connect, send, answer).
    pub timeout: Duration,
    /// Attempts per batch while the server is up (at least 1).
    pub attempts: u32,
    /// Pause before the second attempt; doubled before each further one.
    pub retry_delay: Duration,
}

impl InfluxConfig {
    /// Defaults: 10 000 points buffered, batches of 1 000, flushed every second, 5 s per
    /// request, 3 attempts 250 ms apart.
    pub fn new(url: impl Into<String>, db: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            db: db.into(),
            capacity: 10_000,
            batch: 1_000,
            flush_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            attempts: 3,
            retry_delay: Duration::from_millis(250),
        }
    }
}

/// Why the sink cannot start.
#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    #[error("InfluxDB URL: {0}")]
    Url(#[from] HttpError),
    #[error("empty InfluxDB database name")]
    NoDatabase,
}

/// The sink handle; the writer task ends when the handle is dropped (after writing what is
/// buffered).
#[derive(Debug)]
pub struct InfluxSink {
    points: mpsc::Sender<Point>,
    flushes: mpsc::Sender<oneshot::Sender<()>>,
    counters: Arc<Counters>,
}

impl InfluxSink {
    /// Validates the configuration and spawns the writer on the current tokio runtime.
    pub fn start(config: InfluxConfig) -> Result<Self, InfluxError> {
        if config.db.is_empty() {
            return Err(InfluxError::NoDatabase);
        }
        let base = config.url.trim_end_matches('/');
        let write_url = format!("{base}/write?db={}&precision=ms", urlencode(&config.db));
        let query_url = format!("{base}/query");
        parse_url(&write_url)?;
        let (points, points_rx) = mpsc::channel(config.capacity.max(1));
        let (flushes, flushes_rx) = mpsc::channel(16);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            http: HttpClient::new(config.timeout, 64 << 10),
            write_url,
            query_url,
            create_body: Bytes::from(format!("q={}", urlencode(&create_database(&config.db)))),
            config,
            counters: counters.clone(),
            created: false,
            down: false,
            warn: Throttle::default(),
        };
        tokio::spawn(writer.run(points_rx, flushes_rx));
        Ok(Self {
            points,
            flushes,
            counters,
        })
    }
}

impl MetricsSink for InfluxSink {
    fn name(&self) -> &'static str {
        "influx"
    }

    fn record(&self, points: &[Point]) {
        for (i, p) in points.iter().enumerate() {
            // Full: the rest cannot fit either (the writer is busy); skip the clones.
            if self.points.capacity() == 0 {
                self.counters.dropped((points.len() - i) as u64);
                return;
            }
            match self.points.try_send(p.clone()) {
                Ok(()) => self.counters.accepted(1),
                Err(_) => self.counters.dropped(1),
            }
        }
    }

    fn flush(&self) -> Flush<'_> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            if self.flushes.send(tx).await.is_ok() {
                let _ = rx.await;
            }
        })
    }

    fn stats(&self) -> SinkStats {
        self.counters.get()
    }
}

/// `CREATE DATABASE "db"`, the name quoted as an InfluxQL identifier.
fn create_database(db: &str) -> String {
    let quoted = db.replace('\\', "\\\\").replace('"', "\\\"");
    format!("CREATE DATABASE \"{quoted}\"")
}

/// The `dropped=N` of a 1.x partial-write error body.
fn partial_write_dropped(body: &str) -> Option<u64> {
    let rest = &body[body.find("dropped=")? + "dropped=".len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The background task that owns the connection to InfluxDB.
struct Writer {
    http: HttpClient,
    write_url: String,
    query_url: String,
    create_body: Bytes,
    config: InfluxConfig,
    counters: Arc<Counters>,
    /// The database is known to exist.
    created: bool,
    /// The last batch was given up: the next gets one attempt.
    down: bool,
    warn: Throttle,
}

/// How one write attempt went.
enum Outcome {
    Written,
    /// Refused for good; this many points were not stored.
    Refused(u64, String),
    Retry(String),
}

impl Writer {
    async fn run(
        mut self,
        mut points: mpsc::Receiver<Point>,
        mut flushes: mpsc::Receiver<oneshot::Sender<()>>,
    ) {
        let mut batch = Vec::with_capacity(self.config.batch.max(1));
        let mut tick =
            tokio::time::interval(self.config.flush_interval.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.create_database().await;
        loop {
            tokio::select! {
                p = points.recv() => {
                    let Some(p) = p else { break };
                    batch.push(p);
                    if batch.len() >= self.config.batch.max(1) {
                        self.write(&mut batch).await;
                    }
                }
                _ = tick.tick() => self.write(&mut batch).await,
                Some(done) = flushes.recv() => {
                    // Everything recorded before the flush call is already in the channel.
                    while let Ok(p) = points.try_recv() {
                        batch.push(p);
                        if batch.len() >= self.config.batch.max(1) {
                            self.write(&mut batch).await;
                        }
                    }
                    self.write(&mut batch).await;
                    let _ = done.send(());
                }
            }
        }
        self.write(&mut batch).await;
    }

    async fn create_database(&mut self) {
        let r = self
            .http
            .post(
                &self.query_url,
                "application/x-www-form-urlencoded",
                self.create_body.clone(),
            )
            .await;
        match r {
            // 1.x answers 200 with `{"results":[{"error":..}]}` for a refused statement.
            Ok(r) if r.status.is_success() && !r.text(4096).contains("\"error\"") => {
                self.created = true;
                tracing::info!(db = %self.config.db, url = %self.config.url, "InfluxDB database ready");
            }
            Ok(r) => self.warn(&format!(
                "creating the database: {} {}",
                r.status,
                r.text(300)
            )),
            Err(e) => self.warn(&format!("creating the database: {e}")),
        }
    }

    /// Writes and empties `batch`, retrying as the module doc says.
    async fn write(&mut self, batch: &mut Vec<Point>) {
        if batch.is_empty() {
            return;
        }
        let mut body = String::new();
        let (n, errors) = encode_all(batch.iter(), &mut body);
        batch.clear();
        if let Some(e) = errors.first() {
            self.counters.failed(errors.len() as u64);
            self.warn(&format!(
                "{} point(s) cannot be written, e.g.: {e}",
                errors.len()
            ));
        }
        if n == 0 {
            return;
        }
        let (n, body) = (n as u64, Bytes::from(body));
        let attempts = if self.down {
            1
        } else {
            self.config.attempts.max(1)
        };
        let mut delay = self.config.retry_delay;
        let mut last = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            match self.attempt(n, body.clone()).await {
                Outcome::Written => {
                    self.down = false;
                    self.counters.written(n);
                    return;
                }
                Outcome::Refused(lost, why) => {
                    self.down = false;
                    self.counters.written(n - lost);
                    self.counters.failed(lost);
                    self.warn(&format!("InfluxDB refused {lost} of {n} point(s): {why}"));
                    return;
                }
                Outcome::Retry(why) => last = why,
            }
        }
        self.down = true;
        self.counters.failed(n);
        self.warn(&format!(
            "gave up on {n} point(s) after {attempts} attempt(s): {last}"
        ));
    }

    async fn attempt(&mut self, n: u64, body: Bytes) -> Outcome {
        if !self.created {
            self.create_database().await;
        }
        let r = self
            .http
            .post(&self.write_url, "text/plain; charset=utf-8", body)
            .await;
        let r = match r {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(e.to_string()),
        };
        let text = r.text(4096);
        match r.status.as_u16() {
            200..=299 => Outcome::Written,
            404 => {
                self.created = false;
                Outcome::Retry(format!("404 {text}"))
            }
            400 => {
                let lost = partial_write_dropped(&text).map_or(n, |d| d.min(n));
                Outcome::Refused(lost, text)
            }
            // Other 4xx (413 too large, 401 auth) will not get better by retrying.
            s @ 401..=499 => Outcome::Refused(n, format!("{s} {text}")),
            s => Outcome::Retry(format!("{s} {text}")),
        }
    }

    fn warn(&mut self, msg: &str) {
        if let Some(held_back) = self.warn.allow(Instant::now()) {
            let stats = self.counters.get();
            tracing::warn!(
                url = %self.config.url, held_back, written = stats.written,
                dropped = stats.dropped, failed = stats.failed, "InfluxDB: {msg}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_the_database_name() {
        assert_eq!(create_database("metrics"), r#"CREATE DATABASE "metrics""#);
        assert_eq!(create_database(r#"a"b\c"#), r#"CREATE DATABASE "a\"b\\c""#);
    }

    #[test]
    fn reads_the_dropped_count_of_a_partial_write() {
        let body = r#"{"error":"partial write: invalid field name: input field \"time\" on measurement \"m\" is invalid dropped=3"}"#;
        assert_eq!(partial_write_dropped(body), Some(3));
        assert_eq!(
            partial_write_dropped(r#"{"error":"unable to parse"}"#),
            None
        );
        assert_eq!(partial_write_dropped("dropped="), None);
    }
}
