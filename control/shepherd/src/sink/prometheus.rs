//! The Prometheus sink: keeps the latest value of every series and renders them as Prometheus
//! text on `GET /metrics` ([`serve`]). It needs nothing else running, so without InfluxDB
//! configured the metrics still reach whoever scrapes Shepherd.
//!
//! A point becomes one series per numeric field: metric `<measurement>_<field>` and the
//! point's tags as labels, both made valid Prometheus names ([`metric_name`]; e.g.
//! `appinst-connections` / `bytesSent` → `appinst_connections_bytesSent`). Every series is a
//! gauge: counters are rendered as the value last read. Booleans are 0/1; string fields have no
//! Prometheus form and are left out. A series not updated for `stale_after` disappears (the
//! instance is gone), and the table holds at most `max_series` (new ones beyond are dropped
//! and counted).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::{Counters, Flush, MetricsSink, SinkStats};
use crate::line::Point;
use crate::promtext::{escape_label_value, sanitize_name};

/// Labels of one series, sorted by name.
type Labels = Vec<(String, String)>;

#[derive(Debug)]
struct Entry {
    value: f64,
    seen: Instant,
}

#[derive(Debug, Default)]
struct State {
    metrics: BTreeMap<String, BTreeMap<Labels, Entry>>,
    series: usize,
}

impl State {
    fn prune(&mut self, now: Instant, stale_after: Duration) {
        for series in self.metrics.values_mut() {
            series.retain(|_, e| now.saturating_duration_since(e.seen) < stale_after);
        }
        self.metrics.retain(|_, s| !s.is_empty());
        self.series = self.metrics.values().map(BTreeMap::len).sum();
    }
}

/// The series table; share it (`Arc`) between the collection loop and [`serve`].
#[derive(Debug)]
pub struct PrometheusSink {
    state: Mutex<State>,
    counters: Counters,
    stale_after: Duration,
    max_series: usize,
}

/// The Prometheus metric name of `field` of `measurement`.
pub fn metric_name(measurement: &str, field: &str) -> String {
    sanitize_name(&format!("{measurement}_{field}"))
}

impl PrometheusSink {
    pub fn new(stale_after: Duration, max_series: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            counters: Counters::default(),
            stale_after,
            max_series,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves a table that is still consistent
        // enough to render.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores one point's numeric fields; `false` when it had none or the table was full.
    fn store(&self, state: &mut State, p: &Point, now: Instant) -> Option<bool> {
        let mut labels: Labels = Vec::with_capacity(p.tags.len());
        for (k, v) in &p.tags {
            let k = sanitize_name(k);
            // Two tags that sanitise alike: keep the first (a duplicate label is invalid).
            if !labels.iter().any(|(have, _)| *have == k) {
                labels.push((k, v.clone()));
            }
        }
        labels.sort();
        let mut numeric = false;
        for (field, value) in &p.fields {
            let Some(value) = value.as_f64() else {
                continue;
            };
            numeric = true;
            let series = state
                .metrics
                .entry(metric_name(&p.measurement, field))
                .or_default();
            if let Some(e) = series.get_mut(&labels) {
                *e = Entry { value, seen: now };
            } else if state.series < self.max_series {
                series.insert(labels.clone(), Entry { value, seen: now });
                state.series += 1;
            } else {
                return None;
            }
        }
        Some(numeric)
    }

    /// The table as Prometheus text (stale series are removed first).
    pub fn render(&self) -> String {
        let mut state = self.state();
        state.prune(Instant::now(), self.stale_after);
        let mut out = String::with_capacity(64 * state.series + 64);
        for (name, series) in &state.metrics {
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (labels, e) in series {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(k);
                        out.push_str("=\"");
                        escape_label_value(v, &mut out);
                        out.push('"');
                    }
                    out.push('}');
                }
                out.push(' ');
                value(e.value, &mut out);
                out.push('\n');
            }
        }
        out
    }
}

/// Integers without a fraction (counters read best that way), other values in the shortest
/// form that reads back exactly.
fn value(v: f64, out: &mut String) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v:?}");
    }
}

impl MetricsSink for PrometheusSink {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    fn record(&self, points: &[Point]) {
        let now = Instant::now();
        let mut state = self.state();
        if state.series + points.len() > self.max_series {
            state.prune(now, self.stale_after);
        }
        for p in points {
            match self.store(&mut state, p, now) {
                Some(true) => {
                    self.counters.accepted(1);
                    self.counters.written(1);
                }
                Some(false) => {
                    self.counters.accepted(1);
                    self.counters.failed(1);
                }
                None => self.counters.dropped(1),
            }
        }
    }

    fn flush(&self) -> Flush<'_> {
        Box::pin(std::future::ready(()))
    }

    fn stats(&self) -> SinkStats {
        self.counters.get()
    }
}

/// Connections served at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 64;

/// Serves `GET /metrics` (and `GET /`) from `sink` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    sink: Arc<PrometheusSink>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::debug!("metrics accept: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let sink = sink.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let svc = service_fn(move |req: Request<Incoming>| {
                let resp = respond(&req, &sink);
                async move { Ok::<_, Infallible>(resp) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        });
    }
}

fn respond(req: &Request<Incoming>, sink: &PrometheusSink) -> Response<Full<Bytes>> {
    let (status, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics" | "/") => (StatusCode::OK, sink.render()),
        (&Method::GET, _) => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
        _ => (StatusCode::METHOD_NOT_ALLOWED, "GET only\n".to_owned()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

#[cfg(test)]
mod tests;
