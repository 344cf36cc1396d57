//! Counters per listener and per backend: relaxed atomics touched a few times per connection,
//! never per byte chunk on the copy path. The hot path writes them; [`crate::metrics`] renders
//! them. Depends on nothing else in the crate.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A gauge that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// Upper bounds (seconds) of the connect latency histogram buckets.
pub(crate) const LATENCY_BOUNDS: [f64; 8] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0];

/// A fixed-bucket latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    pub(crate) buckets: [Counter; LATENCY_BOUNDS.len()],
    pub(crate) count: Counter,
    pub(crate) sum_us: Counter,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = LATENCY_BOUNDS.iter().position(|b| s <= *b) {
            self.buckets[i].inc();
        }
        self.count.inc();
        self.sum_us
            .add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }
}

/// Per listener (public port).
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub accepted: Counter,
    pub active: Gauge,
    /// Connections closed because no backend could be connected.
    pub no_backend: Counter,
    pub tls_handshake_errors: Counter,
    pub udp_flows_active: Gauge,
    pub udp_flows_created: Counter,
    /// Datagrams dropped: flow table full.
    pub udp_drops_full: Counter,
    /// Datagrams dropped: socket buffer full or send error.
    pub udp_drops_send: Counter,
}

/// Per backend of a listener.
#[derive(Debug, Default)]
pub struct BackendStats {
    pub connections: Counter,
    pub connect_errors: Counter,
    /// Connections not sent to this backend because it was at its cap.
    pub cap_rejects: Counter,
    /// Client → backend bytes (TCP) or datagram bytes (UDP).
    pub bytes_in: Counter,
    /// Backend → client bytes.
    pub bytes_out: Counter,
    pub packets_in: Counter,
    pub packets_out: Counter,
    pub connect_latency: Histogram,
}
