//! The DME's API counters, upstream's `dme-api` measurement: per app and RPC, requests, errors
//! (a non-OK status), FindCloudlet's found / not found, and a latency histogram. Upstream's
//! buckets were 0, 5, 10, 25, 50 and 100 ms with everything slower merged into the last, which
//! says nothing about a service that answers in microseconds; these run from 0.1 ms to 1 s, and
//! an explicit +Inf bucket keeps slow requests apart.
//!
//! Recording sits on every request's path, so it takes no lock and allocates nothing: it is a
//! few relaxed atomic adds. A popular app is served by every core at once, and one cache line
//! that every core writes would make the cores queue for it; so each app's counters come in a
//! few shards (one per core, at most [`MAX_SHARDS`]), each thread writes one of them (its own
//! while there are no more threads than shards), and a scrape adds the shards up. An app's counters live in its table (`AppTable::stats`) and
//! are handed on to every rebuilt table of the same app, so a rebuild does not reset them.
//!
//! Latency runs from when the front end started on the request (REST: before reading its
//! JSON; gRPC: once tonic has decoded it) until the reply is ready to encode. [`render`] writes
//! the counters in Prometheus text format.

mod deferred;
mod render;

use std::cell::Cell;
use std::num::NonZeroUsize;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

pub use deferred::{Deferred, count, deferring};
pub use render::{CONTENT_TYPE, Scrapes, escape_label_value, render_apps};

/// Every RPC of the client API, by upstream's names (the `method` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    RegisterClient,
    FindCloudlet,
    PlatformFindCloudlet,
    VerifyLocation,
    GetLocation,
    GetAppInstList,
    GetFqdnList,
    GetAppOfficialFqdn,
    QosPrioritySessionCreate,
    QosPrioritySessionDelete,
    GetQosPositionKpi,
    AddUserToGroup,
    StreamEdgeEvent,
}

/// The number of [`Method`]s.
pub const METHODS: usize = 13;

impl Method {
    pub const ALL: [Method; METHODS] = [
        Self::RegisterClient,
        Self::FindCloudlet,
        Self::PlatformFindCloudlet,
        Self::VerifyLocation,
        Self::GetLocation,
        Self::GetAppInstList,
        Self::GetFqdnList,
        Self::GetAppOfficialFqdn,
        Self::QosPrioritySessionCreate,
        Self::QosPrioritySessionDelete,
        Self::GetQosPositionKpi,
        Self::AddUserToGroup,
        Self::StreamEdgeEvent,
    ];

    /// The RPC's name in the protos, as upstream reported it.
    pub fn name(self) -> &'static str {
        match self {
            Self::RegisterClient => "RegisterClient",
            Self::FindCloudlet => "FindCloudlet",
            Self::PlatformFindCloudlet => "PlatformFindCloudlet",
            Self::VerifyLocation => "VerifyLocation",
            Self::GetLocation => "GetLocation",
            Self::GetAppInstList => "GetAppInstList",
            Self::GetFqdnList => "GetFqdnList",
            Self::GetAppOfficialFqdn => "GetAppOfficialFqdn",
            Self::QosPrioritySessionCreate => "QosPrioritySessionCreate",
            Self::QosPrioritySessionDelete => "QosPrioritySessionDelete",
            Self::GetQosPositionKpi => "GetQosPositionKpi",
            Self::AddUserToGroup => "AddUserToGroup",
            Self::StreamEdgeEvent => "StreamEdgeEvent",
        }
    }

    /// Whether the RPC finds a cloudlet (and so has found / not-found counters).
    pub fn finds(self) -> bool {
        matches!(self, Self::FindCloudlet | Self::PlatformFindCloudlet)
    }
}

/// Upper bounds of the latency buckets, in nanoseconds (a request of exactly a bound counts in
/// that bound's bucket, as Prometheus' `le` says); a last bucket takes everything slower.
pub const LATENCY_BOUNDS_NS: [u64; 12] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
];

/// The buckets' `le` labels, in seconds, +Inf last.
pub const LATENCY_LE: [&str; BUCKETS] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "1", "+Inf",
];

/// Latency buckets, the +Inf one included.
pub const BUCKETS: usize = LATENCY_BOUNDS_NS.len() + 1;

/// The bucket a latency of `ns` nanoseconds falls in.
pub fn bucket(ns: u64) -> usize {
    // Nearly every request: no search.
    if ns <= LATENCY_BOUNDS_NS[0] {
        return 0;
    }
    LATENCY_BOUNDS_NS.partition_point(|&bound| bound < ns)
}

/// How a request ended, as far as the counters care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A non-OK status.
    Error,
    /// FindCloudlet answered FIND_FOUND.
    Found,
    /// FindCloudlet answered FIND_NOTFOUND (not an error, as upstream).
    NotFound,
}

/// One RPC's counters in one shard. Requests are not counted separately: each request lands in
/// exactly one latency bucket, so the buckets add up to the request count.
#[derive(Default)]
struct Counters {
    buckets: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
    errors: AtomicU64,
    found: AtomicU64,
    not_found: AtomicU64,
}

/// One shard of an app's counters. Aligned to two cache lines (the pair the CPU prefetches
/// together) so that two shards never share a line.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    /// Bit `m` set once RPC `m` was recorded here: a scrape reads only those counters.
    touched: AtomicU32,
    methods: [Counters; METHODS],
}

/// Most shards per app. A shard takes 1.75 KB per app (four: 70 B per instance in a region of
/// 100 instances per app); beyond a few, two busy cores sharing a shard cost less than more
/// memory would.
pub const MAX_SHARDS: usize = 4;

/// Shards per app: one per core, up to [`MAX_SHARDS`].
fn shard_count() -> usize {
    static COUNT: LazyLock<usize> = LazyLock::new(|| {
        std::thread::available_parallelism()
            .map_or(1, NonZeroUsize::get)
            .clamp(1, MAX_SHARDS)
    });
    *COUNT
}

/// The calling thread's shard: threads take indexes in turn on their first request, so the
/// runtime's workers (started together) spread over the shards.
fn thread_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SHARD.with(|s| {
        let shard = s.get();
        if shard != usize::MAX {
            return shard;
        }
        let shard = NEXT.fetch_add(1, Relaxed) % shard_count();
        s.set(shard);
        shard
    })
}

/// One app's counters (or the unknown app's), sharded.
pub struct AppStats {
    shards: Box<[Shard]>,
}

impl Default for AppStats {
    fn default() -> Self {
        Self::with_shards(shard_count())
    }
}

impl AppStats {
    /// With `n` shards (at least one); the tests choose `n`.
    fn with_shards(n: usize) -> Self {
        Self {
            shards: (0..n.max(1)).map(|_| Shard::default()).collect(),
        }
    }

    /// Counts one request of `method` that ended with `outcome` after `elapsed`.
    pub fn record(&self, method: Method, outcome: Outcome, elapsed: Duration) {
        self.record_in(thread_shard(), method, outcome, elapsed);
    }

    fn record_in(&self, shard: usize, method: Method, outcome: Outcome, elapsed: Duration) {
        // Every thread's index is below the shard count, which every app shares; `get` only
        // keeps this from ever panicking.
        let Some(shard) = self.shards.get(shard).or(self.shards.first()) else {
            return;
        };
        let bit = 1 << method as u32;
        // Written once per shard and RPC; after that only read.
        if shard.touched.load(Relaxed) & bit == 0 {
            shard.touched.fetch_or(bit, Relaxed);
        }
        let c = &shard.methods[method as usize];
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        c.buckets[bucket(ns)].fetch_add(1, Relaxed);
        c.sum_ns.fetch_add(ns, Relaxed);
        let extra = match outcome {
            Outcome::Ok => return,
            Outcome::Error => &c.errors,
            Outcome::Found => &c.found,
            Outcome::NotFound => &c.not_found,
        };
        extra.fetch_add(1, Relaxed);
    }

    /// The RPCs recorded at least once (bit `m` for `Method::ALL[m]`).
    pub fn touched(&self) -> u32 {
        self.shards
            .iter()
            .fold(0, |acc, s| acc | s.touched.load(Relaxed))
    }

    /// The counters of `method`, summed over the shards.
    pub fn totals(&self, method: Method) -> Totals {
        let mut t = Totals::default();
        for shard in &self.shards {
            let c = &shard.methods[method as usize];
            // Wrapping, as the atomics themselves do: a counter never panics.
            let add = |sum: &mut u64, a: &AtomicU64| *sum = sum.wrapping_add(a.load(Relaxed));
            for (sum, b) in t.buckets.iter_mut().zip(&c.buckets) {
                add(sum, b);
            }
            add(&mut t.sum_ns, &c.sum_ns);
            add(&mut t.errors, &c.errors);
            add(&mut t.found, &c.found);
            add(&mut t.not_found, &c.not_found);
        }
        t
    }
}

/// One RPC's counters as read: per-bucket (not cumulative) request counts, the latency sum, and
/// the outcome counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub buckets: [u64; BUCKETS],
    pub sum_ns: u64,
    pub errors: u64,
    pub found: u64,
    pub not_found: u64,
}

impl Totals {
    /// The request count: every request is in exactly one bucket.
    pub fn requests(&self) -> u64 {
        self.buckets.iter().fold(0, |n, b| n.wrapping_add(*b))
    }
}

#[cfg(test)]
mod tests;
