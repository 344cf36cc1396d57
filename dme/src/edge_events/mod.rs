//! Edge events: `StreamEdgeEvent`, the bidirectional stream on which the DME follows a moving
//! client and pushes exactly the changes that concern it. This module is the hub below the
//! DME's service (the registry of streams, the changes and their dispatch, the queues, the
//! statistics); the streams themselves, which match and sign through the service, are in
//! `crate::edge_stream`.
//!
//! Owns: the stream's protocol (INIT handshake, latency samples, location updates, custom
//! events, termination), the pushes driven by the region's changes ([`Change`], produced by
//! the mirror as it applies the controller's notices), the registry of open streams, and the
//! edge-events measurements. Does not own: the matching (`matcher`), cookies (`edge_cookie`),
//! or the transport (the gRPC route in `grpc` hands over the decoded stream).
//!
//! # Layout
//! - `crate::edge_stream`: a stream's state and decisions (`session`, free of I/O) and its
//!   task, its one writer; `outbox`: the bounded queue from that task to the transport.
//! - `registry`: streams grouped by instance, indexed by cloudlet and app.
//! - `stats`: statistics, buckets, tiles, and the measurements kept for `/metrics`.
//!
//! # Beyond upstream
//! - Each stream is its own task and the only writer of its stream; its outbox is bounded. A
//!   client that does not read fills only its own outbox, which is then counted and closed.
//! - A change reaches only the streams on the changed instance or cloudlet ([`registry`] says
//!   how it scales); a stream moves to its new instance when it is sent one, so an update is
//!   not repeated; streams are keyed per stream, not per session.
//! - Optional hysteresis ([`EdgeConfig::hysteresis_km`], [`EdgeConfig::keep_below_latency_ms`]);
//!   an idle timeout, and HTTP/2 keep-alive on the listener, for half-open streams.
//! - A standalone DME serves edge events on its document (no pushes: nothing changes).
//! - **Cookie renewal.** An edge-events cookie only names the instance a client was sent to
//!   and where the client then was; the session cookie is what authorises. A stream that stays
//!   open past the cookie's 10 minutes and then drops would otherwise leave the SDK, which
//!   reconnects with the cookie it holds, in an `Unauthenticated` loop until the app calls
//!   FindCloudlet again (upstream's D10). So INIT accepts an authentic cookie up to
//!   [`EdgeConfig::cookie_grace`] (default 24 h, the session cookie's lifetime) past its
//!   expiry; every `new_cloudlet` a stream is sent carries a fresh cookie.
//! - **REST.** No streaming HTTP form: `/v1/streamedgeevent` keeps answering 501. Upstream never
//!   served one; the one SDK that tried (C#, server-sent events) posts each client event as a
//!   separate request, which would need per-stream server state addressed across requests,
//!   and every SDK with edge events speaks gRPC. HTTP/3 is where a second transport belongs.

pub(crate) mod outbox;
pub(crate) mod registry;
pub mod stats;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use edge_model::{AppInstKey, AppKey, CloudletKey, CloudletState, HealthCheck, MaintenanceState};

pub use outbox::Outbox;
pub use registry::{Push, PushKind};

use crate::edge_cookie::inst_tag;
use crate::tables::{AppKeyRef, Tables};
use registry::{GroupKey, Registry};

/// Edge-events settings.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    /// A stream with no client message for this long is closed (`DeadlineExceeded`).
    pub idle_timeout: Duration,
    /// Events queued for a stream beyond which it counts as not reading and is closed.
    pub outbox: usize,
    /// A stream whose instance is usable moves only to one at least this much nearer (km).
    pub hysteresis_km: f64,
    /// When > 0: a stream whose client last reported an average latency below this (ms) to its
    /// usable instance is not moved to a nearer one.
    pub keep_below_latency_ms: f64,
    /// Per-stream message rate (messages/s; 0 = unlimited) and burst.
    pub messages_per_sec: u32,
    pub burst: u32,
    /// How long after its expiry an authentic edge-events cookie is still accepted on INIT.
    pub cookie_grace: Duration,
    /// Side of the location tiles of the measurements, km.
    pub tile_km: u32,
    /// HTTP/2 PING interval on the gRPC listener; a connection that leaves one unanswered for
    /// as long again is closed with its streams (half-open clients).
    pub keepalive: Duration,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            outbox: 32,
            hysteresis_km: 0.0,
            keep_below_latency_ms: 0.0,
            messages_per_sec: 20,
            burst: 40,
            cookie_grace: Duration::from_secs(24 * 3600),
            tile_km: 2,
            keepalive: Duration::from_secs(30),
        }
    }
}

/// A change of the region that streams may need to hear of, as the mirror saw it.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// An instance's health changed to a value other than OK, or it stopped being READY
    /// (`health` is then its health), or it was deleted (`HEALTH_CHECK_SERVER_FAIL`).
    Health {
        inst: AppInstKey,
        health: HealthCheck,
    },
    /// A cloudlet's online state changed to other than READY (`NotPresent`: deleted).
    CloudletState {
        cloudlet: CloudletKey,
        state: CloudletState,
    },
    /// A cloudlet's maintenance state changed to other than NORMAL_OPERATION.
    Maintenance {
        cloudlet: CloudletKey,
        state: MaintenanceState,
    },
    /// An instance became usable (new, recovered, its cloudlet back).
    Available { app: AppKey, inst: AppInstKey },
}

/// Counters of the streams, for `/metrics` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EdgeCounters {
    pub open: u64,
    pub opened: u64,
    pub refused: u64,
    pub overflow_closed: u64,
    pub idle_closed: u64,
    pub events_sent: u64,
    pub pushes: u64,
    pub push_overflows: u64,
}

/// The DME's edge-events state: open streams, measurements and counters.
#[derive(Default)]
pub struct Hub {
    pub(crate) registry: Registry,
    pub metrics: stats::Metrics,
    pub(crate) next_id: AtomicU64,
    pub(crate) opened: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) overflow_closed: AtomicU64,
    pub(crate) idle_closed: AtomicU64,
    pub(crate) events_sent: AtomicU64,
    pub(crate) pushes: AtomicU64,
    pub(crate) push_overflows: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Hub {
    pub fn counters(&self) -> EdgeCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EdgeCounters {
            open: self.registry.open(),
            opened: get(&self.opened),
            refused: get(&self.refused),
            overflow_closed: get(&self.overflow_closed),
            idle_closed: get(&self.idle_closed),
            events_sent: get(&self.events_sent),
            pushes: get(&self.pushes),
            push_overflows: get(&self.push_overflows),
        }
    }

    /// Hands each change to the streams it concerns. `tables` is the snapshot that already
    /// includes the changes (the streams re-read the current one when they act).
    pub fn dispatch(&self, tables: &Tables, changes: &[Change]) {
        for change in changes {
            let (kind, targets): (PushKind, Vec<_>) = match change {
                Change::Health { inst, health } => {
                    let tag = inst_tag(&inst.organization, &inst.name);
                    let clients = self.registry.clients(GroupKey::Inst(tag));
                    (
                        PushKind::Health(*health),
                        clients.into_iter().map(|c| (tag, c)).collect(),
                    )
                }
                Change::CloudletState { cloudlet, state } => (
                    PushKind::CloudletState(*state),
                    self.registry.on_cloudlet(cloudlet),
                ),
                Change::Maintenance { cloudlet, state } => (
                    PushKind::Maintenance(*state),
                    self.registry.on_cloudlet(cloudlet),
                ),
                Change::Available { app, inst } => {
                    let key = AppKeyRef {
                        organization: &app.organization,
                        name: &app.name,
                        version: &app.version,
                    };
                    let Some(table) = tables.app(&key) else {
                        continue;
                    };
                    let Some(id) = table.inst_id(&inst.organization, &inst.name) else {
                        continue;
                    };
                    if !table.usable.get(id) {
                        continue;
                    }
                    let rec = &table.insts[id as usize];
                    let tag = rec.edge_tag;
                    let near = self.registry.nearer(table.edge_tag, tag, rec.location);
                    (
                        PushKind::Available,
                        near.into_iter().map(|c| (tag, c)).collect(),
                    )
                }
            };
            for (about, client) in targets {
                self.send(&client, Push { kind, about });
            }
        }
    }

    /// Asks the clients of an instance to measure their latency; how many were asked.
    pub fn request_latency(&self, inst: &AppInstKey) -> usize {
        let tag = inst_tag(&inst.organization, &inst.name);
        let clients = self.registry.clients(GroupKey::Inst(tag));
        let push = Push {
            kind: PushKind::LatencyRequest,
            about: tag,
        };
        clients.iter().filter(|c| self.send(c, push)).count()
    }

    fn send(&self, client: &registry::Client, push: Push) -> bool {
        bump(&self.pushes);
        let sent = client.push(push);
        if !sent {
            bump(&self.push_overflows);
        }
        sent
    }

    /// The streams' counters in Prometheus text, with the measurements.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let c = self.counters();
        let _ = write!(
            out,
            "# TYPE dme_edge_streams_open gauge\ndme_edge_streams_open {}\n\
             # TYPE dme_edge_streams_opened_total counter\ndme_edge_streams_opened_total {}\n\
             # TYPE dme_edge_streams_refused_total counter\ndme_edge_streams_refused_total {}\n\
             # TYPE dme_edge_streams_closed_total counter\n\
             dme_edge_streams_closed_total{{reason=\"outbox_overflow\"}} {}\n\
             dme_edge_streams_closed_total{{reason=\"idle\"}} {}\n\
             # TYPE dme_edge_events_sent_total counter\ndme_edge_events_sent_total {}\n\
             # TYPE dme_edge_pushes_total counter\ndme_edge_pushes_total {}\n",
            c.open, c.opened, c.refused, c.overflow_closed, c.idle_closed, c.events_sent, c.pushes
        );
        self.metrics.render(out);
    }
}
