//! The agent: every `interval`, one collection round ([`Collector`]) against the latest objects
//! from the controller, its points handed to every sink (Prometheus always, InfluxDB when
//! configured), then Shepherd's own counters to the Prometheus sink. Sinks never make the loop
//! wait; on shutdown each gets a bounded flush.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edge_api::subscriber::Replica;
use edge_model::CloudletKey;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::collect::cloudlet_tags;
use crate::collector::{Collector, Sources};
use crate::line::Point;
use crate::sink::{InfluxConfig, InfluxError, InfluxSink, MetricsSink, PrometheusSink, prometheus};
use crate::subscribe::{self, NotifyConfig};

/// Upstream's `shepherd_metrics_collection_interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Longest a scrape may take (less when the interval is shorter).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for a sink to write what it holds.
const FLUSH_DEADLINE: Duration = Duration::from_secs(5);
/// Series the Prometheus endpoint holds at most.
const MAX_SERIES: usize = 100_000;

/// Everything Shepherd needs.
#[derive(Debug)]
pub struct ShepherdConfig {
    /// Controller notify addresses (`host:port`), tried in turn.
    pub controller: Vec<String>,
    /// Subscriber name (default `shepherd-ORG-NAME`).
    pub name: String,
    /// The cloudlet whose metrics this Shepherd collects.
    pub cloudlet: CloudletKey,
    pub sources: Sources,
    /// InfluxDB to write to; without it points go to the Prometheus endpoint only.
    pub influx: Option<InfluxConfig>,
    /// Where to serve `GET /metrics` (already bound, so a caller can bind port 0).
    pub metrics_listener: Option<TcpListener>,
    /// Time between collection rounds (more than zero).
    pub interval: Duration,
    /// Mutual TLS with the controller (`None`: plaintext).
    pub tls: Option<edge_tls::MtlsClient>,
}

impl ShepherdConfig {
    /// A configuration with no sources, no InfluxDB, no endpoint and the default interval.
    pub fn new(controller: Vec<String>, cloudlet: CloudletKey) -> Self {
        Self {
            controller,
            name: format!("shepherd-{}-{}", cloudlet.organization, cloudlet.name),
            cloudlet,
            sources: Sources::default(),
            influx: None,
            metrics_listener: None,
            interval: DEFAULT_INTERVAL,
            tls: None,
        }
    }
}

/// Why Shepherd cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ShepherdError {
    #[error(transparent)]
    Influx(#[from] InfluxError),
    #[error("the collection interval must be more than zero")]
    Interval,
}

/// Subscribes to the controller and collects until `shutdown` resolves.
pub async fn run(
    config: ShepherdConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ShepherdError> {
    let (tx, rx) = watch::channel(Arc::new(Replica::new()));
    let notify = NotifyConfig {
        addrs: config.controller.clone(),
        tls: config.tls.clone(),
        name: config.name.clone(),
        cloudlet: config.cloudlet.clone(),
    };
    let subscription = tokio::spawn(subscribe::run(notify, tx));
    let r = run_with_objects(config, rx, shutdown).await;
    // The driver retries an unreachable controller forever; nothing else would end it.
    subscription.abort();
    r
}

/// Collects against the objects published in `objects` (instead of subscribing) until
/// `shutdown` resolves. `config.controller` is not used.
pub async fn run_with_objects(
    mut config: ShepherdConfig,
    objects: watch::Receiver<Arc<Replica>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ShepherdError> {
    if config.interval.is_zero() {
        return Err(ShepherdError::Interval);
    }
    // A series outlives a few missed rounds before it disappears from the endpoint.
    let stale_after = (config.interval * 4).max(Duration::from_secs(30));
    let prometheus = Arc::new(PrometheusSink::new(stale_after, MAX_SERIES));
    let mut sinks: Vec<Arc<dyn MetricsSink>> = vec![prometheus.clone()];
    if let Some(influx) = config.influx.take() {
        tracing::info!(url = %influx.url, db = %influx.db, "writing to InfluxDB");
        sinks.push(Arc::new(InfluxSink::start(influx)?));
    }
    // Dropping `_stop_serving` (on return) ends the endpoint.
    let (_stop_serving, stop) = oneshot::channel::<()>();
    if let Some(listener) = config.metrics_listener.take() {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "serving metrics on GET /metrics");
        }
        tokio::spawn(prometheus::serve(listener, prometheus.clone(), async {
            let _ = stop.await;
        }));
    }
    let timeout = config.interval.min(SCRAPE_TIMEOUT);
    let mut collector = Collector::new(config.cloudlet.clone(), config.sources.clone(), timeout);
    let rounds = Rounds {
        collector: &mut collector,
        sinks: &sinks,
        prometheus: &prometheus,
        cloudlet: &config.cloudlet,
    };
    rounds.run(config.interval, objects, shutdown).await;
    for sink in &sinks {
        if tokio::time::timeout(FLUSH_DEADLINE, sink.flush())
            .await
            .is_err()
        {
            tracing::warn!(sink = sink.name(), "flush did not finish in time");
        }
        let s = sink.stats();
        tracing::info!(
            sink = sink.name(),
            accepted = s.accepted,
            written = s.written,
            dropped = s.dropped,
            failed = s.failed,
            "sink totals"
        );
    }
    let stats = collector.stats();
    tracing::info!(
        rounds = stats.rounds.load(Relaxed),
        points = stats.points.load(Relaxed),
        scrape_errors = stats.scrape_errors.load(Relaxed),
        "shepherd stopped"
    );
    Ok(())
}

/// The collection loop's parts.
struct Rounds<'a> {
    collector: &'a mut Collector,
    sinks: &'a [Arc<dyn MetricsSink>],
    /// Also in `sinks`; Shepherd's own counters go here only.
    prometheus: &'a PrometheusSink,
    cloudlet: &'a CloudletKey,
}

impl Rounds<'_> {
    async fn run(
        self,
        interval: Duration,
        objects: watch::Receiver<Arc<Replica>>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            let current = objects.borrow().clone();
            let now_ms = unix_ms();
            // A round waits for its slowest scrape; shutdown does not.
            let points = tokio::select! {
                _ = &mut shutdown => return,
                p = self.collector.collect(&current, now_ms) => p,
            };
            for sink in self.sinks {
                sink.record(&points);
            }
            self.prometheus.record(&[self.own_counters(now_ms)]);
        }
    }

    /// Shepherd's own counters (`shepherd_rounds`, `shepherd_influxDropped`, ... on the
    /// endpoint), so a Shepherd losing points shows it where it is scraped.
    fn own_counters(&self, now_ms: i64) -> Point {
        let c = self.collector.stats();
        let mut p = Point::new("shepherd", now_ms)
            .field("rounds", c.rounds.load(Relaxed))
            .field("points", c.points.load(Relaxed))
            .field("scrapeErrors", c.scrape_errors.load(Relaxed))
            .field("badLines", c.bad_lines.load(Relaxed))
            .field("processErrors", c.process_errors.load(Relaxed));
        for sink in self.sinks {
            let (name, s) = (sink.name(), sink.stats());
            p = p
                .field(format!("{name}Accepted"), s.accepted)
                .field(format!("{name}Written"), s.written)
                .field(format!("{name}Dropped"), s.dropped)
                .field(format!("{name}Failed"), s.failed);
        }
        p.tags = cloudlet_tags(self.cloudlet);
        p
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
