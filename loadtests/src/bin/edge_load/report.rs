//! The figures `edge-load` collects, their JSON and the printed report.

use super::*;

/// Latency figures of one kind of push, ms.
#[derive(Default)]
pub(super) struct Latency {
    pub(super) hist: Option<Histogram<u64>>,
    pub(super) expected: u64,
    pub(super) reached: u64,
}

impl Latency {
    pub(super) fn record(&mut self, d: Duration) -> Result<()> {
        let h = match &mut self.hist {
            Some(h) => h,
            None => self.hist.insert(Histogram::new(3)?),
        };
        h.record(d.as_micros() as u64)?;
        Ok(())
    }

    pub(super) fn q(&self, q: f64) -> f64 {
        self.hist
            .as_ref()
            .map_or(f64::NAN, |h| h.value_at_quantile(q) as f64 / 1000.0)
    }

    pub(super) fn max(&self) -> f64 {
        self.hist
            .as_ref()
            .map_or(f64::NAN, |h| h.max() as f64 / 1000.0)
    }

    pub(super) fn line(&self) -> String {
        format!(
            "{}/{} clients reached; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.reached,
            self.expected,
            self.q(0.5),
            self.q(0.99),
            self.max()
        )
    }

    pub(super) fn json(&self) -> Value {
        json!({
            "expected": self.expected, "reached": self.reached,
            "p50_ms": num(self.q(0.5)), "p99_ms": num(self.q(0.99)), "max_ms": num(self.max()),
        })
    }
}

/// NaN is no JSON number.
pub(super) fn num(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

#[derive(Default)]
pub(super) struct Report {
    pub(super) streams: usize,
    pub(super) connections: usize,
    pub(super) cloudlets: usize,
    pub(super) prepared: usize,
    pub(super) prepare_failed: BTreeMap<String, u64>,
    pub(super) opened: u64,
    pub(super) open_failed: u64,
    pub(super) open_secs: f64,
    /// VmRSS: region loaded, clients registered, streams open and idle, the same after the
    /// paced load, every stream closed.
    pub(super) rss: [Memory; 5],
    pub(super) load_secs: f64,
    pub(super) load: Snapshot,
    /// After the load and a drain second.
    pub(super) drained: Snapshot,
    pub(super) per_second: Vec<(u64, u64)>,
    pub(super) dme_cpu_secs: f64,
    pub(super) own_cpu_secs: f64,
    pub(super) cpu_window_secs: f64,
    pub(super) home: Snapshot,
    /// Clients whose last `new_cloudlet` is not their home cloudlet after the return home.
    pub(super) not_home: usize,
    pub(super) maintenance: Latency,
    pub(super) restore: Latency,
    pub(super) with_new_cloudlet: u64,
    pub(super) new_cloudlet_elsewhere: u64,
    pub(super) unexpected: BTreeMap<String, u64>,
    pub(super) api_ms: Vec<f64>,
    pub(super) ended_unexpectedly: u64,
    pub(super) closed_after_terminate: u64,
    pub(super) not_closed_after_terminate: u64,
    pub(super) problems: BTreeMap<String, u64>,
    pub(super) floor: Option<Floor>,
    /// `--reopen`: streams opened again, memory with them open and after they closed again.
    pub(super) reopen: Option<(u64, Memory, Memory)>,
    /// The DME's edge-events counters (`/metrics`) at the end.
    pub(super) edge_counters: Vec<String>,
}

impl Report {
    pub(super) fn per_stream(&self, from: usize) -> f64 {
        (self.rss[2].rss as f64 - self.rss[from].rss as f64) / self.opened.max(1) as f64
    }

    /// [`Self::per_stream`] of the anonymous memory.
    pub(super) fn per_stream_anon(&self, from: usize) -> f64 {
        (self.rss[2].anon as f64 - self.rss[from].anon as f64) / self.opened.max(1) as f64
    }

    pub(super) fn json(&self) -> Value {
        let by_type = |s: &Snapshot| {
            (0..EVENT_KINDS)
                .filter(|&k| s.received[k] > 0)
                .map(|k| (streams::event_name(k).to_string(), json!(s.received[k])))
                .collect::<serde_json::Map<_, _>>()
        };
        let secs = self.load_secs.max(1e-9);
        json!({
            "streams": self.streams, "connections": self.connections, "cloudlets": self.cloudlets,
            "clients_prepared": self.prepared, "prepare_failed": self.prepare_failed,
            "streams_opened": self.opened, "open_failed": self.open_failed,
            "open_secs": self.open_secs,
            "memory": {
                "rss_region_bytes": self.rss[0].rss, "rss_registered_bytes": self.rss[1].rss,
                "rss_streams_open_bytes": self.rss[2].rss,
                "rss_streams_open_after_load_bytes": self.rss[3].rss,
                "rss_streams_closed_bytes": self.rss[4].rss,
                "rss_anon_bytes": self.rss.map(|m| m.anon),
                "anon_bytes_per_stream": num(self.per_stream_anon(1)),
                "bytes_per_stream": num(self.per_stream(1)),
                "bytes_per_stream_with_session": num(self.per_stream(0)),
                "floor_bytes_per_stream": self.floor.map(|f| num(f.per_stream())),
                "floor_anon_bytes_per_stream": self.floor.map(|f| num(f.per_stream_anon())),
                "floor_cpu_us_per_client_message":
                    self.floor.map(|f| num(f.cpu_us_per_message())),
                "reopen": self.reopen.map(|(n, open, closed)| json!({
                    "opened": n, "rss_open_bytes": open.rss, "rss_closed_bytes": closed.rss,
                })),
            },
            "load": {
                "secs": self.load_secs,
                "client_messages": self.load.sent(),
                "client_messages_per_sec": self.load.sent() as f64 / secs,
                "location_updates": self.load.sent_location,
                "latency_samples": self.load.sent_latency,
                "crossings": self.load.crossings,
                "server_events": self.load.received_total(),
                "server_events_per_sec": self.load.received_total() as f64 / secs,
                "events_by_type": by_type(&self.load),
                "events_by_type_after_drain": by_type(&self.drained),
                "per_second_sent_received": self.per_second,
                "not_sent_backpressure": self.load.backpressure,
                "ended_unexpectedly": self.load.ended_unexpectedly,
                "dme_cpu_secs": self.dme_cpu_secs,
                "dme_cpu_window_secs": self.cpu_window_secs,
                "dme_cpu_us_per_client_message":
                    num(self.dme_cpu_secs * 1e6 / self.load.sent().max(1) as f64),
                "generator_cpu_secs": self.own_cpu_secs,
            },
            "back_home": {
                "location_updates": self.home.sent_home,
                "cloudlet_updates": self.home.kind(ServerEventType::EventCloudletUpdate),
                "clients_not_sent_home": self.not_home,
            },
            "push": {
                "maintenance": self.maintenance.json(),
                "restore": self.restore.json(),
                "maintenance_with_new_cloudlet": self.with_new_cloudlet,
                "maintenance_new_cloudlet_elsewhere": self.new_cloudlet_elsewhere,
                "unexpected_events": self.unexpected,
                "api_call_ms": self.api_ms,
            },
            "ended_unexpectedly": self.ended_unexpectedly,
            "closed_after_terminate": self.closed_after_terminate,
            "not_closed_after_terminate": self.not_closed_after_terminate,
            "problems": self.problems,
            "dme_edge_counters": self.edge_counters,
        })
    }
}

pub(super) fn print_report(r: &Report) {
    let l = &r.load;
    let secs = r.load_secs.max(1e-9);
    println!("\n=== edge-load report ===");
    println!(
        "streams: {} requested, {} clients registered, {} open ({} failed) over {} connections, \
         {} cloudlets; ramp-up {:.1} s",
        r.streams, r.prepared, r.opened, r.open_failed, r.connections, r.cloudlets, r.open_secs
    );
    println!(
        "memory (DME VmRSS): region loaded {:.1} MiB, {} clients registered {:.1} MiB, streams \
         open and idle {:.1} MiB, the same after the load {:.1} MiB, all streams closed {:.1} MiB",
        mib(r.rss[0].rss),
        r.prepared,
        mib(r.rss[1].rss),
        mib(r.rss[2].rss),
        mib(r.rss[3].rss),
        mib(r.rss[4].rss)
    );
    let per = r.per_stream(1);
    println!(
        "  per open stream: {:.0} bytes ({:.2} KiB; goal <= 4 KiB: {}); with its \
         registration and FindCloudlet: {:.0} bytes",
        per,
        per / 1024.0,
        if per <= 4096.0 { "met" } else { "NOT met" },
        r.per_stream(0)
    );
    println!(
        "  anonymous memory (RssAnon) per open stream: {:.0} bytes",
        r.per_stream_anon(1)
    );
    if let Some((n, open, closed)) = &r.reopen {
        println!(
            "  all {n} streams opened again: {:.1} MiB, closed again: {:.1} MiB",
            mib(open.rss),
            mib(closed.rss)
        );
    }
    if let Some(f) = &r.floor {
        println!(
            "  transport floor (the same server stack, no DME behind it), per open stream: \
             VmRSS {:.0} bytes, RssAnon {:.0} bytes; the DME's own: {:.0} / {:.0} bytes",
            f.per_stream(),
            f.per_stream_anon(),
            per - f.per_stream(),
            r.per_stream_anon(1) - f.per_stream_anon()
        );
    }
    println!(
        "load ({:.0} s): client messages {} ({:.0}/s: {} location updates, {} latency samples, \
         {} cell crossings), server events {} ({:.0}/s)",
        r.load_secs,
        l.sent(),
        l.sent() as f64 / secs,
        l.sent_location,
        l.sent_latency,
        l.crossings,
        l.received_total(),
        l.received_total() as f64 / secs
    );
    let kinds = |s: &Snapshot| {
        (0..EVENT_KINDS)
            .filter(|&k| s.received[k] > 0)
            .map(|k| format!("{} {}", streams::event_name(k), s.received[k]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("  events by type in the window: {}", kinds(l));
    println!(
        "  after a 1 s drain: {} (latency samples sent {}, EVENT_LATENCY_PROCESSED {}; \
         crossings {}, EVENT_CLOUDLET_UPDATE {})",
        kinds(&r.drained),
        r.drained.sent_latency,
        r.drained.kind(ServerEventType::EventLatencyProcessed),
        r.drained.crossings,
        r.drained.kind(ServerEventType::EventCloudletUpdate)
    );
    if let (Some(min), Some(max)) = (
        r.per_second.iter().map(|p| p.0).min(),
        r.per_second.iter().map(|p| p.0).max(),
    ) {
        println!(
            "  per second: sent {min}..{max}, received {}..{}",
            r.per_second.iter().map(|p| p.1).min().unwrap_or(0),
            r.per_second.iter().map(|p| p.1).max().unwrap_or(0)
        );
    }
    println!(
        "  errors: EVENT_ERROR {}, not sent (send buffer full) {}, streams ended {}",
        l.kind(ServerEventType::EventError),
        l.backpressure,
        l.ended_unexpectedly
    );
    println!(
        "  DME CPU: {:.2} s over {:.0} s ({:.0} % of one core), {:.1} µs per client message; \
         edge-load's own CPU {:.2} s",
        r.dme_cpu_secs,
        r.cpu_window_secs,
        r.dme_cpu_secs / r.cpu_window_secs.max(1e-9) * 100.0,
        r.dme_cpu_secs * 1e6 / l.sent().max(1) as f64,
        r.own_cpu_secs
    );
    if let Some(f) = &r.floor {
        println!(
            "  transport floor under the same load: {:.1} µs CPU per client message",
            f.cpu_us_per_message()
        );
    }
    println!(
        "back home: {} location updates at the clients' home points, {} EVENT_CLOUDLET_UPDATE; \
         clients whose last new_cloudlet is not their home one: {}",
        r.home.sent_home,
        r.home.kind(ServerEventType::EventCloudletUpdate),
        r.not_home
    );
    let p99 = r.maintenance.q(0.99);
    println!(
        "push latency, controller API call -> event at the client, {} changes:",
        r.api_ms.len() / 2
    );
    println!(
        "  UNDER_MAINTENANCE -> EVENT_CLOUDLET_MAINTENANCE: {}; goal p99 <= 100 ms: {}",
        r.maintenance.line(),
        if p99 <= 100.0 { "met" } else { "NOT met" }
    );
    println!(
        "    with new_cloudlet {} (another cloudlet: {})",
        r.with_new_cloudlet, r.new_cloudlet_elsewhere
    );
    println!(
        "  NORMAL_OPERATION -> EVENT_CLOUDLET_UPDATE: {}",
        r.restore.line()
    );
    if !r.unexpected.is_empty() {
        println!("  other events while recording: {:?}", r.unexpected);
    }
    let mut api = r.api_ms.clone();
    api.sort_by(f64::total_cmp);
    if let (Some(lo), Some(hi)) = (api.first(), api.last()) {
        println!(
            "  controller update call: {lo:.1}..{hi:.1} ms (median {:.1} ms)",
            loadtests::report::median(api.clone())
        );
    }
    println!(
        "end: {} streams closed by the server after EVENT_TERMINATE_CONNECTION, {} not within \
         5 s; streams that ended unexpectedly over the run: {}",
        r.closed_after_terminate, r.not_closed_after_terminate, r.ended_unexpectedly
    );
    if !r.edge_counters.is_empty() {
        println!("DME /metrics at the end: {}", r.edge_counters.join("; "));
    }
    if !r.problems.is_empty() {
        println!("problems:");
        for (k, v) in &r.problems {
            println!("  {v} x {k}");
        }
    }
}
