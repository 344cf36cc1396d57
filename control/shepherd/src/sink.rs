//! Where points go: the [`MetricsSink`] trait and its two backends, [`influx`] (batched line
//! protocol to InfluxDB 1.x's `/write`) and [`prometheus`] (the latest value of each series on
//! `GET /metrics`). Both pass the one conformance suite in `tests/common/conformance.rs`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::line::Point;

pub mod influx;
pub mod prometheus;

pub use influx::{InfluxConfig, InfluxError, InfluxSink};
pub use prometheus::PrometheusSink;

/// What [`MetricsSink::flush`] returns.
pub type Flush<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A destination for points. Collection calls [`record`](Self::record) on every sink after
/// every round, so a sink must never make it wait: a backend that is down or slow loses
/// points (counted), it does not hold up collection.
pub trait MetricsSink: Send + Sync {
    /// Short name for logs (`influx`, `prometheus`).
    fn name(&self) -> &'static str;

    /// Takes `points` without waiting. What the sink cannot take now is dropped and counted.
    fn record(&self, points: &[Point]);

    /// Resolves once every point recorded before the call is written or given up. Takes
    /// bounded time (the backend's timeouts and retries), but may take a while: callers that
    /// cannot wait put their own deadline on it.
    fn flush(&self) -> Flush<'_>;

    /// The sink's counters so far.
    fn stats(&self) -> SinkStats;
}

/// Counters of a sink, in points. Every point offered is either `accepted` or `dropped`;
/// every accepted point ends up `written` or `failed` (or is still on its way).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Taken into the sink.
    pub accepted: u64,
    /// Stored by the backend.
    pub written: u64,
    /// Turned away on arrival: the buffer was full (or the sink is shutting down, or the
    /// series table is full).
    pub dropped: u64,
    /// Accepted but given up: the backend refused them or stayed unreachable through every
    /// retry, or the point cannot be represented.
    pub failed: u64,
}

/// The atomics behind [`SinkStats`], shared between a sink and its background task.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    accepted: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    pub(crate) fn accepted(&self, n: u64) {
        self.accepted.fetch_add(n, Relaxed);
    }

    pub(crate) fn written(&self, n: u64) {
        self.written.fetch_add(n, Relaxed);
    }

    pub(crate) fn dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Relaxed);
    }

    pub(crate) fn failed(&self, n: u64) {
        self.failed.fetch_add(n, Relaxed);
    }

    pub(crate) fn get(&self) -> SinkStats {
        SinkStats {
            accepted: self.accepted.load(Relaxed),
            written: self.written.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }
}
