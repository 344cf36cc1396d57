//! The clients of `edge-load`: each registers, finds its cloudlet, and holds one
//! `StreamEdgeEvent` stream in a task of its own that sends what the current [`Phase`] asks
//! (paced location updates and latency samples, a last location update at home, the terminate
//! message) and counts what the server sends back. Pushed events that arrive while
//! [`Shared::recording`] is set are kept with their arrival time, for push latencies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use dme_api::proto::client_edge_event::ClientEventType;
use dme_api::proto::find_cloudlet_reply::FindStatus;
use dme_api::proto::match_engine_api_client::MatchEngineApiClient;
use dme_api::proto::server_edge_event::ServerEventType;
use dme_api::proto::{
    ClientEdgeEvent, DeviceInfoDynamic, DeviceInfoStatic, Sample, ServerEdgeEvent,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tonic::Streaming;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::region::{Grid, find_request, loc, register_request};

/// What the streams do now; every stream task watches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Open and silent.
    Idle,
    /// Send paced messages from a jittered point after `start` until `end`.
    Load { start: Instant, end: Instant },
    /// Send one location update at the client's home point.
    Home,
    /// Send EVENT_TERMINATE_CONNECTION and wait for the server to end the stream.
    Terminate,
}

/// How the streams load the server.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    pub grid: Grid,
    /// Carrier name sent in FindCloudlet and `device_info_dynamic`.
    pub carrier: String,
    /// Messages per second per stream during [`Phase::Load`].
    pub rate: f64,
    /// Every `latency_every`-th message is EVENT_LATENCY_SAMPLES (0: none).
    pub latency_every: u32,
    /// A client spends `cross_every` location updates in its home cell, then as many in the
    /// neighbouring one, and so on (0: it stays home); each entry into the other cell is a
    /// crossing.
    pub cross_every: u32,
    /// Bound on opening one stream (and on each RegisterClient/FindCloudlet).
    pub open_timeout: Duration,
}

/// One virtual client, registered and matched.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: u32,
    /// Its home cloudlet (where FindCloudlet sent it) and the neighbouring one it visits.
    pub home: usize,
    pub away: usize,
    /// Position offsets in the cell, in [-1, 1] (see [`Grid::point`]).
    pub offset: (f64, f64),
    pub session_cookie: String,
    pub edge_cookie: String,
}

/// Server event kinds, indexed by `ServerEventType` value.
pub const EVENT_KINDS: usize = 9;

pub fn event_name(kind: usize) -> &'static str {
    ServerEventType::try_from(kind as i32).map_or("?", |t| t.as_str_name())
}

#[derive(Default)]
pub struct Counters {
    pub opened: AtomicU64,
    pub open_failed: AtomicU64,
    pub sent_location: AtomicU64,
    pub sent_latency: AtomicU64,
    pub sent_home: AtomicU64,
    /// Location updates that moved a client into another cell than its previous update's.
    pub crossings: AtomicU64,
    /// Messages not sent because the stream's send buffer was full (server not reading).
    pub backpressure: AtomicU64,
    pub received: [AtomicU64; EVENT_KINDS],
    pub ended_unexpectedly: AtomicU64,
    pub closed_after_terminate: AtomicU64,
    pub not_closed_after_terminate: AtomicU64,
    /// Stream tasks that are over (failed to open, ended, or terminated).
    pub finished: AtomicU64,
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Snapshot {
    pub sent_location: u64,
    pub sent_latency: u64,
    pub sent_home: u64,
    pub crossings: u64,
    pub backpressure: u64,
    pub received: [u64; EVENT_KINDS],
    pub ended_unexpectedly: u64,
}

impl Snapshot {
    pub fn sent(&self) -> u64 {
        self.sent_location + self.sent_latency
    }

    pub fn received_total(&self) -> u64 {
        self.received.iter().sum()
    }

    pub fn kind(&self, t: ServerEventType) -> u64 {
        self.received[t as usize]
    }

    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let mut received = [0; EVENT_KINDS];
        for (i, r) in received.iter_mut().enumerate() {
            *r = self.received[i] - earlier.received[i];
        }
        Snapshot {
            sent_location: self.sent_location - earlier.sent_location,
            sent_latency: self.sent_latency - earlier.sent_latency,
            sent_home: self.sent_home - earlier.sent_home,
            crossings: self.crossings - earlier.crossings,
            backpressure: self.backpressure - earlier.backpressure,
            received,
            ended_unexpectedly: self.ended_unexpectedly - earlier.ended_unexpectedly,
        }
    }
}

/// A pushed event as it arrived at a client.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    pub client: u32,
    pub kind: usize,
    pub at: Instant,
    /// The grid site of `new_cloudlet`, when the event carried a found one.
    pub new_cloudlet: Option<usize>,
}

/// State shared by every stream task and the coordinator.
pub struct Shared {
    pub cfg: StreamConfig,
    pub counters: Counters,
    /// Per client: its stream is open.
    pub alive: Vec<AtomicBool>,
    /// Per client: the cloudlet the server last sent it to (`u32::MAX`: none yet).
    pub current: Vec<AtomicU32>,
    /// While set, every event received is kept in `arrivals`.
    pub recording: AtomicBool,
    pub arrivals: Mutex<Vec<Arrival>>,
    /// Failures by kind (open errors, EVENT_ERROR messages, stream errors), with counts.
    pub problems: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    pub fn new(cfg: StreamConfig, clients: &[Client]) -> Self {
        let ids = clients.iter().map(|c| c.id as usize + 1).max().unwrap_or(0);
        let current = (0..ids)
            .map(|_| AtomicU32::new(u32::MAX))
            .collect::<Vec<_>>();
        for c in clients {
            current[c.id as usize].store(c.home as u32, Relaxed);
        }
        Self {
            cfg,
            counters: Counters::default(),
            alive: (0..ids).map(|_| AtomicBool::new(false)).collect(),
            current,
            recording: AtomicBool::new(false),
            arrivals: Mutex::new(Vec::new()),
            problems: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let c = &self.counters;
        let mut received = [0; EVENT_KINDS];
        for (i, r) in received.iter_mut().enumerate() {
            *r = c.received[i].load(Relaxed);
        }
        Snapshot {
            sent_location: c.sent_location.load(Relaxed),
            sent_latency: c.sent_latency.load(Relaxed),
            sent_home: c.sent_home.load(Relaxed),
            crossings: c.crossings.load(Relaxed),
            backpressure: c.backpressure.load(Relaxed),
            received,
            ended_unexpectedly: c.ended_unexpectedly.load(Relaxed),
        }
    }

    pub fn problem(&self, what: String) {
        *self.problems.lock().unwrap().entry(what).or_default() += 1;
    }

    /// Takes the recorded arrivals.
    pub fn take_arrivals(&self) -> Vec<Arrival> {
        std::mem::take(&mut *self.arrivals.lock().unwrap())
    }

    fn on_event(&self, client: u32, ev: &ServerEdgeEvent) {
        let at = Instant::now();
        let kind = usize::try_from(ev.event_type)
            .ok()
            .filter(|k| *k < EVENT_KINDS)
            .unwrap_or(0);
        self.counters.received[kind].fetch_add(1, Relaxed);
        if kind == ServerEventType::EventError as usize {
            self.problem(format!("EVENT_ERROR: {}", short(&ev.error_msg)));
        }
        let new_cloudlet = ev
            .new_cloudlet
            .as_ref()
            .filter(|r| r.status == FindStatus::FindFound as i32)
            .and_then(|r| r.cloudlet_location.as_ref())
            .map(|l| self.cfg.grid.nearest(l.latitude, l.longitude));
        if let Some(i) = new_cloudlet {
            self.current[client as usize].store(i as u32, Relaxed);
        }
        if self.recording.load(Relaxed) {
            self.arrivals.lock().unwrap().push(Arrival {
                client,
                kind,
                at,
                new_cloudlet,
            });
        }
    }

    fn ended(&self, client: u32, why: String) {
        self.alive[client as usize].store(false, Relaxed);
        self.counters.ended_unexpectedly.fetch_add(1, Relaxed);
        self.problem(why);
    }
}

/// The first 100 characters of a message (problem kinds stay few and readable).
fn short(s: &str) -> String {
    s.chars().take(100).collect()
}

fn status(s: &tonic::Status) -> anyhow::Error {
    anyhow!("{:?}: {}", s.code(), short(s.message()))
}

/// Registers `n` clients and finds each one's cloudlet, `concurrency` at a time over
/// `channels`: client `i` lives in cell `i % cloudlets`. Returns the clients matched to their
/// home cloudlet; the others are counted in `problems` by reason.
pub async fn prepare(
    n: usize,
    cfg: &StreamConfig,
    channels: &[Channel],
    concurrency: usize,
    seed: u64,
) -> Result<(Vec<Client>, BTreeMap<String, u64>)> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let home = i % cfg.grid.n;
        let offset = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
        let at = cfg.grid.point(home, offset.0, offset.1);
        let mut api = MatchEngineApiClient::new(channels[i % channels.len()].clone());
        let (sem, cfg) = (sem.clone(), cfg.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let work = async {
                let cookie = api
                    .register_client(register_request())
                    .await
                    .map_err(|s| status(&s).context("RegisterClient"))?
                    .into_inner()
                    .session_cookie;
                let r = api
                    .find_cloudlet(find_request(cookie.clone(), &cfg.carrier, at))
                    .await
                    .map_err(|s| status(&s).context("FindCloudlet"))?
                    .into_inner();
                let found = r
                    .cloudlet_location
                    .filter(|_| r.status == FindStatus::FindFound as i32)
                    .map(|l| cfg.grid.nearest(l.latitude, l.longitude))
                    .context("FindCloudlet: not found")?;
                anyhow::ensure!(
                    found == home,
                    "FindCloudlet: another cloudlet than the nearest"
                );
                anyhow::Ok(Client {
                    id: i as u32,
                    home,
                    away: cfg.grid.neighbour(home),
                    offset,
                    session_cookie: cookie,
                    edge_cookie: r.edge_events_cookie,
                })
            };
            match tokio::time::timeout(cfg.open_timeout, work).await {
                Ok(r) => r,
                Err(_) => Err(anyhow!("RegisterClient + FindCloudlet timed out")),
            }
        }));
    }
    let (mut clients, mut failed) = (Vec::with_capacity(n), BTreeMap::new());
    for t in tasks {
        match t.await? {
            Ok(c) => clients.push(c),
            Err(e) => *failed.entry(format!("{e:#}")).or_default() += 1,
        }
    }
    Ok((clients, failed))
}

/// Spawns one task per client that opens its stream (at most `concurrency` opening at once,
/// client `i` on channel `i % channels.len()`) and then follows `phase`. Progress shows in
/// [`Counters::opened`] / [`Counters::open_failed`].
pub fn spawn_streams(
    clients: Vec<Client>,
    channels: &[Channel],
    shared: &Arc<Shared>,
    phase: &watch::Receiver<Phase>,
    concurrency: usize,
) -> Vec<JoinHandle<()>> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    clients
        .into_iter()
        .map(|c| {
            let ch = channels[c.id as usize % channels.len()].clone();
            let (shared, phase, sem) = (shared.clone(), phase.clone(), sem.clone());
            tokio::spawn(async move {
                let Ok(permit) = sem.acquire_owned().await else {
                    return;
                };
                let opened = open(&c, ch, &shared).await;
                drop(permit);
                match opened {
                    Ok((tx, inbound)) => {
                        shared.alive[c.id as usize].store(true, Relaxed);
                        shared.counters.opened.fetch_add(1, Relaxed);
                        run(&c, tx, inbound, &shared, phase).await;
                    }
                    Err(e) => {
                        shared.counters.open_failed.fetch_add(1, Relaxed);
                        shared.problem(format!("open: {e:#}"));
                    }
                }
                shared.counters.finished.fetch_add(1, Relaxed);
            })
        })
        .collect()
}

fn device(carrier: &str) -> Option<DeviceInfoDynamic> {
    Some(DeviceInfoDynamic {
        data_network_type: "5G".into(),
        signal_strength: 4,
        carrier_name: carrier.into(),
    })
}

fn event(kind: ClientEventType, at: (f64, f64), carrier: &str) -> ClientEdgeEvent {
    ClientEdgeEvent {
        event_type: kind as i32,
        gps_location: Some(loc(at)),
        device_info_dynamic: device(carrier),
        ..Default::default()
    }
}

/// Opens the stream: EVENT_INIT_CONNECTION out, the server's EVENT_INIT_CONNECTION back.
async fn open(
    c: &Client,
    ch: Channel,
    shared: &Shared,
) -> Result<(mpsc::Sender<ClientEdgeEvent>, Streaming<ServerEdgeEvent>)> {
    let cfg = &shared.cfg;
    let (tx, rx) = mpsc::channel(8);
    let init = ClientEdgeEvent {
        session_cookie: c.session_cookie.clone(),
        edge_events_cookie: c.edge_cookie.clone(),
        device_info_static: Some(DeviceInfoStatic {
            device_os: "Android".into(),
            device_model: "edge-load".into(),
        }),
        ..event(
            ClientEventType::EventInitConnection,
            cfg.grid.point(c.home, c.offset.0, c.offset.1),
            &cfg.carrier,
        )
    };
    tx.try_send(init)?;
    let work = async {
        let mut inbound = MatchEngineApiClient::new(ch)
            .stream_edge_event(ReceiverStream::new(rx))
            .await
            .map_err(|s| status(&s))?
            .into_inner();
        let first = inbound
            .message()
            .await
            .map_err(|s| status(&s))?
            .context("the stream ended before EVENT_INIT_CONNECTION")?;
        shared.on_event(c.id, &first);
        anyhow::ensure!(
            first.event_type == ServerEventType::EventInitConnection as i32,
            "first event {} instead of EVENT_INIT_CONNECTION ({})",
            event_name(first.event_type as usize),
            short(&first.error_msg)
        );
        anyhow::Ok(inbound)
    };
    let inbound = tokio::time::timeout(cfg.open_timeout, work)
        .await
        .map_err(|_| anyhow!("no EVENT_INIT_CONNECTION within {:?}", cfg.open_timeout))??;
    Ok((tx, inbound))
}

async fn next_tick(t: &mut Option<Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The paced messages of one stream during [`Phase::Load`].
struct Pacer {
    rng: SmallRng,
    /// Messages sent so far, from a random point of the mix (so that each second carries the
    /// same mix over all streams).
    sent: u64,
    /// Location updates sent so far, from a random point of the home/away cycle.
    moves: u64,
    /// The cell of the last location update.
    cell: usize,
}

impl Pacer {
    fn next(&mut self, c: &Client, cfg: &StreamConfig, counters: &Counters) -> ClientEdgeEvent {
        self.sent += 1;
        let every = u64::from(cfg.latency_every);
        let (fx, fy) = (
            self.rng.random_range(-1.0..1.0),
            self.rng.random_range(-1.0..1.0),
        );
        if every > 0 && self.sent.is_multiple_of(every) {
            counters.sent_latency.fetch_add(1, Relaxed);
            let samples = (0..5)
                .map(|_| Sample {
                    value: self.rng.random_range(5.0..25.0),
                    ..Default::default()
                })
                .collect();
            let at = cfg.grid.point(self.cell, fx, fy);
            return ClientEdgeEvent {
                samples,
                ..event(ClientEventType::EventLatencySamples, at, &cfg.carrier)
            };
        }
        self.moves += 1;
        let cross = u64::from(cfg.cross_every);
        let cell = if cross > 0 && (self.moves / cross) % 2 == 1 {
            c.away
        } else {
            c.home
        };
        if cell != self.cell {
            counters.crossings.fetch_add(1, Relaxed);
            self.cell = cell;
        }
        counters.sent_location.fetch_add(1, Relaxed);
        let at = cfg.grid.point(cell, fx, fy);
        event(ClientEventType::EventLocationUpdate, at, &cfg.carrier)
    }
}

fn send(tx: &mpsc::Sender<ClientEdgeEvent>, msg: ClientEdgeEvent, counters: &Counters) {
    if tx.try_send(msg).is_err() {
        counters.backpressure.fetch_add(1, Relaxed);
    }
}

/// Follows `phase` until [`Phase::Terminate`] or the stream ends.
async fn run(
    c: &Client,
    tx: mpsc::Sender<ClientEdgeEvent>,
    mut inbound: Streaming<ServerEdgeEvent>,
    shared: &Shared,
    mut phase: watch::Receiver<Phase>,
) {
    let (cfg, counters) = (&shared.cfg, &shared.counters);
    let mut rng = SmallRng::seed_from_u64(u64::from(c.id) ^ 0x5eed_ed9e);
    let cycle = 2 * u64::from(cfg.cross_every.max(1));
    let mut pacer = Pacer {
        moves: rng.random_range(0..cycle),
        sent: rng.random_range(0..u64::from(cfg.latency_every.max(1))),
        rng,
        cell: c.home,
    };
    let (mut tick, mut end) = (None::<Interval>, Instant::now());
    // `phase` may have moved on while the stream opened.
    let mut current = *phase.borrow_and_update();
    loop {
        match current {
            Phase::Load { start, end: e } if tick.is_none() && Instant::now() < e => {
                let period = Duration::from_secs_f64(1.0 / cfg.rate.max(1e-3));
                let jitter = period.mul_f64(pacer.rng.random_range(0.0..1.0));
                let mut iv = tokio::time::interval_at(start.max(Instant::now()) + jitter, period);
                iv.set_missed_tick_behavior(MissedTickBehavior::Delay);
                (tick, end) = (Some(iv), e);
            }
            Phase::Home => {
                pacer.cell = c.home;
                counters.sent_home.fetch_add(1, Relaxed);
                let at = cfg.grid.point(c.home, c.offset.0, c.offset.1);
                send(
                    &tx,
                    event(ClientEventType::EventLocationUpdate, at, &cfg.carrier),
                    counters,
                );
                current = Phase::Idle;
            }
            Phase::Terminate => break,
            _ => {}
        }
        tokio::select! {
            m = inbound.message() => match m {
                Ok(Some(ev)) => shared.on_event(c.id, &ev),
                Ok(None) => return shared.ended(c.id, "stream ended by the server".into()),
                Err(s) => return shared.ended(c.id, format!("stream error: {:#}", status(&s))),
            },
            () = next_tick(&mut tick) => {
                if Instant::now() >= end {
                    tick = None;
                } else {
                    send(&tx, pacer.next(c, cfg, counters), counters);
                }
            }
            r = phase.changed() => match r {
                Ok(()) => current = *phase.borrow_and_update(),
                Err(_) => current = Phase::Terminate,
            },
        }
    }
    terminate(c, tx, inbound, shared).await;
}

/// Sends EVENT_TERMINATE_CONNECTION, closes the sending side, and waits (5 s at most) for the
/// server to end the stream.
async fn terminate(
    c: &Client,
    tx: mpsc::Sender<ClientEdgeEvent>,
    mut inbound: Streaming<ServerEdgeEvent>,
    shared: &Shared,
) {
    let bye = ClientEdgeEvent {
        event_type: ClientEventType::EventTerminateConnection as i32,
        ..Default::default()
    };
    send(&tx, bye, &shared.counters);
    drop(tx);
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match inbound.message().await {
                Ok(Some(ev)) => shared.on_event(c.id, &ev),
                Ok(None) => return Ok(()),
                Err(s) => return Err(status(&s)),
            }
        }
    })
    .await;
    shared.alive[c.id as usize].store(false, Relaxed);
    match closed {
        Ok(Ok(())) => {
            shared.counters.closed_after_terminate.fetch_add(1, Relaxed);
        }
        Ok(Err(e)) => {
            shared.counters.closed_after_terminate.fetch_add(1, Relaxed);
            shared.problem(format!("after terminate: {e:#}"));
        }
        Err(_) => {
            shared
                .counters
                .not_closed_after_terminate
                .fetch_add(1, Relaxed);
        }
    }
}
