//! Edge-events statistics, by upstream's exact rules: the per-message [`statistics`] of a
//! LATENCY_SAMPLES event, the rolling aggregate kept for metrics ([`Rolling`]), the latency
//! buckets and the location tile. Pure functions; [`Metrics`] keeps the aggregates and renders
//! them next to the API counters.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use geodata::LatLon;

/// Statistics of one batch of samples: negatives dropped, 0 kept; sample (unbiased) variance;
/// with fewer than two samples variance and deviation are 0, with none everything is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub std_dev: f64,
    pub variance: f64,
    pub num_samples: u64,
}

pub fn statistics(samples: impl Iterator<Item = f64> + Clone) -> Stats {
    let kept = samples.filter(|v| *v >= 0.0);
    let (mut n, mut sum, mut min, mut max) = (0u64, 0.0, f64::INFINITY, f64::NEG_INFINITY);
    for v in kept.clone() {
        n += 1;
        sum += v;
        min = min.min(v);
        max = max.max(v);
    }
    if n == 0 {
        return Stats::default();
    }
    let avg = sum / n as f64;
    let variance = if n > 1 {
        kept.map(|v| (v - avg) * (v - avg)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    Stats {
        avg,
        min,
        max,
        std_dev: variance.sqrt(),
        variance,
        num_samples: n,
    }
}

/// Upper bounds (ms) of the latency buckets: [0,5), [5,10), [10,25), [25,50), [50,100), ≥100.
pub const BUCKETS_MS: [u32; 6] = [0, 5, 10, 25, 50, 100];

/// The bucket (index into [`BUCKETS_MS`], by lower bound) of a sample truncated to whole ms.
pub fn bucket(ms: f64) -> usize {
    let whole = ms.trunc();
    BUCKETS_MS
        .iter()
        .rposition(|&b| whole >= f64::from(b))
        .unwrap_or(0)
}

/// A rolling aggregate over every batch seen (batched Welford update, negatives skipped).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rolling {
    pub n: u64,
    pub avg: f64,
    m2: f64,
    pub min: f64,
    pub max: f64,
    pub total: f64,
    pub buckets: [u64; 6],
}

impl Rolling {
    pub fn add(&mut self, samples: impl Iterator<Item = f64>) {
        for x in samples.filter(|v| *v >= 0.0) {
            if self.n == 0 {
                self.min = x;
                self.max = x;
            }
            self.n += 1;
            let old = self.avg;
            self.avg += (x - old) / self.n as f64;
            self.m2 += (x - old) * (x - self.avg);
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            self.total += x;
            self.buckets[bucket(x)] += 1;
        }
    }

    pub fn variance(&self) -> f64 {
        self.m2 / self.n.saturating_sub(1).max(1) as f64
    }
}

const KM_PER_DEG_LAT: f64 = 110.57;
const KM_PER_DEG_LON: f64 = 111.32;

/// Upstream's location tile: `"longUnder,latUnder_longOver,latOver_side"`, indices from the
/// absolute coordinates at equatorial km per degree, signed by quadrant.
pub fn location_tile(at: LatLon, side_km: u32) -> String {
    let side = f64::from(side_km.max(1));
    let edge = |v: f64, km_per_deg: f64| {
        let idx = (v.abs() * km_per_deg / side).trunc();
        let sign = if v < 0.0 { -1.0 } else { 1.0 };
        (
            sign * idx * side / km_per_deg,
            sign * (idx + 1.0) * side / km_per_deg,
        )
    };
    let (lat_under, lat_over) = edge(at.lat(), KM_PER_DEG_LAT);
    let (lon_under, lon_over) = edge(at.lon(), KM_PER_DEG_LON);
    format!("{lon_under:.6},{lat_under:.6}_{lon_over:.6},{lat_over:.6}_{side_km}")
}

/// Most distinct label sets kept per measurement; beyond it new ones are counted, not kept.
pub const MAX_SERIES: usize = 100_000;

/// The edge-events measurements (upstream's `latency-metric`, `device-metric`,
/// `custom-metric`), keyed by their Prometheus label text. Updated per client message (not on
/// the matching hot path), rendered with the API counters.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Series>,
}

#[derive(Default)]
struct Series {
    latency: HashMap<String, (Rolling, u64)>,
    sessions: HashMap<String, u64>,
    custom: HashMap<String, Rolling>,
    dropped: u64,
}

impl Metrics {
    /// A latency batch from a client whose labels are `labels`, with its signal strength.
    pub fn latency(&self, labels: &str, samples: impl Iterator<Item = f64>, signal: u64) {
        let mut s = self.lock();
        if let Some((r, sig)) = s.latency.get_mut(labels) {
            r.add(samples);
            *sig = signal;
        } else if s.latency.len() < MAX_SERIES {
            let mut r = Rolling::default();
            r.add(samples);
            s.latency.insert(labels.to_string(), (r, signal));
        } else {
            s.dropped += 1;
        }
    }

    /// A client session (a stream opened, or its device or tile changed).
    pub fn session(&self, labels: &str) {
        let mut s = self.lock();
        if let Some(n) = s.sessions.get_mut(labels) {
            *n += 1;
        } else if s.sessions.len() < MAX_SERIES {
            s.sessions.insert(labels.to_string(), 1);
        } else {
            s.dropped += 1;
        }
    }

    /// A custom event.
    pub fn custom(&self, labels: &str, samples: impl Iterator<Item = f64>) {
        let mut s = self.lock();
        if let Some(r) = s.custom.get_mut(labels) {
            r.add(samples);
        } else if s.custom.len() < MAX_SERIES {
            let mut r = Rolling::default();
            r.add(samples);
            s.custom.insert(labels.to_string(), r);
        } else {
            s.dropped += 1;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Series> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Prometheus text of every series.
    pub fn render(&self, out: &mut String) {
        let s = self.lock();
        let _ = writeln!(
            out,
            "# HELP dme_edge_latency_ms Client-measured latency to its instance (latency-metric).\n\
             # TYPE dme_edge_latency_ms histogram"
        );
        for (labels, (r, signal)) in &s.latency {
            let mut cum = 0;
            for (b, n) in BUCKETS_MS.iter().skip(1).zip(&r.buckets) {
                cum += n;
                let _ = writeln!(
                    out,
                    "dme_edge_latency_ms_bucket{{{labels},le=\"{b}\"}} {cum}"
                );
            }
            let _ = writeln!(
                out,
                "dme_edge_latency_ms_bucket{{{labels},le=\"+Inf\"}} {}",
                r.n
            );
            let _ = writeln!(out, "dme_edge_latency_ms_sum{{{labels}}} {}", r.total);
            let _ = writeln!(out, "dme_edge_latency_ms_count{{{labels}}} {}", r.n);
            rolling_gauges(out, "dme_edge_latency_ms", labels, r);
            let _ = writeln!(out, "dme_edge_signal_strength{{{labels}}} {signal}");
        }
        let _ = writeln!(
            out,
            "# HELP dme_edge_sessions_total Client sessions per device and tile (device-metric).\n\
             # TYPE dme_edge_sessions_total counter"
        );
        for (labels, n) in &s.sessions {
            let _ = writeln!(out, "dme_edge_sessions_total{{{labels}}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP dme_edge_custom Custom client events (custom-metric).\n\
             # TYPE dme_edge_custom_count counter"
        );
        for (labels, r) in &s.custom {
            let _ = writeln!(out, "dme_edge_custom_count{{{labels}}} {}", r.n);
            rolling_gauges(out, "dme_edge_custom", labels, r);
        }
        let _ = writeln!(
            out,
            "# TYPE dme_edge_series_dropped_total counter\ndme_edge_series_dropped_total {}",
            s.dropped
        );
    }
}

fn rolling_gauges(out: &mut String, name: &str, labels: &str, r: &Rolling) {
    let var = r.variance();
    for (what, v) in [
        ("avg", r.avg),
        ("min", r.min),
        ("max", r.max),
        ("variance", var),
        ("stddev", var.sqrt()),
    ] {
        let _ = writeln!(out, "{name}_{what}{{{labels}}} {v}");
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
pub fn label(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    crate::api_stats::escape_label_value(value, out);
    out.push('"');
}

#[cfg(test)]
mod tests;
