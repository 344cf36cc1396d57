//! `edge-load`: a load generator for the DME's edge-events stream (`StreamEdgeEvent`). Everything
//! runs on 127.0.0.1 with OS-chosen ports, bounded in count and time, and stops by itself:
//!
//! ```text
//! cargo build --release -p edgeplane -p loadtests && target/release/edge-load --streams 10000
//! ```
//!
//! It starts a controller on the embedded store in a temp dir (in this process, with the CRM of
//! the `fake` platform) and `edgeplane dme` as a child process (`--edgeplane PATH`, default the
//! `edgeplane` next to this binary), applies a region of `--cloudlets` cloudlets of one operator
//! on a grid with one instance of one app on each, and then, with `--streams` clients spread
//! over the grid and over `--connections` HTTP/2 connections:
//!
//! 1. memory: the DME's VmRSS after the region is loaded, after every client registered and
//!    found its cloudlet, and with every stream open and idle; bytes per open stream;
//! 2. throughput: for `--duration` s every stream sends `--rate` messages/s (location updates
//!    that cross into the neighbouring cell every `--cross-every` updates, and every
//!    `--latency-every`-th message latency samples); messages/s sent, events/s received, errors,
//!    streams that ended, and the DME's CPU time;
//! 3. push latency: `--pushes` times a cloudlet goes UNDER_MAINTENANCE and back to
//!    NORMAL_OPERATION through the controller's API; per client of that cloudlet, the time from
//!    just before the API call to the arrival of EVENT_CLOUDLET_MAINTENANCE (and of
//!    EVENT_CLOUDLET_UPDATE after the return), p50/p99/max, clients reached vs expected;
//! 4. every stream sends EVENT_TERMINATE_CONNECTION; the DME and the controller are stopped.
//!
//! `--reopen` opens and closes every stream a second time (is closed streams' memory reused?);
//! `--floor` opens the same streams on the transport floor ([`loadtests::edge::floor`], this
//! binary as a child process) and runs the same load on it. See `loadtests/README.md`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use dme_api::proto::server_edge_event::ServerEventType;
use edge_model::MaintenanceState;
use hdrhistogram::Histogram;
use loadtests::edge::region::{self, Controller, Grid, Memory, ServerProcess};
use loadtests::edge::streams::{self, Client, EVENT_KINDS, Phase, Shared, Snapshot, StreamConfig};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::transport::Channel;

mod report;

use report::{Latency, Report, print_report};

#[derive(Parser, Debug)]
#[command(
    name = "edge-load",
    about = "Load generator for the DME's edge-events stream (StreamEdgeEvent)"
)]
struct Args {
    /// Concurrent streams (one virtual client each).
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// HTTP/2 connections (tonic channels) the streams are spread over.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Cloudlets on the grid, one instance of the app on each.
    #[arg(long, default_value_t = 20)]
    cloudlets: usize,
    /// Registrations and stream opens in flight during the ramp-up.
    #[arg(long, default_value_t = 200)]
    open_concurrency: usize,
    /// Seconds of paced messages.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Messages per second per stream during the paced load.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Every N-th message is EVENT_LATENCY_SAMPLES, the others EVENT_LOCATION_UPDATE (0: only
    /// location updates).
    #[arg(long, default_value_t = 2)]
    latency_every: u32,
    /// A client sends N location updates in its home cell, then N in the neighbouring one, ...
    /// (0: it stays home).
    #[arg(long, default_value_t = 4)]
    cross_every: u32,
    /// Maintenance round trips (each on another cloudlet).
    #[arg(long, default_value_t = 10)]
    pushes: usize,
    /// Seconds to wait for the pushed events of one change.
    #[arg(long, default_value_t = 5.0)]
    push_timeout: f64,
    /// Seconds the open streams stay idle before the memory is read.
    #[arg(long, default_value_t = 2.0)]
    idle: f64,
    /// Seconds for opening one stream (and for one RegisterClient + FindCloudlet).
    #[arg(long, default_value_t = 30.0)]
    open_timeout: f64,
    /// Seconds the whole ramp-up (registrations, then stream opens) may take.
    #[arg(long, default_value_t = 300.0)]
    ramp_timeout: f64,
    /// Carrier name the clients send (the operator code by default; the operator's organization
    /// `edgeop` works as well).
    #[arg(long, default_value = region::OPERATOR_CODE)]
    carrier: String,
    /// The edgeplane binary (default: `edgeplane` next to this binary).
    #[arg(long)]
    edgeplane: Option<PathBuf>,
    /// Keep the DME's log (stderr) in this file (default: a temp file, removed at the end).
    #[arg(long)]
    dme_log: Option<PathBuf>,
    /// Write a JSON summary here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// After the streams closed, open them all again and close them again (is the memory of
    /// closed streams reused?).
    #[arg(long)]
    reopen: bool,
    /// Also open the streams on the transport floor (the same server stack without the DME, a
    /// child process) and report its memory per open stream.
    #[arg(long)]
    floor: bool,
    /// Serve the transport floor on 127.0.0.1 until stdin closes (what `--floor` runs).
    #[arg(long, hide = true)]
    serve_floor: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.serve_floor {
        return serve_floor();
    }
    ensure!(args.cloudlets >= 2, "--cloudlets must be at least 2");
    ensure!(
        args.streams >= 1 && args.connections >= 1,
        "nothing to load"
    );
    ensure!(
        args.rate > 0.0 && args.duration >= 0.0,
        "--rate must be > 0"
    );
    raise_nofile(args.connections as u64 + 1024);
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(run(&args));
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}

/// The transport floor's process: serves until its stdin closes (its parent is gone).
fn serve_floor() -> Result<()> {
    use std::io::Write as _;
    use tokio::io::AsyncReadExt as _;
    tokio::runtime::Runtime::new()?.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!(
            "edge-load floor serving: gRPC on {}",
            listener.local_addr()?
        );
        std::io::stdout().flush()?;
        loadtests::edge::floor::serve(listener, async {
            let mut sink = Vec::new();
            let _ = tokio::io::stdin().read_to_end(&mut sink).await;
        })
        .await?;
        Ok(())
    })
}

/// Lets this process (and the DME it starts) hold `want` descriptors if the hard limit allows.
fn raise_nofile(want: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < want
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, want.min(hard), hard);
    }
}

fn edgeplane_binary(arg: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = arg {
        return Ok(p.to_path_buf());
    }
    let me = std::env::current_exe()?;
    me.parent()
        .map(|d| d.join("edgeplane"))
        .filter(|p| p.exists())
        .context("no edgeplane binary next to edge-load: `cargo build --release -p edgeplane` or pass --edgeplane PATH")
}

async fn run(args: &Args) -> Result<()> {
    let edgeplane = edgeplane_binary(args.edgeplane.as_deref())?;
    let dir = tempfile::tempdir()?;
    let grid = Grid::new(args.cloudlets);
    let t = Instant::now();
    let mut ctl = Controller::start(dir.path()).await?;
    tokio::time::timeout(Duration::from_secs(120), ctl.apply(&grid))
        .await
        .context("the region was not READY within 120 s")??;
    println!(
        "region: controller (embedded store, fake CRM) on {}; {} cloudlets of {} ({} columns), \
         1 instance each of {}/{}/{}, READY in {:.1?}",
        ctl.notify,
        grid.n,
        region::OPERATOR,
        grid.cols,
        region::APP_ORG,
        region::APP_NAME,
        region::APP_VERSION,
        t.elapsed()
    );
    let log = args
        .dme_log
        .clone()
        .unwrap_or_else(|| dir.path().join("dme.log"));
    let mut dme = ServerProcess::dme(&edgeplane, ctl.notify, &log).await?;
    println!(
        "DME: {} (pid {}), gRPC {}, REST {}",
        edgeplane.display(),
        dme.pid,
        dme.grpc,
        dme.http.map_or("-".into(), |a| a.to_string())
    );
    let result = phases(args, &grid, &mut ctl, &mut dme, dir.path()).await;
    let alive = dme.alive();
    dme.kill().await;
    ctl.stop();
    match result {
        Ok(report) => {
            print_report(&report);
            if let Some(path) = &args.json {
                std::fs::write(path, serde_json::to_string_pretty(&report.json())?)?;
                println!("JSON summary: {}", path.display());
            }
            Ok(())
        }
        Err(e) => {
            if !alive {
                eprintln!("the DME process had exited");
            }
            eprintln!("DME log ({}), last lines:", log.display());
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for l in &lines[lines.len().saturating_sub(30)..] {
                eprintln!("  {l}");
            }
            Err(e)
        }
    }
}

/// Opens `n` channels (HTTP/2 connections) to `addr`.
async fn channels(addr: std::net::SocketAddr, n: usize) -> Result<Vec<Channel>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(loadtests::callers::channel(addr).await?);
    }
    Ok(out)
}

async fn sleep(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

async fn phases(
    args: &Args,
    grid: &Grid,
    ctl: &mut Controller,
    dme: &mut ServerProcess,
    dir: &Path,
) -> Result<Report> {
    let mut rep = Report {
        streams: args.streams,
        connections: args.connections,
        cloudlets: grid.n,
        ..Default::default()
    };
    let took = region::wait_found(dme.grpc, grid, &args.carrier).await?;
    println!("DME finds every cloudlet's instance ({took:.1?} after start)");
    sleep(1.0).await;
    rep.rss[0] = dme.memory()?;

    let cfg = StreamConfig {
        grid: grid.clone(),
        carrier: args.carrier.clone(),
        rate: args.rate,
        latency_every: args.latency_every,
        cross_every: args.cross_every,
        open_timeout: Duration::from_secs_f64(args.open_timeout),
    };
    let chs = channels(dme.grpc, args.connections).await?;
    let t = Instant::now();
    let (clients, failed) = tokio::time::timeout(
        Duration::from_secs_f64(args.ramp_timeout),
        streams::prepare(args.streams, &cfg, &chs, args.open_concurrency, args.seed),
    )
    .await
    .context("the registrations did not finish within --ramp-timeout")??;
    println!(
        "{} clients registered and matched to their home cloudlet in {:.1?} over {} \
         connections{}",
        clients.len(),
        t.elapsed(),
        chs.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!("; failed: {failed:?}")
        }
    );
    ensure!(!clients.is_empty(), "no client could register and find");
    rep.prepared = clients.len();
    rep.prepare_failed = failed;
    sleep(1.0).await;
    rep.rss[1] = dme.memory()?;

    // Ramp-up.
    let spare = (args.floor || args.reopen).then(|| clients.clone());
    let shared = Arc::new(Shared::new(cfg.clone(), &clients));
    let (phase_tx, phase_rx) = watch::channel(Phase::Idle);
    let n = clients.len() as u64;
    let tasks = streams::spawn_streams(clients, &chs, &shared, &phase_rx, args.open_concurrency);
    let c = &shared.counters;
    (rep.opened, rep.open_failed, rep.open_secs) = wait_open(args, &shared, n, dme).await?;
    println!(
        "{} streams open ({} failed) in {:.1} s ({:.0} opens/s)",
        rep.opened,
        rep.open_failed,
        rep.open_secs,
        n as f64 / rep.open_secs.max(1e-9)
    );
    if rep.opened == 0 {
        rep.problems = shared.problems.lock().unwrap().clone();
        bail!("no stream opened: {:?}", rep.problems);
    }
    sleep(args.idle).await;
    rep.rss[2] = dme.memory()?;
    println!(
        "DME VmRSS: region {:.1} MiB, clients registered {:.1} MiB, {} streams open and idle \
         {:.1} MiB: {:.0} bytes per open stream",
        mib(rep.rss[0].rss),
        mib(rep.rss[1].rss),
        rep.opened,
        mib(rep.rss[2].rss),
        rep.per_stream(1)
    );

    load(args, &shared, &phase_tx, dme, &mut rep).await?;
    rep.rss[3] = dme.memory()?;

    // Everyone back home, so that each client's cloudlet is its home one for the pushes.
    let before = shared.snapshot();
    phase_tx.send(Phase::Home)?;
    sleep(2.0).await;
    rep.home = shared.snapshot().since(&before);
    rep.not_home = (0..shared.current.len())
        .filter(|&id| {
            shared.alive[id].load(Relaxed)
                && shared.current[id].load(Relaxed) as usize != home_of(id, grid)
        })
        .count();
    pushes(args, grid, ctl, &shared, &mut rep).await?;

    // End.
    terminate(&shared, &phase_tx, tasks, n).await?;
    sleep(args.idle).await;
    rep.rss[4] = dme.memory()?;
    rep.ended_unexpectedly = c.ended_unexpectedly.load(Relaxed);
    rep.closed_after_terminate = c.closed_after_terminate.load(Relaxed);
    rep.not_closed_after_terminate = c.not_closed_after_terminate.load(Relaxed);
    rep.problems = shared.problems.lock().unwrap().clone();
    if args.reopen
        && let Some(clients) = &spare
    {
        rep.reopen = Some(reopen(args, clients.clone(), &cfg, &chs, dme).await?);
    }
    if let Some(http) = dme.http {
        rep.edge_counters = region::edge_counters(http).await?;
    }
    if args.floor
        && let Some(clients) = spare
    {
        rep.floor = Some(floor(args, clients, cfg, dir).await?);
    }
    Ok(rep)
}

/// Opens every stream again on the DME, then closes them again: (opened, memory with the streams
/// open, memory after they closed).
async fn reopen(
    args: &Args,
    clients: Vec<Client>,
    cfg: &StreamConfig,
    chs: &[Channel],
    dme: &mut ServerProcess,
) -> Result<(u64, Memory, Memory)> {
    let shared = Arc::new(Shared::new(cfg.clone(), &clients));
    let (phase_tx, phase_rx) = watch::channel(Phase::Idle);
    let n = clients.len() as u64;
    let tasks = streams::spawn_streams(clients, chs, &shared, &phase_rx, args.open_concurrency);
    let (opened, failed, secs) = wait_open(args, &shared, n, dme).await?;
    sleep(args.idle).await;
    let open = dme.memory()?;
    terminate(&shared, &phase_tx, tasks, n).await?;
    sleep(args.idle).await;
    let closed = dme.memory()?;
    println!(
        "reopened: {opened} streams open ({failed} failed) in {secs:.1} s, DME VmRSS {:.1} MiB; \
         closed again: {:.1} MiB",
        mib(open.rss),
        mib(closed.rss)
    );
    Ok((opened, open, closed))
}

/// Waits until every stream task opened its stream or failed to; (opened, failed, seconds).
async fn wait_open(
    args: &Args,
    shared: &Shared,
    n: u64,
    server: &mut ServerProcess,
) -> Result<(u64, u64, f64)> {
    let c = &shared.counters;
    let (t, mut last_print) = (Instant::now(), Instant::now());
    loop {
        if t.elapsed().as_secs_f64() > args.ramp_timeout {
            bail!("the streams did not open within --ramp-timeout");
        }
        let (ok, bad) = (c.opened.load(Relaxed), c.open_failed.load(Relaxed));
        if ok + bad >= n {
            return Ok((ok, bad, t.elapsed().as_secs_f64()));
        }
        if last_print.elapsed() >= Duration::from_secs(2) {
            println!("  opening: {ok} open, {bad} failed");
            last_print = Instant::now();
        }
        if !server.alive() {
            bail!("the server exited while the streams opened");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks every stream to terminate and waits (10 s at most) for their tasks to end.
async fn terminate(
    shared: &Shared,
    phase: &watch::Sender<Phase>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    n: u64,
) -> Result<()> {
    phase.send(Phase::Terminate)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.counters.finished.load(Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}

/// The transport floor's memory per open stream (as many streams, the same connections).
#[derive(Clone, Copy, Debug, Default)]
struct Floor {
    opened: u64,
    before: Memory,
    open: Memory,
    /// The same paced load: client messages, CPU seconds.
    messages: u64,
    cpu_secs: f64,
}

impl Floor {
    fn per_stream(&self) -> f64 {
        (self.open.rss as f64 - self.before.rss as f64) / self.opened.max(1) as f64
    }

    fn per_stream_anon(&self) -> f64 {
        (self.open.anon as f64 - self.before.anon as f64) / self.opened.max(1) as f64
    }

    fn cpu_us_per_message(&self) -> f64 {
        self.cpu_secs * 1e6 / self.messages.max(1) as f64
    }
}

/// Opens the clients' streams on the transport floor (a child process), reads its memory and
/// runs the same paced load on it.
async fn floor(args: &Args, clients: Vec<Client>, cfg: StreamConfig, dir: &Path) -> Result<Floor> {
    let mut srv = ServerProcess::floor(&std::env::current_exe()?, &dir.join("floor.log")).await?;
    let chs = channels(srv.grpc, args.connections).await?;
    sleep(1.0).await;
    let before = srv.memory()?;
    let shared = Arc::new(Shared::new(cfg, &clients));
    let (phase_tx, phase_rx) = watch::channel(Phase::Idle);
    let n = clients.len() as u64;
    let tasks = streams::spawn_streams(clients, &chs, &shared, &phase_rx, args.open_concurrency);
    let (opened, failed, secs) = wait_open(args, &shared, n, &mut srv).await?;
    sleep(args.idle).await;
    let mut f = Floor {
        opened,
        before,
        open: srv.memory()?,
        messages: 0,
        cpu_secs: 0.0,
    };
    println!(
        "transport floor (pid {}): {opened} streams open ({failed} failed) in {secs:.1} s; VmRSS \
         {:.1} -> {:.1} MiB: {:.0} bytes per open stream",
        srv.pid,
        mib(f.before.rss),
        mib(f.open.rss),
        f.per_stream()
    );
    print!("transport floor ");
    let mut scratch = Report::default();
    load(args, &shared, &phase_tx, &srv, &mut scratch).await?;
    (f.messages, f.cpu_secs) = (scratch.load.sent(), scratch.dme_cpu_secs);
    println!(
        "  floor CPU: {:.2} s, {:.1} µs per client message",
        f.cpu_secs,
        f.cpu_us_per_message()
    );
    terminate(&shared, &phase_tx, tasks, n).await?;
    srv.kill().await;
    Ok(f)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Phase b: paced messages on every stream for `--duration` seconds.
async fn load(
    args: &Args,
    shared: &Shared,
    phase: &watch::Sender<Phase>,
    dme: &ServerProcess,
    rep: &mut Report,
) -> Result<()> {
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(args.duration);
    println!(
        "load: {:.0} s, {} messages/s per stream (every {} a latency-samples message, a cell \
         crossing every {} location updates)",
        args.duration, args.rate, args.latency_every, args.cross_every
    );
    // Nothing is sent before `start`: counting from here counts the window's messages.
    let (cpu0, own0, s0) = (
        dme.cpu_secs()?,
        region::cpu_secs("/proc/self/stat")?,
        shared.snapshot(),
    );
    let t0 = Instant::now();
    phase.send(Phase::Load { start, end })?;
    let mut prev = s0;
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    while Instant::now() + Duration::from_millis(500) < end {
        tick.tick().await;
        let now = shared.snapshot();
        let d = now.since(&prev);
        rep.per_second.push((d.sent(), d.received_total()));
        prev = now;
    }
    tokio::time::sleep_until(end).await;
    let s1 = shared.snapshot();
    rep.load_secs = args.duration;
    rep.load = s1.since(&s0);
    // Replies to the last messages.
    sleep(1.0).await;
    rep.drained = shared.snapshot().since(&s0);
    rep.cpu_window_secs = t0.elapsed().as_secs_f64();
    rep.dme_cpu_secs = dme.cpu_secs()? - cpu0;
    rep.own_cpu_secs = region::cpu_secs("/proc/self/stat")? - own0;
    println!(
        "  per second (sent/received): {}",
        rep.per_second
            .iter()
            .map(|(s, r)| format!("{s}/{r}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

/// Phase c: cloudlet maintenance round trips; per client, the time from just before the API call
/// to the pushed event.
async fn pushes(
    args: &Args,
    grid: &Grid,
    ctl: &mut Controller,
    shared: &Shared,
    rep: &mut Report,
) -> Result<()> {
    let step = if grid.n.is_multiple_of(7) { 1 } else { 7 };
    let timeout = Duration::from_secs_f64(args.push_timeout);
    for k in 0..args.pushes {
        let c = (k * step + 1) % grid.n;
        let expected: Vec<bool> = (0..shared.alive.len())
            .map(|id| shared.alive[id].load(Relaxed) && home_of(id, grid) == c)
            .collect();
        let n_expected = expected.iter().filter(|e| **e).count() as u64;
        let (down, api_down) = push(
            ctl,
            grid,
            c,
            MaintenanceState::UnderMaintenance,
            ServerEventType::EventCloudletMaintenance,
            shared,
            &expected,
            timeout,
        )
        .await?;
        let mut line = format!(
            "push {}/{}: {} UNDER_MAINTENANCE (api {:.1} ms): ",
            k + 1,
            args.pushes,
            Grid::name(c),
            api_down
        );
        line += &tally(
            &down,
            ServerEventType::EventCloudletMaintenance,
            &expected,
            n_expected,
            &mut rep.maintenance,
            &mut rep.unexpected,
            "maintenance",
        )?;
        for a in &down.arrivals {
            if a.kind == ServerEventType::EventCloudletMaintenance as usize
                && expected[a.client as usize]
            {
                rep.with_new_cloudlet += u64::from(a.new_cloudlet.is_some());
                rep.new_cloudlet_elsewhere += u64::from(a.new_cloudlet.is_some_and(|n| n != c));
            }
        }
        let (up, api_up) = push(
            ctl,
            grid,
            c,
            MaintenanceState::NormalOperation,
            ServerEventType::EventCloudletUpdate,
            shared,
            &expected,
            timeout,
        )
        .await?;
        line += &format!("; back to NORMAL_OPERATION (api {api_up:.1} ms): ");
        line += &tally(
            &up,
            ServerEventType::EventCloudletUpdate,
            &expected,
            n_expected,
            &mut rep.restore,
            &mut rep.unexpected,
            "restore",
        )?;
        rep.api_ms.extend([api_down, api_up]);
        println!("{line}");
        sleep(0.3).await;
    }
    Ok(())
}

/// Client `id`'s home cloudlet (as [`streams::prepare`] assigns them).
fn home_of(id: usize, grid: &Grid) -> usize {
    id % grid.n
}

/// The events recorded around one controller change, and when the change was made.
struct Pushed {
    t0: Instant,
    arrivals: Vec<streams::Arrival>,
}

/// Sets cloudlet `c`'s maintenance state and records what the clients receive until every
/// expected client got a `want` event (or `timeout`), and 200 ms more for strays. Returns the
/// events and the API call's time, ms.
#[allow(clippy::too_many_arguments)]
async fn push(
    ctl: &mut Controller,
    grid: &Grid,
    c: usize,
    state: MaintenanceState,
    want: ServerEventType,
    shared: &Shared,
    expected: &[bool],
    timeout: Duration,
) -> Result<(Pushed, f64)> {
    let n_expected = expected.iter().filter(|e| **e).count();
    let _ = shared.take_arrivals();
    shared.recording.store(true, Relaxed);
    let t0 = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), ctl.set_maintenance(grid, c, state))
        .await
        .context("the controller did not answer the update within 30 s")??;
    let api_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut seen = vec![false; expected.len()];
    let (mut reached, mut scanned) = (0, 0);
    let deadline = t0 + timeout;
    while reached < n_expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let arrivals = shared.arrivals.lock().unwrap();
        for a in &arrivals[scanned..] {
            let id = a.client as usize;
            if a.kind == want as usize && expected[id] && !seen[id] {
                seen[id] = true;
                reached += 1;
            }
        }
        scanned = arrivals.len();
    }
    sleep(0.2).await;
    shared.recording.store(false, Relaxed);
    Ok((
        Pushed {
            t0,
            arrivals: shared.take_arrivals(),
        },
        api_ms,
    ))
}

/// Records one push's latencies (first `want` event per expected client) and its strays;
/// returns the printed summary.
fn tally(
    p: &Pushed,
    want: ServerEventType,
    expected: &[bool],
    n_expected: u64,
    lat: &mut Latency,
    unexpected: &mut BTreeMap<String, u64>,
    what: &str,
) -> Result<String> {
    let mut one = Latency {
        expected: n_expected,
        ..Default::default()
    };
    let mut seen = vec![false; expected.len()];
    for a in &p.arrivals {
        let id = a.client as usize;
        if a.kind == want as usize && expected[id] && !seen[id] {
            seen[id] = true;
            let d = a.at.saturating_duration_since(p.t0);
            one.record(d)?;
            lat.record(d)?;
            one.reached += 1;
        } else {
            let who = if expected[id] {
                "expected client"
            } else {
                "other client"
            };
            *unexpected
                .entry(format!(
                    "{what}: {} to an {who}{}",
                    streams::event_name(a.kind),
                    if seen[id] && expected[id] {
                        " (again)"
                    } else {
                        ""
                    }
                ))
                .or_default() += 1;
        }
    }
    lat.expected += n_expected;
    lat.reached += one.reached;
    Ok(format!(
        "{} {}",
        want.as_str_name(),
        one.line().replacen("clients reached", "reached", 1)
    ))
}
