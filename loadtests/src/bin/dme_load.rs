//! `dme-load`: a load generator for the DME (think ghz/wrk for this API). It drives
//! RegisterClient and FindCloudlet over gRPC and REST with virtual clients at world cities (each
//! with its own location, carrier and session cookie), at a fixed number of connections and
//! requests in flight, for a fixed time, and prints requests/s, latency percentiles (HDR, µs) and
//! errors by gRPC code or HTTP status. It measures the transport floor in the same run (the same
//! messages answered by a handler that does nothing, on the same server stack), interleaved with
//! the DME runs, and prints FindCloudlet/floor ratios of the medians.
//!
//! The CAMARA discovery calls run beside FindCloudlet on the same REST stack (scenarios
//! `rest-sed`, Simple Edge Discovery, and `rest-aed`, Application Endpoint Discovery): each
//! request names the device of a random virtual client (its own IPv4 address, or phone number
//! with `--camara-device phone`), which the operator feed (`dme::camara::feed::FeedLocator`,
//! one `/32` entry per client) places at that client's location, with a bearer access token
//! signed as the MC signs them (one token per connection). The summary prints SED/FindCloudlet
//! and AED/FindCloudlet ratios of the medians.
//!
//! By default it starts its own DME (a synthetic region: one app with `--instances` instances at
//! world cities) and the floor servers on 127.0.0.1 in a separate tokio runtime
//! (`--server-workers`, default 1), pinned to `--server-cpus` while the client runtime is pinned
//! to `--client-cpus`. With `--grpc`/`--http` it loads a running DME instead (no floor then).
//!
//! See `benches/README.md` for the commands and the figures.

/// glibc's allocator serialises threads on its arena locks under the DME's allocation pattern
/// (measured: futex waits in malloc under load); mimalloc keeps per-thread heaps.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use dme::cookie::KeyRing;
use dme::{Ctx, Dme, DmeConfig, Tables};
use dme_api::proto::{FindCloudletReply, FindCloudletRequest};
use edge_auth::{ACCESS_TYP, AccessClaims, SigningKeys, scopes};
use edge_model::AppKey;
use edgeplane_benches::{CARRIERS, RegionSpec, World, region};
use geodata::LatLon;
use loadtests::callers::{
    self, AED_ENDPOINTS, Expect, FIND_FOUND_PREFIX, FindTarget, GrpcFind, GrpcRegister,
    RS_SUCCESS_PREFIX, Rest, RestCall, SED_ZONE,
};
use loadtests::clients::{
    CamaraDevice, Target, camara_bodies, feed_text, find_request, people, register_request,
    virtual_clients,
};
use loadtests::engine::{self, Plan};
use loadtests::floor;
use loadtests::report::{self, Run, Scenario, threads_cpu_ns};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

#[derive(Parser, Debug)]
#[command(
    name = "dme-load",
    about = "Load generator for the DME, with a transport floor"
)]
struct Args {
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds per run (not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// gRPC: HTTP/2 connections (tonic channels).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// gRPC: requests in flight (tasks, spread over the connections).
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// REST: HTTP/1.1 keep-alive connections, one request in flight on each.
    #[arg(long, default_value_t = 50)]
    http_connections: usize,
    /// Rounds; each runs every scenario once (order reversed every other round).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Scenarios, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "grpc-floor,grpc-find,rest-floor,rest-find,grpc-register,rest-register"
    )]
    scenarios: Vec<Scenario>,
    /// Stop a run after this many requests (0: only the time bounds it).
    #[arg(long, default_value_t = 0)]
    max_requests: u64,
    /// Per-request timeout, ms.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Virtual clients (registered once; FindCloudlet picks one at random per request).
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// In-process DME: instances of the one app, at world cities.
    #[arg(long, default_value_t = 10_000)]
    instances: usize,
    /// In-process DME: tokio worker threads of the server runtime.
    #[arg(long, default_value_t = 1)]
    server_workers: usize,
    /// Worker threads of the client runtime.
    #[arg(long, default_value_t = 1)]
    client_workers: usize,
    /// CPUs for the server runtime's threads (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    server_cpus: Vec<usize>,
    /// CPUs for the client runtime's threads and the main thread.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    client_cpus: Vec<usize>,
    /// Do not pin threads (pinning is also skipped on a single-CPU machine).
    #[arg(long)]
    no_pin: bool,
    /// Serve the in-process DME with `dme::server::run` exactly as shipped (default: the same
    /// routes with TCP_NODELAY set on accepted gRPC sockets, see `floor::serve_dme`).
    #[arg(long)]
    shipped_server: bool,
    /// Load a running DME's gRPC listener instead of an in-process one.
    #[arg(long)]
    grpc: Option<SocketAddr>,
    /// Load a running DME's REST listener instead of an in-process one.
    #[arg(long)]
    http: Option<SocketAddr>,
    /// App of a running DME, `org/name/version`.
    #[arg(long, default_value = "devorg/app/1.0")]
    app: String,
    /// Carriers of a running DME's region (clients draw one each).
    #[arg(long, value_delimiter = ',', default_values_t = CARRIERS.map(String::from))]
    carriers: Vec<String>,
    /// CAMARA calls: how a request names its device (each virtual client has its own).
    #[arg(long, value_enum, default_value_t = CamaraDevice::Ipv4)]
    camara_device: CamaraDevice,
    /// In-process DME: the operator whose network locates the devices (the carrier CAMARA
    /// discovery matches for); "" for none (every operator's cloudlets).
    #[arg(long, default_value = CARRIERS[0])]
    camara_operator: String,
    /// CAMARA calls: send an `x-correlator` header (the DME checks and echoes it).
    #[arg(long)]
    x_correlator: bool,
    /// Write the operator feed of the virtual clients' devices to this file (for a running
    /// DME's `--camara-feed`; the in-process DME uses its own copy).
    #[arg(long)]
    feed_out: Option<std::path::PathBuf>,
    /// A running DME: the CAMARA access token to send (scopes of SED and AED, the app's
    /// organisation); the in-process DME's tokens are minted here.
    #[arg(long)]
    camara_token: Option<String>,
    /// In-process DME: distinct access tokens. 0 (default): one per REST connection, as API
    /// clients that each keep their token. N > 0: N tokens, each request drawing one at random
    /// (N far above the DME's verified-token cache, if it has one, makes nearly every request
    /// verify a signature).
    #[arg(long, default_value_t = 0)]
    camara_tokens: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = !args.no_pin && cpus >= 2;
    let server_rt = runtime(
        "srv",
        args.server_workers,
        pin.then(|| args.server_cpus.clone()),
    )?;
    let client_rt = runtime(
        "cli",
        args.client_workers,
        pin.then(|| args.client_cpus.clone()),
    )?;
    if pin {
        pin_current(&args.client_cpus);
    }
    let world = World::load()?;
    let local = args.grpc.is_none() && args.http.is_none();
    let carriers = if local {
        CARRIERS.map(String::from).to_vec()
    } else {
        args.carriers.clone()
    };
    anyhow::ensure!(!carriers.is_empty(), "--carriers is empty");
    anyhow::ensure!(
        args.clients < 0x00ff_fffe,
        "--clients: at most {} (one 10.x.y.z address each)",
        0x00ff_fffe
    );
    let people = people(&carriers, &world, args.clients, args.seed);
    let feed = feed_text(&people, args.camara_device);
    if let Some(path) = &args.feed_out {
        std::fs::write(path, &feed).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "wrote the device feed ({} entries) to {}",
            people.len(),
            path.display()
        );
    }
    let target = if local {
        start_local(&server_rt, &world, &args, &feed)?
    } else {
        external(&args)?
    };
    let camara = args
        .scenarios
        .iter()
        .any(|s| matches!(s, Scenario::RestSed | Scenario::RestAed));
    anyhow::ensure!(
        !camara || !target.camara_tokens.is_empty(),
        "scenarios rest-sed and rest-aed against a running DME need --camara-token"
    );
    println!(
        "dme-load: {} CPUs; server runtime {} worker(s){}; client runtime {} worker(s){}",
        cpus,
        args.server_workers,
        if pin {
            format!(" on CPUs {:?}", args.server_cpus)
        } else {
            String::new()
        },
        args.client_workers,
        if pin {
            format!(" on CPUs {:?}", args.client_cpus)
        } else {
            String::new()
        },
    );
    println!(
        "load: gRPC {} connections x {} in flight; REST {} connections x 1 in flight; \
         {} s + {} s warm-up per run, {} round(s); {} virtual clients",
        args.connections,
        args.concurrency,
        args.http_connections,
        args.duration,
        args.warmup,
        args.rounds,
        args.clients
    );
    let result = client_rt.block_on(drive(&args, &people, &target));
    drop(target);
    server_rt.shutdown_timeout(Duration::from_secs(2));
    client_rt.shutdown_timeout(Duration::from_secs(2));
    result
}

fn runtime(
    name: &'static str,
    workers: usize,
    cpus: Option<Vec<usize>>,
) -> anyhow::Result<Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(workers.max(1))
        .thread_name(name)
        .enable_all();
    if let Some(cpus) = cpus {
        b.on_thread_start(move || pin_current(&cpus));
    }
    Ok(b.build()?)
}

/// Pins the calling thread to `cpus`.
fn pin_current(cpus: &[usize]) {
    use nix::sched::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    for &c in cpus {
        let _ = set.set(c);
    }
    if let Err(e) = sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
        eprintln!("warning: cannot pin a thread to CPUs {cpus:?}: {e}");
    }
}

fn local_ctx() -> Ctx {
    Ctx::now(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))
}

/// Access tokens as the MC's client-credentials grant issues them, one per REST connection
/// (distinct clients), for the app's organisation, with the SED and AED scopes.
fn mint_tokens(keys: &SigningKeys, org: &str, n: usize) -> Vec<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    (0..n.max(1))
        .map(|i| {
            keys.sign_typed(
                ACCESS_TYP,
                &AccessClaims {
                    iss: "https://127.0.0.1:9900".into(),
                    sub: format!("dme-load-key-{i}"),
                    client_id: format!("dme-load-key-{i}"),
                    org: org.into(),
                    scope: format!(
                        "{} {}",
                        scopes::SIMPLE_EDGE_DISCOVERY,
                        scopes::APP_ENDPOINT_DISCOVERY
                    ),
                    iat: now,
                    exp: now + 24 * 3600,
                    jti: format!("dme-load-{i}"),
                },
            )
        })
        .collect()
}

/// Builds the synthetic region, starts the DME (with the CAMARA APIs on the device feed `feed`)
/// and the floor servers in `rt`.
fn start_local(rt: &Runtime, world: &World, args: &Args, feed: &str) -> anyhow::Result<Target> {
    let t = std::time::Instant::now();
    let tables = Tables::from_deployment(&region(world, &RegionSpec::one_app(args.instances)), 1)?;
    let app = dme::fixture::app_key();
    let signing = SigningKeys::generate().map_err(|e| anyhow::anyhow!("token keys: {e}"))?;
    let mut feed_file = tempfile::NamedTempFile::new()?;
    std::io::Write::write_all(&mut feed_file, feed.as_bytes())?;
    let feed_path = feed_file.into_temp_path();
    let locator = {
        // The feed's watcher is a task on the server runtime, as in the DME.
        let _rt = rt.enter();
        dme::camara::feed::FeedLocator::open(&feed_path)?
    };
    let camara = dme::camara::Camara {
        keys: edge_auth::KeySource::fixed(signing.verifier().clone()),
        locator,
        operator: (!args.camara_operator.is_empty()).then(|| args.camara_operator.clone()),
    };
    let dme = Arc::new(
        Dme::new(tables, KeyRing::random(), DmeConfig::default(), None).with_camara(camara),
    );
    // The floor answers with a real FindCloudlet reply, so both carry the same bytes.
    let cookie = dme
        .register_client(&register_request(&app), local_ctx())
        .map_err(|e| anyhow::anyhow!("register: {}", e.message))?
        .session_cookie;
    let sample = find_request(cookie, CARRIERS[0], 48.8566, 2.3522);
    let reply: Arc<FindCloudletReply> = Arc::new(
        dme.find_cloudlet(&sample, local_ctx())
            .map_err(|e| anyhow::anyhow!("find: {}", e.message))?,
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let rx0 = stopped.clone();
    let until = move || {
        let mut rx = rx0.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let addrs = rt.block_on(async {
        let bind = || TcpListener::bind("127.0.0.1:0");
        let (g, h, fg, fh) = (bind().await?, bind().await?, bind().await?, bind().await?);
        let addrs = [
            g.local_addr()?,
            h.local_addr()?,
            fg.local_addr()?,
            fh.local_addr()?,
        ];
        if args.shipped_server {
            tokio::spawn(dme::server::run(
                dme::server::Listeners::plaintext(g, h),
                dme.clone(),
                until(),
            ));
        } else {
            tokio::spawn(floor::serve_dme(g, h, dme.clone(), stopped.clone()));
        }
        tokio::spawn(floor::serve_grpc(fg, reply.clone(), until()));
        tokio::spawn(floor::serve_rest(fh, reply.clone(), until()));
        anyhow::Ok(addrs)
    })?;
    println!(
        "in-process DME ({}): {} instances of {} at world cities ({} carriers + {}), set up in \
         {:.1?}; gRPC {} REST {}; floor gRPC {} REST {}",
        if args.shipped_server {
            "dme::server::run as shipped"
        } else {
            "dme routes, TCP_NODELAY on gRPC sockets"
        },
        args.instances,
        app,
        CARRIERS.len(),
        edgeplane_benches::PUBLIC_CLOUD,
        t.elapsed(),
        addrs[0],
        addrs[1],
        addrs[2],
        addrs[3]
    );
    println!(
        "CAMARA: device feed of {} entries ({:?}), operator {}, access tokens Ed25519 (key {})",
        args.clients.max(1),
        args.camara_device,
        if args.camara_operator.is_empty() {
            "(none)"
        } else {
            &args.camara_operator
        },
        signing.signing_kid()
    );
    Ok(Target {
        grpc: Some(addrs[0]),
        http: Some(addrs[1]),
        floor_grpc: Some(addrs[2]),
        floor_http: Some(addrs[3]),
        camara_tokens: {
            let t = std::time::Instant::now();
            let n = if args.camara_tokens == 0 {
                args.http_connections
            } else {
                args.camara_tokens
            };
            let tokens = mint_tokens(&signing, &app.organization, n);
            println!(
                "minted {} access tokens in {:.1?}",
                tokens.len(),
                t.elapsed()
            );
            tokens
        },
        app,
        carriers: CARRIERS.map(String::from).to_vec(),
        stop: Some(stop),
        feed_file: Some(feed_path),
    })
}

fn external(args: &Args) -> anyhow::Result<Target> {
    let mut parts = args.app.splitn(3, '/');
    let (Some(org), Some(name), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        anyhow::bail!("--app must be org/name/version, got {:?}", args.app);
    };
    anyhow::ensure!(!args.carriers.is_empty(), "--carriers is empty");
    Ok(Target {
        grpc: args.grpc,
        http: args.http,
        floor_grpc: None,
        floor_http: None,
        app: AppKey {
            organization: org.into(),
            name: name.into(),
            version: version.into(),
        },
        carriers: args.carriers.clone(),
        stop: None,
        camara_tokens: args.camara_token.clone().into_iter().collect(),
        feed_file: None,
    })
}

/// REST request bodies, one per virtual client.
struct Bodies {
    find: Arc<[Bytes]>,
    sed: Arc<[Bytes]>,
    aed: Arc<[Bytes]>,
}

async fn run_one(
    args: &Args,
    target: &Target,
    scenario: Scenario,
    reqs: &Arc<[FindCloudletRequest]>,
    bodies: &Bodies,
) -> anyhow::Result<Option<Run>> {
    let plan = Plan {
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        max_requests: args.max_requests,
        timeout: Duration::from_millis(args.timeout_ms),
    };
    let reg = register_request(&target.app);
    let reg_body: Arc<[Bytes]> = Arc::new([Bytes::from(serde_json::to_vec(&reg)?)]);
    let seed = |i: usize| args.seed ^ ((i as u64 + 1) * 0x9E37_79B9_7F4A_7C15);
    let channels = |addr: SocketAddr| async move {
        let mut chs = Vec::new();
        for _ in 0..args.connections.max(1) {
            chs.push(callers::channel(addr).await?);
        }
        anyhow::Ok(chs)
    };
    let rest = |addr: SocketAddr, call: RestCall| {
        (0..args.http_connections.max(1))
            .map(|i| Rest::new(addr, call.clone(), seed(i)))
            .collect::<Vec<_>>()
    };
    let find_call = RestCall {
        path: "/v1/findcloudlet",
        bodies: bodies.find.clone(),
        headers: Vec::new(),
        auth: Arc::new([]),
        expect: Expect::Prefix(FIND_FOUND_PREFIX),
    };
    // CAMARA: connection i is API client i, with its own token; or, with --camara-tokens N,
    // every request draws one of the N.
    let bearer = |t: &String| http::HeaderValue::from_str(&format!("Bearer {t}"));
    let shared: Arc<[http::HeaderValue]> = if args.camara_tokens > 0 {
        target
            .camara_tokens
            .iter()
            .map(bearer)
            .collect::<Result<_, _>>()?
    } else {
        Arc::new([])
    };
    let camara = |addr: SocketAddr, call: RestCall| {
        (0..args.http_connections.max(1))
            .map(|i| {
                let mut call = call.clone();
                call.auth = if shared.is_empty() {
                    let token = &target.camara_tokens[i % target.camara_tokens.len()];
                    Arc::new([bearer(token)?])
                } else {
                    shared.clone()
                };
                if args.x_correlator {
                    let id = http::HeaderValue::from_str(&format!("dme-load-{i}"))?;
                    call.headers
                        .push((http::HeaderName::from_static("x-correlator"), id));
                }
                anyhow::Ok(Rest::new(addr, call, seed(i)))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    };
    let (srv0, cli0) = (threads_cpu_ns("srv"), threads_cpu_ns("cli"));
    let report = match scenario {
        Scenario::GrpcFind | Scenario::GrpcFloor => {
            let (addr, make): (_, fn(_) -> FindTarget) = if scenario == Scenario::GrpcFind {
                (target.grpc, FindTarget::dme)
            } else {
                (target.floor_grpc, FindTarget::floor)
            };
            let Some(addr) = addr else { return Ok(None) };
            let chs = channels(addr).await?;
            let callers = (0..args.concurrency.max(1))
                .map(|i| GrpcFind::new(make(chs[i % chs.len()].clone()), reqs.clone(), seed(i)))
                .collect();
            engine::run(callers, plan).await
        }
        Scenario::GrpcRegister => {
            let Some(addr) = target.grpc else {
                return Ok(None);
            };
            let chs = channels(addr).await?;
            let callers = (0..args.concurrency.max(1))
                .map(|i| GrpcRegister::new(chs[i % chs.len()].clone(), reg.clone()))
                .collect();
            engine::run(callers, plan).await
        }
        Scenario::RestFind | Scenario::RestFloor => {
            let addr = if scenario == Scenario::RestFind {
                target.http
            } else {
                target.floor_http
            };
            let Some(addr) = addr else { return Ok(None) };
            engine::run(rest(addr, find_call), plan).await
        }
        Scenario::RestRegister => {
            let Some(addr) = target.http else {
                return Ok(None);
            };
            let call = RestCall {
                path: "/v1/registerclient",
                bodies: reg_body,
                headers: Vec::new(),
                auth: Arc::new([]),
                expect: Expect::Prefix(RS_SUCCESS_PREFIX),
            };
            engine::run(rest(addr, call), plan).await
        }
        Scenario::RestSed | Scenario::RestAed => {
            let Some(addr) = target.http else {
                return Ok(None);
            };
            if target.camara_tokens.is_empty() {
                return Ok(None);
            }
            let call = if scenario == Scenario::RestSed {
                RestCall {
                    path: "/simple-edge-discovery/v2/retrieve-closest-edge-cloud-zone",
                    bodies: bodies.sed.clone(),
                    headers: Vec::new(),
                    auth: Arc::new([]),
                    expect: Expect::Prefix(SED_ZONE),
                }
            } else {
                RestCall {
                    path: "/application-endpoint-discovery/v0.1/retrieve-optimal-app-endpoints",
                    bodies: bodies.aed.clone(),
                    headers: Vec::new(),
                    auth: Arc::new([]),
                    expect: Expect::Prefix(AED_ENDPOINTS),
                }
            };
            engine::run(camara(addr, call)?, plan).await
        }
    };
    let elapsed_ok = report.ok.max(1) as f64;
    // CPU over the whole run (warm-up included) per request over the whole run is close to the
    // in-window ratio; scale the window's request count to the run's length.
    let run_secs = plan.warmup.as_secs_f64() + report.window.as_secs_f64();
    let per_req =
        |ns: u64| ns as f64 / 1000.0 / (elapsed_ok * run_secs / report.window.as_secs_f64());
    let local = target.stop.is_some();
    Ok(Some(Run {
        scenario,
        server_us: local.then(|| per_req(threads_cpu_ns("srv") - srv0)),
        client_us: per_req(threads_cpu_ns("cli") - cli0),
        report,
    }))
}

async fn drive(args: &Args, people: &[(String, LatLon)], target: &Target) -> anyhow::Result<()> {
    let t = std::time::Instant::now();
    let reqs: Arc<[FindCloudletRequest]> = virtual_clients(target, people)
        .await
        .context("registering the virtual clients")?
        .into();
    let app_id = edge_model::camara_id::app_id(&target.app);
    let bodies = Bodies {
        find: reqs
            .iter()
            .map(|r| serde_json::to_vec(r).map(Bytes::from))
            .collect::<Result<_, _>>()?,
        sed: camara_bodies(people.len(), args.camara_device, None)?.into(),
        aed: camara_bodies(people.len(), args.camara_device, Some(&app_id))?.into(),
    };
    println!(
        "registered {} virtual clients in {:.1?}",
        reqs.len(),
        t.elapsed()
    );
    let mut runs: Vec<(usize, Run)> = Vec::new();
    for round in 1..=args.rounds.max(1) {
        let mut order = args.scenarios.clone();
        if round % 2 == 0 {
            order.reverse();
        }
        for scenario in order {
            if let Some(run) = run_one(args, target, scenario, &reqs, &bodies).await? {
                report::print_run(round, &run);
                runs.push((round, run));
            }
        }
    }
    report::summary(args.rounds, &args.scenarios, &runs);
    Ok(())
}
