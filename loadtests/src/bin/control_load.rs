//! Control-plane load tests: how fast placement reaches the DME, how fast a big region syncs, and
//! whether an update storm disturbs FindCloudlet latency. Everything runs in this process on
//! 127.0.0.1 (controller on the embedded store in a temp dir, or on etcd), bounded in count and
//! time.
//!
//! ```text
//! control-load latency --creates 1000 [--etcd http://127.0.0.1:2379]
//! control-load sync --instances 100000
//! control-load storm --instances 100000 --rate 5000 --seconds 10
//! ```
//!
//! `--etcd` needs a build with the `etcd` feature (`--features loadtests/etcd`, which needs
//! `protoc`); without it the embedded store is the only one.

/// glibc's allocator serialises threads on its arena locks under the DME's allocation pattern
/// (measured: futex waits in malloc under load); mimalloc keeps per-thread heaps.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use dme_api::proto::{self, match_engine_api_client::MatchEngineApiClient};
use edge_api::pb::{self as epb, controller_client::ControllerClient};
use edge_model::{
    App, AppInst, AppInstKey, AppKey, Cloudlet, CloudletInfo, CloudletKey, CloudletState,
    DeploymentKind, HealthCheck, MaintenanceState, Object, TrackedState,
};
use edge_store::{Op, Store, Txn};
use geodata::LatLon;
use hdrhistogram::Histogram;
use tokio::net::TcpListener;
use tonic::transport::Channel;

#[derive(Parser)]
struct Cli {
    /// Use etcd at these endpoints instead of the embedded store.
    #[arg(long, global = true, value_delimiter = ',')]
    etcd: Vec<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create app instances one by one; time until the DME returns each.
    Latency {
        #[arg(long, default_value_t = 1000)]
        creates: usize,
    },
    /// Seed a big region in the store; time controller start-up and the DME's full sync.
    Sync {
        #[arg(long, default_value_t = 100_000)]
        instances: usize,
    },
    /// FindCloudlet p99 with and without a storm of instance changes.
    Storm {
        #[arg(long, default_value_t = 100_000)]
        instances: usize,
        /// Changes per second.
        #[arg(long, default_value_t = 5000)]
        rate: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent FindCloudlet callers.
        #[arg(long, default_value_t = 32)]
        callers: usize,
    },
}

const DME: &str = "dme-load";

fn app_key() -> AppKey {
    AppKey {
        organization: "loadorg".into(),
        name: "game".into(),
        version: "1".into(),
    }
}

fn cloudlet(i: usize, at: LatLon) -> Cloudlet {
    Cloudlet {
        key: CloudletKey {
            organization: ["telekom", "orange", "vodafone"][i % 3].into(),
            name: format!("c{i}"),
        },
        location: at,
        platform_type: "fake".into(),
        alliance_orgs: Vec::new(),
        maintenance_state: MaintenanceState::NormalOperation,
        state: CloudletState::Ready,
    }
}

fn inst(i: usize, c: &Cloudlet) -> AppInst {
    AppInst {
        key: AppInstKey {
            organization: "loadorg".into(),
            name: format!("i{i}"),
        },
        app: app_key(),
        cloudlet: c.key.clone(),
        cluster: None,
        uri: String::new(),
        mapped_ports: Vec::new(),
        state: TrackedState::CreateRequested,
        health: HealthCheck::Unknown,
        platform_health: HealthCheck::Unknown,
    }
}

fn app() -> App {
    let access_ports = edge_model::ports::parse_access_ports("tcp:443").unwrap_or_default();
    App {
        key: app_key(),
        deployment: DeploymentKind::Docker,
        image_path: "registry.example.net/game:1".into(),
        access_ports,
        default_flavor: None,
        official_fqdn: Vec::new(),
        android_package_name: String::new(),
        auth_public_key: None,
        platform_app: false,
    }
}

/// Distinct sites from the world-cities fixture, jittered so there are as many as asked.
fn sites(n: usize) -> Result<Vec<LatLon>> {
    let cities = geodata::bundled_cities()?;
    Ok((0..n)
        .map(|i| {
            let c = &cities[i % cities.len()];
            let ring = (i / cities.len()) as f64 * 0.01;
            let lat = (c.location.lat() + ring).clamp(-89.0, 89.0);
            LatLon::new(lat, c.location.lon()).unwrap_or(c.location)
        })
        .collect())
}

struct Region {
    handle: controller::server::Handle,
    api: SocketAddr,
    dme_grpc: SocketAddr,
    _dir: Option<tempfile::TempDir>,
}

async fn open_store(etcd: &[String]) -> Result<(Arc<dyn Store>, Option<tempfile::TempDir>)> {
    if etcd.is_empty() {
        let dir = tempfile::tempdir()?;
        let store = edge_store::RedbStore::open(dir.path()).await?;
        return Ok((Arc::new(store), Some(dir)));
    }
    Ok((open_etcd(etcd).await?, None))
}

#[cfg(feature = "etcd")]
async fn open_etcd(etcd: &[String]) -> Result<Arc<dyn Store>> {
    let ns = format!("/control-load-{}/", std::process::id());
    let store =
        edge_store::EtcdStore::connect(edge_store::EtcdOptions::new(etcd.to_vec(), ns)).await?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "etcd"))]
async fn open_etcd(_: &[String]) -> Result<Arc<dyn Store>> {
    anyhow::bail!(
        "--etcd: this control-load was built without etcd support; rebuild with \
         `cargo build --release -p loadtests --features loadtests/etcd` (needs protoc)"
    )
}

/// Starts controller + DME on the store; returns once both serve (the DME not yet synced).
async fn start_region(store: Arc<dyn Store>, dir: Option<tempfile::TempDir>) -> Result<Region> {
    let handle = controller::server::start(store, "load").await?;
    let (api_l, notify_l) = (
        TcpListener::bind("127.0.0.1:0").await?,
        TcpListener::bind("127.0.0.1:0").await?,
    );
    let (api, notify) = (api_l.local_addr()?, notify_l.local_addr()?);
    tokio::spawn(controller::server::run(
        api_l,
        notify_l,
        handle.clone(),
        std::future::pending(),
    ));
    // The fake platform's CRM, as `edgeplane controller` runs it (its stop sender is dropped:
    // it runs as long as the process).
    crm::cli::spawn_fake(
        vec![notify.to_string()],
        None,
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        tokio::sync::watch::channel(false).1,
    );
    let engine = dme::subscriber::spawn_local(dme::subscriber::SubscriberConfig {
        addrs: vec![notify.to_string()],
        tls: None,
        name: DME.into(),
    });
    let (g, h) = (
        TcpListener::bind("127.0.0.1:0").await?,
        TcpListener::bind("127.0.0.1:0").await?,
    );
    let dme_grpc = g.local_addr()?;
    tokio::spawn(dme::server::run(
        dme::server::Listeners::plaintext(g, h),
        engine,
        std::future::pending(),
    ));
    Ok(Region {
        handle,
        api,
        dme_grpc,
        _dir: dir,
    })
}

async fn register(c: &mut MatchEngineApiClient<Channel>) -> Result<String> {
    let k = app_key();
    let r = c
        .register_client(proto::RegisterClientRequest {
            org_name: k.organization,
            app_name: k.name,
            app_vers: k.version,
            ..Default::default()
        })
        .await?;
    Ok(r.into_inner().session_cookie)
}

fn find_req(cookie: &str, at: LatLon) -> proto::FindCloudletRequest {
    proto::FindCloudletRequest {
        session_cookie: cookie.into(),
        gps_location: Some(proto::Loc {
            latitude: at.lat(),
            longitude: at.lon(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn report(name: &str, h: &Histogram<u64>) {
    println!(
        "{name}: n={} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.9) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

async fn create(client: &mut ControllerClient<Channel>, obj: &Object) -> Result<u64> {
    let req = epb::CreateRequest {
        object: Some(epb::Object::from(obj)),
    };
    Ok(edgectl::finish(client.create(req).await).await?)
}

async fn latency(etcd: &[String], creates: usize) -> Result<()> {
    let (store, dir) = open_store(etcd).await?;
    let region = start_region(store, dir).await?;
    let mut ctl = ControllerClient::connect(format!("http://{}", region.api)).await?;
    create(&mut ctl, &Object::App(app())).await?;
    let places = sites(creates)?;
    let cloudlets: Vec<Cloudlet> = places
        .iter()
        .enumerate()
        .map(|(i, p)| cloudlet(i, *p))
        .collect();
    for c in &cloudlets {
        create(&mut ctl, &Object::Cloudlet(c.clone())).await?;
    }
    let mut dme = MatchEngineApiClient::connect(format!("http://{}", region.dme_grpc)).await?;
    let cookie = loop {
        if let Ok(c) = register(&mut dme).await {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut hist = Histogram::<u64>::new(3)?;
    let mut api_hist = Histogram::<u64>::new(3)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    for (i, c) in cloudlets.iter().enumerate() {
        let t0 = Instant::now();
        create(&mut ctl, &Object::AppInst(inst(i, c))).await?;
        api_hist.record(t0.elapsed().as_micros() as u64)?;
        // Poll the DME until the new instance (distance 0 from its cloudlet) is the answer.
        loop {
            let r = dme
                .find_cloudlet(find_req(&cookie, c.location))
                .await?
                .into_inner();
            let hit = r
                .cloudlet_location
                .is_some_and(|l| l.latitude == c.location.lat() && l.longitude == c.location.lon());
            if hit {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "instance {i} never became visible"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        hist.record(t0.elapsed().as_micros() as u64)?;
    }
    let store = if etcd.is_empty() {
        "embedded redb"
    } else {
        "etcd"
    };
    report(
        &format!("create AppInst API call, until READY ({store})"),
        &api_hist,
    );
    report(
        &format!("create AppInst -> FindCloudlet returns it ({store})"),
        &hist,
    );
    Ok(())
}

/// Instance `i` as running, with the given health.
fn ready_inst(i: usize, c: &Cloudlet, health: HealthCheck) -> AppInst {
    AppInst {
        state: TrackedState::Ready,
        health,
        uri: format!("i{i}.example.net"),
        mapped_ports: app().access_ports,
        ..inst(i, c)
    }
}

/// Writes a region with `instances` READY instances straight into the store, in big txns.
async fn seed(store: &dyn Store, instances: usize) -> Result<Vec<LatLon>> {
    let ncloudlets = (instances / 100).clamp(1, 10_000);
    let places = sites(ncloudlets)?;
    let mut objs: Vec<Object> = vec![Object::App(app())];
    let cloudlets: Vec<Cloudlet> = places
        .iter()
        .enumerate()
        .map(|(i, p)| cloudlet(i, *p))
        .collect();
    for c in &cloudlets {
        objs.push(Object::Cloudlet(c.clone()));
        objs.push(Object::CloudletInfo(CloudletInfo::with_state(
            c.key.clone(),
            CloudletState::Ready,
        )));
    }
    for i in 0..instances {
        objs.push(Object::AppInst(ready_inst(
            i,
            &cloudlets[i % cloudlets.len()],
            HealthCheck::Ok,
        )));
    }
    for chunk in objs.chunks(edge_store::MAX_TXN_OPS) {
        let ops = chunk.iter().map(|o| {
            Op::put(
                controller::sync::obj_key(&o.key()),
                controller::codec::encode(o),
            )
        });
        store.txn(Txn::new().and_then(ops)).await?;
    }
    Ok(places)
}

async fn sync(etcd: &[String], instances: usize) -> Result<()> {
    let (store, dir) = open_store(etcd).await?;
    let t = Instant::now();
    seed(store.as_ref(), instances).await?;
    println!(
        "seeded {instances} instances in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let t0 = Instant::now();
    let region = start_region(store, dir).await?;
    let started = t0.elapsed();
    let revision = region.handle.core.shared.read().0.revision;
    tokio::time::timeout(
        Duration::from_secs(120),
        region.handle.acks.wait_for(DME, revision),
    )
    .await
    .context("DME sync")?;
    let total = t0.elapsed();
    println!(
        "{instances} instances: controller start-up {:.0}ms, DME full sync {:.0}ms, total {:.0}ms",
        started.as_secs_f64() * 1e3,
        (total - started).as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3
    );
    Ok(())
}

/// `callers` tasks call FindCloudlet for `secs`; returns the latency histogram (µs).
async fn find_load(
    addr: SocketAddr,
    places: &[LatLon],
    callers: usize,
    secs: u64,
) -> Result<Histogram<u64>> {
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let cookie = register(&mut MatchEngineApiClient::new(channel.clone())).await?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for t in 0..callers {
        let mut c = MatchEngineApiClient::new(channel.clone());
        let (cookie, places) = (cookie.clone(), places.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            let mut i = t;
            while Instant::now() < deadline {
                let at = places[i % places.len()];
                i += 7;
                let t0 = Instant::now();
                if c.find_cloudlet(find_req(&cookie, at)).await.is_ok() {
                    let _ = h.record(t0.elapsed().as_micros() as u64);
                }
            }
            h
        }));
    }
    let mut all = Histogram::<u64>::new(3)?;
    for t in tasks {
        all.add(t.await?)?;
    }
    Ok(all)
}

/// Writes `rate` health flips per second (OK <-> SERVER_FAIL, so answers change too) straight
/// into the store, in batches every 20 ms, until `stop`. Returns the number written.
async fn storm_writer(
    store: Arc<dyn Store>,
    instances: usize,
    ncloudlets: usize,
    rate: usize,
    stop: Instant,
) -> usize {
    let per_batch = (rate / 50).clamp(1, edge_store::MAX_TXN_OPS);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut n, mut k) = (0usize, 0usize);
    while Instant::now() < stop {
        tick.tick().await;
        let ops: Vec<Op> = (0..per_batch)
            .map(|_| {
                k = (k + 7919) % instances;
                let c = cloudlet(k % ncloudlets, LatLon::default());
                let health = if n % 2 == 0 {
                    HealthCheck::ServerFail
                } else {
                    HealthCheck::Ok
                };
                n += 1;
                let o = Object::AppInst(ready_inst(k, &c, health));
                Op::put(
                    controller::sync::obj_key(&o.key()),
                    controller::codec::encode(&o),
                )
            })
            .collect();
        if store.txn(Txn::new().and_then(ops)).await.is_err() {
            break;
        }
    }
    n
}

async fn storm(
    etcd: &[String],
    instances: usize,
    rate: usize,
    seconds: u64,
    callers: usize,
) -> Result<()> {
    let (store, dir) = open_store(etcd).await?;
    let places = seed(store.as_ref(), instances).await?;
    let region = start_region(store.clone(), dir).await?;
    let revision = region.handle.core.shared.read().0.revision;
    region.handle.acks.wait_for(DME, revision).await;
    // Interleave quiet and stormy rounds: this machine is shared and noisy.
    let (mut quiet_p99, mut storm_p99) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let quiet = find_load(region.dme_grpc, &places, callers, seconds).await?;
        report(&format!("round {round}: FindCloudlet, quiet"), &quiet);
        let stop = Instant::now() + Duration::from_secs(seconds);
        let writer = tokio::spawn(storm_writer(
            store.clone(),
            instances,
            places.len(),
            rate,
            stop,
        ));
        let stormy = find_load(region.dme_grpc, &places, callers, seconds).await?;
        let changes = writer.await?;
        report(
            &format!(
                "round {round}: FindCloudlet, storm of {:.0} changes/s",
                changes as f64 / seconds as f64
            ),
            &stormy,
        );
        let last = store.current_revision().await?;
        let t = Instant::now();
        region.handle.acks.wait_for(DME, last).await;
        println!(
            "round {round}: DME caught up with the storm {:.1} ms after it ended",
            t.elapsed().as_secs_f64() * 1e3
        );
        quiet_p99.push(quiet.value_at_quantile(0.99));
        storm_p99.push(stormy.value_at_quantile(0.99));
    }
    quiet_p99.sort_unstable();
    storm_p99.sort_unstable();
    let (q, s) = (quiet_p99[1] as f64, storm_p99[1] as f64);
    println!(
        "median p99: quiet {:.2} ms, storm {:.2} ms, ratio {:.2}",
        q / 1e3,
        s / 1e3,
        s / q
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Latency { creates } => latency(&cli.etcd, creates).await,
        Cmd::Sync { instances } => sync(&cli.etcd, instances).await,
        Cmd::Storm {
            instances,
            rate,
            seconds,
            callers,
        } => storm(&cli.etcd, instances, rate, seconds, callers).await,
    }
}
