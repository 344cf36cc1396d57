//! The API counters in Prometheus text format 0.0.4, and the coalescing of scrapes.
//!
//! Only (app, RPC) pairs that were called at least once are written, so an idle app costs a
//! scrape one word per shard and no text; the series are bounded by the apps in the tables
//! plus the unknown app (empty labels).

use std::fmt::Write as _;
use std::time::Instant;

use bytes::Bytes;

use super::{AppStats, LATENCY_LE, Method, Totals};

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One called RPC of one app, as read.
struct Row {
    /// `apporg="..",app="..",ver="..",method=".."`.
    labels: String,
    method: Method,
    totals: Totals,
}

/// The counters of the given apps (`[organization, name, version]`), sorted by labels.
pub fn render_apps<'a>(apps: impl Iterator<Item = ([&'a str; 3], &'a AppStats)>) -> String {
    let rows = rows(apps);
    // About 19 lines of some 110 bytes per row.
    let mut out = String::with_capacity(1024 + rows.len() * 2200);
    write_counters(&mut out, &rows);
    write_histogram(&mut out, &rows);
    out
}

/// The called RPCs of the apps, sorted by labels.
fn rows<'a>(apps: impl Iterator<Item = ([&'a str; 3], &'a AppStats)>) -> Vec<Row> {
    let mut rows = Vec::new();
    for (key, stats) in apps {
        let touched = stats.touched();
        if touched == 0 {
            continue;
        }
        let app = app_labels(key);
        for (m, method) in Method::ALL.into_iter().enumerate() {
            if touched & (1 << m) != 0 {
                rows.push(Row {
                    labels: format!("{app},method=\"{}\"", method.name()),
                    method,
                    totals: stats.totals(method),
                });
            }
        }
    }
    rows.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
    rows
}

/// The four counter families, each with all its samples together as the format requires.
fn write_counters(out: &mut String, rows: &[Row]) {
    type Pick = fn(&Totals) -> u64;
    let counters: [(&str, &str, bool, Pick); 4] = [
        (
            "dme_api_requests_total",
            "Requests, by app and RPC.",
            false,
            Totals::requests,
        ),
        (
            "dme_api_errors_total",
            "Requests answered with a non-OK status.",
            false,
            |t| t.errors,
        ),
        (
            "dme_api_found_cloudlet_total",
            "FindCloudlet and PlatformFindCloudlet requests answered FIND_FOUND.",
            true,
            |t| t.found,
        ),
        (
            "dme_api_not_found_total",
            "FindCloudlet and PlatformFindCloudlet requests answered FIND_NOTFOUND.",
            true,
            |t| t.not_found,
        ),
    ];
    for (name, help, finds_only, pick) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for row in rows.iter().filter(|r| !finds_only || r.method.finds()) {
            let _ = writeln!(out, "{name}{{{}}} {}", row.labels, pick(&row.totals));
        }
    }
}

/// The latency histogram: cumulative buckets, sum and count per row.
fn write_histogram(out: &mut String, rows: &[Row]) {
    let name = "dme_api_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time the DME spent on a request, by app and RPC.\n# TYPE {name} histogram"
    );
    for row in rows {
        let t = &row.totals;
        let mut cumulative = 0u64;
        for (le, n) in LATENCY_LE.iter().zip(&t.buckets) {
            cumulative = cumulative.wrapping_add(*n);
            let _ = writeln!(
                out,
                "{name}_bucket{{{},le=\"{le}\"}} {cumulative}",
                row.labels
            );
        }
        // Nanoseconds to seconds; f64's shortest form never uses an exponent in Rust.
        let secs = t.sum_ns as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{}}} {secs}", row.labels);
        let _ = writeln!(out, "{name}_count{{{}}} {cumulative}", row.labels);
    }
}

/// `apporg="..",app="..",ver=".."`, escaped.
fn app_labels([org, app, ver]: [&str; 3]) -> String {
    let mut s = String::with_capacity(24 + org.len() + app.len() + ver.len());
    for (i, (name, value)) in [("apporg", org), ("app", app), ("ver", ver)]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            s.push(',');
        }
        s.push_str(name);
        s.push_str("=\"");
        escape_label_value(value, &mut s);
        s.push('"');
    }
    s
}

/// A label value as the text format wants it: backslash, double quote and line feed escaped.
pub fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Coalesces scrapes. One render runs at a time, on a blocking thread: with thousands of busy
/// apps it takes milliseconds, which must not stall a runtime worker that serves requests. A
/// scrape is answered with a render that started after the scrape arrived (so it shows every
/// request answered before), shared by every scrape waiting for it; however many scrapers
/// there are, renders run one after another, never side by side.
#[derive(Default)]
pub struct Scrapes {
    last: tokio::sync::Mutex<Option<(Instant, Bytes)>>,
}

impl Scrapes {
    /// The text of a render that started after this call: the last render's if it did, else a
    /// new one by `render`. `None` if the render panicked.
    pub async fn get(&self, render: impl FnOnce() -> String + Send + 'static) -> Option<Bytes> {
        let arrived = Instant::now();
        let mut last = self.last.lock().await;
        if let Some((started, text)) = last.as_ref()
            && *started >= arrived
        {
            return Some(text.clone());
        }
        let started = Instant::now();
        let text = Bytes::from(tokio::task::spawn_blocking(render).await.ok()?);
        *last = Some((started, text.clone()));
        Some(text)
    }
}
