//! `tls-load`: the same FindCloudlet load over the DME's three encrypted stacks in one run —
//! gRPC over HTTP/2+TLS, REST over HTTP/2+TLS and REST over HTTP/3 (QUIC) — at the same
//! concurrency (connections x requests in flight on each), in rounds whose stack order rotates,
//! with requests/s, latency percentiles (HDR, µs) and the DME's CPU per request (its process's
//! utime+stime from `/proc/PID/stat`) per phase.
//!
//! The DME runs as a child process (`tls-load --serve`: a synthetic region, every stack on
//! 127.0.0.1 with OS-chosen ports and a fresh self-signed certificate), pinned to
//! `--server-cpus` while the client runtime is pinned to `--client-cpus`. Bounded in time
//! (and optionally requests); stops by itself. See `loadtests/README.md`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use dme_api::proto::FindCloudletRequest;
use edgeplane_benches::World;
use loadtests::callers::{FindTarget, GrpcFind};
use loadtests::engine::{self, Plan, Report};
use loadtests::report::{median, threads_cpu_ns};
use loadtests::stacks::{self, ChildServer, GrpcH3Find, Ready, RestH2Find, RestH3Find, ServeOpts};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Stack {
    /// gRPC FindCloudlet over HTTP/2 + TLS (tonic).
    GrpcH2,
    /// REST FindCloudlet over HTTP/2 + TLS (hyper).
    RestH2,
    /// REST FindCloudlet over HTTP/3 (quinn + h3).
    RestH3,
    /// gRPC FindCloudlet over HTTP/3 (tonic over the h3 client; not in the default set).
    GrpcH3,
}

impl Stack {
    fn name(self) -> &'static str {
        match self {
            Self::GrpcH2 => "grpc/h2+tls",
            Self::RestH2 => "rest/h2+tls",
            Self::RestH3 => "rest/h3",
            Self::GrpcH3 => "grpc/h3",
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "tls-load",
    about = "FindCloudlet load over gRPC/HTTP2+TLS, REST/HTTP2+TLS and REST/HTTP3, with the DME's CPU per request"
)]
struct Args {
    /// Serve the DME (child mode; the load generator starts it itself).
    #[arg(long)]
    serve: bool,
    #[command(flatten)]
    server: ServeOpts,
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Warm-up seconds per phase (not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Connections per phase (for every stack).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests in flight on each connection (HTTP/2 or QUIC streams; at most 100).
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Rounds; each runs every stack once, the order rotating by one each round.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Stacks, in the first round's order.
    #[arg(long, value_delimiter = ',', default_value = "grpc-h2,rest-h2,rest-h3")]
    stacks: Vec<Stack>,
    /// Stop a phase after this many requests (0: only the time bounds it).
    #[arg(long, default_value_t = 0)]
    max_requests: u64,
    /// Per-request timeout, ms.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Virtual clients (registered once; each request picks one at random).
    #[arg(long, default_value_t = 2000)]
    clients: usize,
    /// Worker threads of the client runtime.
    #[arg(long, default_value_t = 1)]
    client_workers: usize,
    /// CPUs for the DME child (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    server_cpus: Vec<usize>,
    /// CPUs for the client runtime.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    client_cpus: Vec<usize>,
    /// Do not pin (also skipped on a single-CPU machine).
    #[arg(long)]
    no_pin: bool,
    /// HTTP/3 must reach this fraction of REST/HTTP2+TLS's requests/s (median over rounds);
    /// with `--check` a miss exits non-zero.
    #[arg(long, default_value_t = 0.6)]
    goal: f64,
    /// Exit non-zero if a phase had errors, or no success, or the goal is missed.
    #[arg(long)]
    check: bool,
    /// Write every phase's figures as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

struct Phase {
    round: usize,
    stack: Stack,
    report: Report,
    /// DME process CPU, µs per request, and its share of one CPU, over the measured window.
    server_us: f64,
    server_util: f64,
    client_us: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.serve {
        return stacks::serve(&args.server);
    }
    anyhow::ensure!(
        (1..=100).contains(&args.in_flight),
        "--in-flight must be 1..=100 (QUIC's default stream limit)"
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = !args.no_pin && cpus >= 2;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--serve")
        .arg("--bind")
        .arg(args.server.bind.to_string())
        .arg("--instances")
        .arg(args.server.instances.to_string())
        .arg("--server-workers")
        .arg(args.server.server_workers.to_string());
    if pin {
        cmd.arg("--pin-cpus").arg(
            args.server_cpus
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    let t = std::time::Instant::now();
    let server = ChildServer::spawn(cmd, Duration::from_secs(120))?;
    let r = &server.ready;
    println!(
        "tls-load: DME child pid {} ({} instances of {}, set up in {:.1?}): gRPC+TLS {}, \
         REST+TLS {}, HTTP/3 {}; {} CPUs, server on {}, client runtime {} worker(s) on {}",
        r.pid,
        args.server.instances,
        r.app,
        t.elapsed(),
        r.grpc,
        r.rest,
        r.h3,
        cpus,
        if pin {
            format!("CPUs {:?}", args.server_cpus)
        } else {
            "any CPU".into()
        },
        args.client_workers,
        if pin {
            format!("CPUs {:?}", args.client_cpus)
        } else {
            "any CPU".into()
        },
    );
    println!(
        "load: every stack {} connections x {} requests in flight = {} in flight; {} s + {} s \
         warm-up per phase, {} round(s); {} virtual clients",
        args.connections,
        args.in_flight,
        args.connections * args.in_flight,
        args.duration,
        args.warmup,
        args.rounds,
        args.clients
    );
    let client_cpus = args.client_cpus.clone();
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(args.client_workers.max(1))
        .thread_name("cli")
        .enable_all();
    if pin {
        b.on_thread_start(move || stacks::pin_current(&client_cpus));
        stacks::pin_current(&args.client_cpus);
    }
    let rt = b.build()?;
    let result = rt.block_on(drive(&args, &server));
    drop(server);
    rt.shutdown_timeout(Duration::from_secs(2));
    let ok = result?;
    if args.check && !ok {
        anyhow::bail!("--check: errors, an empty phase, or the goal missed (see above)");
    }
    Ok(())
}

async fn drive(args: &Args, server: &ChildServer) -> anyhow::Result<bool> {
    let world = World::load()?;
    let t = std::time::Instant::now();
    let reqs: Arc<[FindCloudletRequest]> =
        stacks::register_clients(&server.ready, &world, args.clients, args.seed)
            .await
            .context("registering the virtual clients")?
            .into();
    let bodies = stacks::json_bodies(&reqs)?;
    println!(
        "registered {} virtual clients over gRPC+TLS in {:.1?}\n",
        reqs.len(),
        t.elapsed()
    );
    let mut phases = Vec::new();
    let mut order = args.stacks.clone();
    for round in 1..=args.rounds.max(1) {
        for &stack in &order {
            let p = phase(args, server, stack, round, &reqs, &bodies).await?;
            print_phase(&p);
            phases.push(p);
        }
        order.rotate_left(1);
    }
    let ok = summary(args, &phases);
    if let Some(path) = &args.json {
        let v: Vec<_> = phases
            .iter()
            .map(|p| {
                serde_json::json!({
                    "round": p.round, "stack": p.stack.name(), "rps": p.report.rps(),
                    "p50_us": p.report.q(0.5), "p99_us": p.report.q(0.99),
                    "p999_us": p.report.q(0.999), "ok": p.report.ok,
                    "errors": p.report.errors, "server_cpu_us_per_req": p.server_us,
                    "server_cpu_util": p.server_util, "client_cpu_us_per_req": p.client_us,
                })
            })
            .collect();
        std::fs::write(path, serde_json::to_vec_pretty(&v)?)?;
    }
    Ok(ok)
}

fn seed(args: &Args, i: usize) -> u64 {
    args.seed ^ ((i as u64 + 1) * 0x9E37_79B9_7F4A_7C15)
}

/// One stack's phase: new connections, the load, CPU of both sides over the measured window.
async fn phase(
    args: &Args,
    server: &ChildServer,
    stack: Stack,
    round: usize,
    reqs: &Arc<[FindCloudletRequest]>,
    bodies: &Arc<[Bytes]>,
) -> anyhow::Result<Phase> {
    let plan = Plan {
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        max_requests: args.max_requests,
        timeout: Duration::from_millis(args.timeout_ms),
    };
    let ready: &Ready = &server.ready;
    let conns = args.connections.max(1);
    let callers = conns * args.in_flight;
    let pid = ready.pid;
    let (report, h3_endpoint) = match stack {
        Stack::GrpcH2 => {
            let mut chs = Vec::new();
            for _ in 0..conns {
                chs.push(stacks::grpc_tls(ready.grpc, &ready.cert_pem).await?);
            }
            let cs = (0..callers)
                .map(|i| {
                    GrpcFind::new(
                        FindTarget::dme(chs[i % conns].clone()),
                        reqs.clone(),
                        seed(args, i),
                    )
                })
                .collect();
            (measure(cs, plan, pid).await?, None)
        }
        Stack::RestH2 => {
            let config = stacks::tls_client_config(&ready.roots()?, &[b"h2"], false)?;
            let mut senders = Vec::new();
            for _ in 0..conns {
                senders.push(stacks::rest_h2(ready.rest, config.clone()).await?);
            }
            let cs = (0..callers)
                .map(|i| RestH2Find::new(senders[i % conns].clone(), bodies.clone(), seed(args, i)))
                .collect();
            (measure(cs, plan, pid).await?, None)
        }
        Stack::RestH3 | Stack::GrpcH3 => {
            let config =
                dme::h3_client::client_config(&ready.roots()?).map_err(|e| anyhow::anyhow!(e))?;
            let ep = dme::h3_client::client_endpoint("127.0.0.1:0".parse()?, config)?;
            let mut clients = Vec::new();
            for _ in 0..conns {
                let (c, _) =
                    dme::h3_client::H3Client::connect(&ep, ready.h3, stacks::SERVER_NAME, false)
                        .await
                        .map_err(|e| anyhow::anyhow!("HTTP/3 connect: {e}"))?;
                clients.push(c);
            }
            let report = if stack == Stack::RestH3 {
                let cs = (0..callers)
                    .map(|i| {
                        RestH3Find::new(clients[i % conns].clone(), bodies.clone(), seed(args, i))
                    })
                    .collect();
                measure(cs, plan, pid).await?
            } else {
                let cs = (0..callers)
                    .map(|i| {
                        GrpcH3Find::new(clients[i % conns].clone(), reqs.clone(), seed(args, i))
                    })
                    .collect();
                measure(cs, plan, pid).await?
            };
            for c in &clients {
                c.conn.close(0u32.into(), b"done");
            }
            (report, Some(ep))
        }
    };
    if let Some(ep) = h3_endpoint {
        let _ = tokio::time::timeout(Duration::from_secs(1), ep.wait_idle()).await;
    }
    let (report, cpu) = report;
    let n = report.ok.max(1) as f64;
    Ok(Phase {
        round,
        stack,
        server_us: cpu.server_us as f64 / n,
        server_util: cpu.server_us as f64 / 1e6 / cpu.wall.as_secs_f64().max(1e-9),
        client_us: cpu.client_ns as f64 / 1000.0 / n,
        report,
    })
}

/// CPU over a phase's measured window.
struct WindowCpu {
    server_us: u64,
    client_ns: u64,
    wall: Duration,
}

/// Runs the load, reading both sides' CPU when the measured window starts (a timer) and when
/// the load returns.
async fn measure<C: engine::Caller>(
    callers: Vec<C>,
    plan: Plan,
    pid: u32,
) -> anyhow::Result<(Report, WindowCpu)> {
    let start = tokio::spawn(async move {
        tokio::time::sleep(plan.warmup).await;
        (
            stacks::proc_cpu_us(pid).unwrap_or(0),
            threads_cpu_ns("cli"),
            std::time::Instant::now(),
        )
    });
    let report = engine::run(callers, plan).await;
    let (srv1, cli1, t1) = (
        stacks::proc_cpu_us(pid)?,
        threads_cpu_ns("cli"),
        std::time::Instant::now(),
    );
    let (srv0, cli0, t0) = start.await?;
    Ok((
        report,
        WindowCpu {
            server_us: srv1.saturating_sub(srv0),
            client_ns: cli1.saturating_sub(cli0),
            wall: t1.saturating_duration_since(t0),
        },
    ))
}

fn errors(r: &Report) -> String {
    if r.errors.is_empty() {
        "none".into()
    } else {
        r.errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn print_phase(p: &Phase) {
    let r = &p.report;
    println!(
        "round {} {:<12} {:>8.0} req/s  p50 {:>6} p99 {:>6} p99.9 {:>6} µs  DME CPU {:>5.1} µs/req \
         ({:>3.0} % of a CPU)  client CPU {:>5.1} µs/req  errors: {}",
        p.round,
        p.stack.name(),
        r.rps(),
        r.q(0.5),
        r.q(0.99),
        r.q(0.999),
        p.server_us,
        p.server_util * 100.0,
        p.client_us,
        errors(r)
    );
}

/// Medians over rounds, the HTTP/3 : HTTP/2+TLS ratios, and whether the run was clean.
fn summary(args: &Args, phases: &[Phase]) -> bool {
    println!("\nmedians over {} round(s):", args.rounds.max(1));
    let of = |s: Stack| phases.iter().filter(move |p| p.stack == s);
    let med = |s: Stack, f: &dyn Fn(&Phase) -> f64| median(of(s).map(f).collect());
    let mut clean = true;
    for &s in &args.stacks {
        let errs: u64 = of(s).map(|p| p.report.error_count()).sum();
        clean &= errs == 0 && of(s).all(|p| p.report.ok > 0);
        println!(
            "  {:<12} {:>8.0} req/s  p50 {:>6.0} p99 {:>6.0} p99.9 {:>6.0} µs  DME CPU {:>5.1} \
             µs/req  client CPU {:>5.1} µs/req  errors {errs}",
            s.name(),
            med(s, &|p| p.report.rps()),
            med(s, &|p| p.report.q(0.5) as f64),
            med(s, &|p| p.report.q(0.99) as f64),
            med(s, &|p| p.report.q(0.999) as f64),
            med(s, &|p| p.server_us),
            med(s, &|p| p.client_us),
        );
    }
    let mut goal_met = true;
    for (h3, base) in [
        (Stack::RestH3, Stack::RestH2),
        (Stack::RestH3, Stack::GrpcH2),
        (Stack::GrpcH3, Stack::GrpcH2),
    ] {
        if of(base).next().is_none() || of(h3).next().is_none() {
            continue;
        }
        let ratio = med(h3, &|p| p.report.rps()) / med(base, &|p| p.report.rps());
        let per_round: Vec<String> = of(h3)
            .filter_map(|x| {
                of(base)
                    .find(|b| b.round == x.round)
                    .map(|b| format!("{:.2}", x.report.rps() / b.report.rps()))
            })
            .collect();
        let cpu = med(h3, &|p| p.server_us) / med(base, &|p| p.server_us);
        let met = ratio >= args.goal;
        // The goal is REST over HTTP/3 against REST over HTTP/2+TLS.
        if (h3, base) == (Stack::RestH3, Stack::RestH2) {
            goal_met = met;
        }
        println!(
            "  {} / {}: req/s {ratio:.2} (per round {}), DME CPU per request {cpu:.2}; \
             req/s >= {}: {}",
            h3.name(),
            base.name(),
            per_round.join(", "),
            args.goal,
            if met { "met" } else { "NOT met" }
        );
    }
    clean && goal_met
}
