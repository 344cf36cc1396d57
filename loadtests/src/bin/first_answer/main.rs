//! `first-answer`: time to first answer for a new client of the DME over an emulated path —
//! TCP+TLS (a fresh TCP connection, a full TLS 1.3 handshake, HTTP/2, REST FindCloudlet; and
//! the same with gRPC), QUIC 1-RTT (a fresh connection without a ticket, REST FindCloudlet over
//! HTTP/3) and QUIC 0-RTT (the same client again, resumed with the ticket of its previous
//! connection, the request in early data).
//!
//! The path: two network namespaces made for the run (`ep-cli-<pid>`, `ep-srv-<pid>`), each with
//! a TUN device, joined by `linkem.py` (a user-space link emulator: this kernel has no netem)
//! with a one-way delay of `--delay-ms` (25 ms: 50 ms RTT) and a seeded loss per direction
//! (`--loss`, percent, one case each). The DME runs in the server namespace (`ip netns exec …
//! first-answer --serve`), the clients in this process, moved into the client namespace.
//! Everything made is removed at the end, on error and on Ctrl-C/SIGTERM ([`netns::Lab`]).
//! See `loadtests/README.md`.

mod netns;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use dme::h3_client::{H3Client, client_config, client_endpoint};
use dme_api::proto::FindCloudletRequest;
use dme_api::proto::find_cloudlet_reply::FindStatus;
use dme_api::proto::match_engine_api_client::MatchEngineApiClient;
use edgeplane_benches::World;
use loadtests::stacks::{self, Ready, ServeOpts};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Stack {
    /// REST FindCloudlet over a new TCP connection + TLS 1.3 (full handshake) + HTTP/2.
    H2Tls,
    /// gRPC FindCloudlet over a new tonic channel (TCP + TLS 1.3 + HTTP/2).
    GrpcTls,
    /// REST FindCloudlet over a new QUIC connection without a ticket (1-RTT handshake).
    H3Cold,
    /// The same client again: resumed with its ticket, the request in 0-RTT.
    H3ZeroRtt,
}

impl Stack {
    fn name(self) -> &'static str {
        match self {
            Self::H2Tls => "REST h2+TLS, new TCP",
            Self::GrpcTls => "gRPC h2+TLS, new TCP",
            Self::H3Cold => "REST h3, QUIC 1-RTT",
            Self::H3ZeroRtt => "REST h3, QUIC 0-RTT",
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "first-answer",
    about = "Time to first answer for a new DME client over an emulated 50 ms path: TCP+TLS vs QUIC 1-RTT vs QUIC 0-RTT"
)]
struct Args {
    /// Serve the DME (child mode; started in the server namespace by the run itself).
    #[arg(long)]
    serve: bool,
    #[command(flatten)]
    server: ServeOpts,
    /// New clients per stack and loss case.
    #[arg(long, default_value_t = 40)]
    clients: usize,
    /// Loss per direction, percent; one case each.
    #[arg(long, value_delimiter = ',', default_value = "0,1,5")]
    loss: Vec<f64>,
    /// One-way delay of the emulated link, each direction, ms.
    #[arg(long, default_value_t = 25.0)]
    delay_ms: f64,
    /// Stacks measured for every client, in this order (the 0-RTT client resumes the 1-RTT
    /// one's session, so h3-zero-rtt needs h3-cold).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "h2-tls,grpc-tls,h3-cold,h3-zero-rtt"
    )]
    stacks: Vec<Stack>,
    /// A client's first answer later than this counts as failed, ms.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Pause between the 1-RTT connection's answer and its 0-RTT return, ms (the ticket
    /// arrives meanwhile; the first connection is closed before the return).
    #[arg(long, default_value_t = 300)]
    resume_after_ms: u64,
    /// Stop taking samples after this many seconds in total (the cases started are reported).
    #[arg(long, default_value_t = 900)]
    max_seconds: u64,
    /// Python 3 for the link emulator.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Write the samples' summary as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Exit non-zero when a goal (HTTP/3 1-RTT / h2+TLS p50 <= 0.70, 0-RTT / h2+TLS <= 0.40,
    /// at 0 % loss) is missed or a client failed.
    #[arg(long)]
    check: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() {
    let args = Args::parse();
    if args.serve {
        if let Err(e) = stacks::serve(&args.server) {
            eprintln!("first-answer --serve: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    // One thread: the namespace this process moves into applies to the calling thread (and
    // the threads it starts later), so everything runs on this one.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("first-answer: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered first: from here on Ctrl-C and SIGTERM unwind through the lab's cleanup.
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            eprintln!("first-answer: cannot handle signals");
            return 1;
        };
        let mut lab = None;
        let result = tokio::select! {
            r = run(&args, &mut lab) => r,
            _ = int.recv() => Err(anyhow::anyhow!("interrupted (SIGINT)")),
            _ = term.recv() => Err(anyhow::anyhow!("terminated (SIGTERM)")),
        };
        if let Some(lab) = lab.take() {
            drop::<netns::Lab>(lab);
            println!("cleaned up: namespaces, TUN devices, emulator and DME removed");
        }
        match result {
            Ok(true) => 0,
            Ok(false) => 3,
            Err(e) => {
                eprintln!("first-answer: {e:#}");
                1
            }
        }
    });
    drop(rt);
    std::process::exit(code);
}

/// One client's time to its first answer, or why it failed.
type Sample = Result<Duration, String>;

struct Case {
    loss_pct: f64,
    /// Samples per stack, in `args.stacks` order.
    samples: Vec<(Stack, Vec<Sample>)>,
    /// 0-RTT: attempted (a ticket was there) and accepted by the server.
    zero_rtt: (usize, usize),
    /// The emulator's counters for the case: (forwarded, dropped) both directions.
    link: (u64, u64),
    /// TCP connect times before the case (one round trip each).
    connect_ms: Vec<f64>,
}

async fn run(args: &Args, lab: &mut Option<netns::Lab>) -> anyhow::Result<bool> {
    anyhow::ensure!(
        !args.stacks.contains(&Stack::H3ZeroRtt) || args.stacks.contains(&Stack::H3Cold),
        "h3-zero-rtt resumes the h3-cold connection's session: list h3-cold too"
    );
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let l = lab.insert(netns::Lab::create(
        &args.python,
        args.delay_ms,
        args.seed,
        &exe,
        args.server.instances,
    )?);
    let ready = l.server().ready.clone();
    println!(
        "lab: namespaces {} (client {}) and {} (server {}), TUN link through linkem.py \
         (pid {}): {} ms one way each direction; DME pid {}: REST+TLS {}, gRPC+TLS {}, HTTP/3 {}",
        l.cli,
        netns::CLI_IP,
        l.srv,
        netns::SRV_IP,
        l.emulator_pid(),
        args.delay_ms,
        ready.pid,
        ready.rest,
        ready.grpc,
        ready.h3
    );
    // From here on this thread's sockets live in the client namespace.
    l.enter_client()?;
    let world = World::load()?;
    let rtt = connect_times(ready.rest, 5).await?;
    println!(
        "emulated path check: TCP connect (one round trip) {} ms; expected about {:.0} ms",
        rtt.iter()
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
        2.0 * args.delay_ms
    );
    let reqs = stacks::register_clients(&ready, &world, args.clients, args.seed)
        .await
        .context("registering the clients")?;
    let bodies = stacks::json_bodies(&reqs)?;
    let deadline = started + Duration::from_secs(args.max_seconds);
    let mut cases = Vec::new();
    for &loss in &args.loss {
        if Instant::now() >= deadline {
            println!("--max-seconds reached: the {loss} % case is not run");
            break;
        }
        l.set_loss(loss / 100.0, args.seed)?;
        let connect_ms = connect_times(ready.rest, 3).await.unwrap_or_default();
        let mut case = Case {
            loss_pct: loss,
            samples: args.stacks.iter().map(|&s| (s, Vec::new())).collect(),
            zero_rtt: (0, 0),
            link: (0, 0),
            connect_ms,
        };
        let t = Instant::now();
        for i in 0..args.clients {
            if Instant::now() >= deadline {
                break;
            }
            client(args, &ready, &reqs[i], &bodies[i], &mut case).await?;
        }
        case.link = l.link_stats()?;
        println!(
            "{} % loss: {} clients x {} stacks in {:.1?}",
            loss,
            case.samples.first().map_or(0, |(_, s)| s.len()),
            args.stacks.len(),
            t.elapsed()
        );
        cases.push(case);
    }
    let ok = report(args, &cases);
    Ok(ok)
}

/// TCP connect times to `addr` (ms), `n` of them one after the other.
async fn connect_times(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .context("TCP connect over the emulated path timed out")??;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(tcp);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(out)
}

/// One new client: every stack once, in order, each from nothing (the 0-RTT one from the 1-RTT
/// one's ticket).
async fn client(
    args: &Args,
    ready: &Ready,
    req: &FindCloudletRequest,
    body: &Bytes,
    case: &mut Case,
) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let roots = ready.roots()?;
    // The QUIC client of this "phone": its ticket store lives in its config, so a new one per
    // client means no ticket for its first connection.
    let h3_ep = client_endpoint(
        "0.0.0.0:0".parse()?,
        client_config(&roots).map_err(|e| anyhow::anyhow!(e))?,
    )?;
    let mut cold: Option<H3Client> = None;
    for slot in 0..case.samples.len() {
        let stack = case.samples[slot].0;
        let sample = match stack {
            Stack::H2Tls => {
                let config = stacks::tls_client_config(&roots, &[b"h2"], false)?;
                timed(timeout, async {
                    let mut sender = stacks::rest_h2(ready.rest, config)
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                    stacks::find_h2(&mut sender, body.clone()).await
                })
                .await
            }
            Stack::GrpcTls => {
                timed(timeout, async {
                    let ch = stacks::grpc_tls(ready.grpc, &ready.cert_pem)
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                    let reply = MatchEngineApiClient::new(ch)
                        .find_cloudlet(req.clone())
                        .await
                        .map_err(|s| format!("grpc {:?}", s.code()))?;
                    if reply.get_ref().status == FindStatus::FindFound as i32 {
                        Ok(())
                    } else {
                        Err(format!("reply status {}", reply.get_ref().status))
                    }
                })
                .await
            }
            Stack::H3Cold => {
                let mut client = None;
                let s = timed(timeout, async {
                    let (c, _) = H3Client::connect(&h3_ep, ready.h3, stacks::SERVER_NAME, false)
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                    let r = stacks::find_h3(&c, body.clone()).await;
                    client = Some(c);
                    r
                })
                .await;
                cold = client;
                s
            }
            Stack::H3ZeroRtt => {
                // The first connection lives on a moment (its ticket arrives), then closes; the
                // client comes back later.
                tokio::time::sleep(Duration::from_millis(args.resume_after_ms)).await;
                if let Some(c) = cold.take() {
                    c.conn.close(0u32.into(), b"bye");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                let mut accepted = None;
                let s = timed(timeout, async {
                    let (c, zero) = H3Client::connect(&h3_ep, ready.h3, stacks::SERVER_NAME, true)
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                    let r = stacks::find_h3(&c, body.clone()).await;
                    accepted = Some((c, zero));
                    r
                })
                .await;
                if let Some((c, zero)) = accepted {
                    if let Some(zero) = zero {
                        case.zero_rtt.0 += 1;
                        if tokio::time::timeout(timeout, zero).await.unwrap_or(false) {
                            case.zero_rtt.1 += 1;
                        }
                    }
                    c.conn.close(0u32.into(), b"bye");
                }
                s
            }
        };
        case.samples[slot].1.push(sample);
        // Let the connection's last packets go before the next client starts.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(c) = cold {
        c.conn.close(0u32.into(), b"bye");
    }
    let _ = tokio::time::timeout(Duration::from_millis(500), h3_ep.wait_idle()).await;
    Ok(())
}

/// Times `f` from now to its answer.
async fn timed(timeout: Duration, f: impl Future<Output = Result<(), String>>) -> Sample {
    let t = Instant::now();
    match tokio::time::timeout(timeout, f).await {
        Ok(Ok(())) => Ok(t.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("timeout".into()),
    }
}

struct Stats {
    ok: usize,
    failed: usize,
    p50: f64,
    p90: f64,
    mean: f64,
    max: f64,
}

fn stats(samples: &[Sample]) -> Stats {
    let mut ms: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.as_ref().ok())
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    // Nearest rank.
    let q = |p: f64| {
        if ms.is_empty() {
            f64::NAN
        } else {
            let rank = ((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len());
            ms[rank - 1]
        }
    };
    Stats {
        ok: ms.len(),
        failed: samples.len() - ms.len(),
        p50: q(0.5),
        p90: q(0.9),
        mean: ms.iter().sum::<f64>() / ms.len().max(1) as f64,
        max: ms.last().copied().unwrap_or(f64::NAN),
    }
}

/// Prints the table and the ratios; true when every goal at 0 % loss is met and no client
/// failed.
fn report(args: &Args, cases: &[Case]) -> bool {
    println!(
        "\ntime to first answer (connect + handshake + FindCloudlet), {} ms RTT; ms:\n",
        2.0 * args.delay_ms
    );
    println!(
        "| loss (set / measured) | stack | clients ok / failed | p50 | p90 | mean | max |\n|---|---|---|---|---|---|---|"
    );
    let mut clean = true;
    for c in cases {
        let measured = c.link.1 as f64 / (c.link.0 + c.link.1).max(1) as f64 * 100.0;
        for (stack, samples) in &c.samples {
            let s = stats(samples);
            clean &= s.failed == 0;
            println!(
                "| {} % / {:.1} % | {} | {} / {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                c.loss_pct,
                measured,
                stack.name(),
                s.ok,
                s.failed,
                s.p50,
                s.p90,
                s.mean,
                s.max
            );
        }
    }
    println!();
    let mut goals = true;
    for c in cases {
        let get = |s: Stack| {
            c.samples
                .iter()
                .find(|(x, _)| *x == s)
                .map(|(_, v)| stats(v))
        };
        let base = get(Stack::H2Tls);
        let errors: Vec<String> = c
            .samples
            .iter()
            .flat_map(|(s, v)| {
                v.iter()
                    .filter_map(move |r| r.as_ref().err().map(|e| format!("{}: {e}", s.name())))
            })
            .collect();
        println!(
            "{} % loss: link {} packets forwarded, {} dropped; TCP connect before the case {} ms; \
             0-RTT attempted {} / accepted {}{}",
            c.loss_pct,
            c.link.0,
            c.link.1,
            c.connect_ms
                .iter()
                .map(|v| format!("{v:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            c.zero_rtt.0,
            c.zero_rtt.1,
            if errors.is_empty() {
                String::new()
            } else {
                format!("; failures: {}", errors.join("; "))
            }
        );
        let Some(base) = base else { continue };
        for (stack, goal) in [(Stack::H3Cold, 0.70), (Stack::H3ZeroRtt, 0.40)] {
            let Some(s) = get(stack) else { continue };
            let (r50, rmean) = (s.p50 / base.p50, s.mean / base.mean);
            let met = r50 <= goal;
            if c.loss_pct == 0.0 {
                goals &= met;
            }
            println!(
                "  {} / {}: p50 {r50:.2}, mean {rmean:.2}, p90 {:.2}; goal p50 <= {goal:.2}: {}",
                stack.name(),
                Stack::H2Tls.name(),
                s.p90 / base.p90,
                if met { "met" } else { "NOT met" }
            );
        }
    }
    if let Some(path) = &args.json {
        let v: Vec<_> = cases
            .iter()
            .map(|c| {
                let stacks: serde_json::Map<String, serde_json::Value> = c
                    .samples
                    .iter()
                    .map(|(s, v)| {
                        let st = stats(v);
                        (
                            s.name().to_string(),
                            serde_json::json!({"ok": st.ok, "failed": st.failed, "p50_ms": st.p50,
                                "p90_ms": st.p90, "mean_ms": st.mean, "max_ms": st.max}),
                        )
                    })
                    .collect();
                serde_json::json!({"loss_pct": c.loss_pct, "forwarded": c.link.0,
                    "dropped": c.link.1, "zero_rtt_attempted": c.zero_rtt.0,
                    "zero_rtt_accepted": c.zero_rtt.1, "stacks": stacks})
            })
            .collect();
        if let Err(e) = serde_json::to_vec_pretty(&v)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(std::fs::write(path, b)?))
        {
            eprintln!("writing {}: {e}", path.display());
        }
    }
    !args.check || (goals && clean)
}
