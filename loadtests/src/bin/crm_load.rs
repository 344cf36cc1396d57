//! CRM figures, everything in this process on 127.0.0.1 (controller on the embedded store in a
//! temp dir), bounded in count and time:
//!
//! ```text
//! crm-load create-latency --creates 20     # create AppInst -> first byte echoed through the LB
//! crm-load fake-capacity --instances 10000 # instances one fake-platform CRM drives
//! ```
//!
//! `create-latency` runs a `local` cloudlet (its CRM starting real echo processes, its root LB
//! on a loopback address of its own) and times, per instance, from the create call to the first
//! byte that comes back through the root LB from the new process. `fake-capacity` gives one
//! CRM of the `fake` platform a cloudlet and creates instances in waves of concurrent creates;
//! it reports, per thousand instances, the create-to-READY latency: while the CRM's reconcile
//! keeps up it stays flat, when it falls behind it grows with the instance count.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use edge_api::pb::{self, controller_client::ControllerClient};
use edge_model::{AppInst, AppInstKey, AppKey, CloudletKey, HealthCheck, Object, TrackedState};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::Channel;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Time from `create appinst` to the first byte echoed through the root LB (local platform).
    CreateLatency {
        #[arg(long, default_value_t = 20)]
        creates: usize,
    },
    /// How many instances one fake-platform CRM drives before its reconcile falls behind.
    FakeCapacity {
        #[arg(long, default_value_t = 10_000)]
        instances: usize,
        /// Creates in flight.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    let dir = tempfile::tempdir()?;
    match cli.cmd {
        Cmd::CreateLatency { creates } => rt.block_on(create_latency(dir.path(), creates)),
        Cmd::FakeCapacity {
            instances,
            concurrency,
        } => rt.block_on(fake_capacity(dir.path(), instances, concurrency)),
    }
}

/// A controller serving on OS-chosen ports: (API client, notify address, stop).
async fn controller(
    dir: &Path,
) -> Result<(ControllerClient<Channel>, SocketAddr, watch::Sender<bool>)> {
    let store = edge_store::RedbStore::open(&dir.join("store")).await?;
    let mut handle = controller::server::start(std::sync::Arc::new(store), "load").await?;
    handle.core = std::sync::Arc::new(controller::Core {
        settle_timeout: Duration::from_secs(120),
        store: handle.core.store.clone(),
        shared: handle.core.shared.clone(),
        acks: handle.core.acks.clone(),
        region: handle.core.region.clone(),
    });
    let (api, notify) = (
        TcpListener::bind("127.0.0.1:0").await?,
        TcpListener::bind("127.0.0.1:0").await?,
    );
    let (api_addr, notify_addr) = (api.local_addr()?, notify.local_addr()?);
    let (stop_tx, mut stop) = watch::channel(false);
    tokio::spawn(controller::server::run(api, notify, handle, async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    let client = ControllerClient::connect(format!("http://{api_addr}")).await?;
    Ok((client, notify_addr, stop_tx))
}

fn document(platform: &str, image: &str) -> String {
    format!(
        r#"version: 1
region: load
cloudlets:
  - key: {{organization: loadop, name: site-1}}
    location: {{latitude: 52.52, longitude: 13.405}}
    platform_type: {platform}
apps:
  - key: {{organization: loadorg, name: echo, version: "1"}}
    deployment: process
    image_path: "{image}"
    access_ports: "tcp:7000"
"#
    )
}

fn cloudlet() -> CloudletKey {
    CloudletKey {
        organization: "loadop".into(),
        name: "site-1".into(),
    }
}

fn inst(name: &str, cluster: Option<&str>) -> Object {
    Object::AppInst(AppInst {
        key: AppInstKey {
            organization: "loadorg".into(),
            name: name.into(),
        },
        app: AppKey {
            organization: "loadorg".into(),
            name: "echo".into(),
            version: "1".into(),
        },
        cloudlet: cloudlet(),
        cluster: cluster.map(String::from),
        uri: String::new(),
        mapped_ports: Vec::new(),
        state: TrackedState::CreateRequested,
        health: HealthCheck::Unknown,
        platform_health: HealthCheck::Unknown,
    })
}

fn cluster(name: &str) -> Object {
    Object::ClusterInst(edge_model::ClusterInst {
        key: edge_model::ClusterKey {
            organization: "loadorg".into(),
            name: name.into(),
        },
        cloudlet: cloudlet(),
        flavor: None,
        ip_access: edge_model::IpAccess::Shared,
        num_masters: 1,
        num_nodes: 0,
        state: TrackedState::CreateRequested,
        node_address: None,
    })
}

/// Creates `o` and waits for the controller's answer (READY, or the error).
async fn create(client: &mut ControllerClient<Channel>, o: &Object) -> Result<Vec<String>> {
    let mut s = client
        .create(pb::CreateRequest {
            object: Some(pb::Object::from(o)),
        })
        .await?
        .into_inner();
    let mut lines = Vec::new();
    while let Some(p) = s.message().await? {
        lines.push(p.message);
    }
    if !lines.last().is_some_and(|l| l.ends_with("done")) {
        bail!("{} did not become READY: {lines:?}", o.key());
    }
    Ok(lines)
}

async fn delete(client: &mut ControllerClient<Channel>, o: &Object) -> Result<()> {
    edgectl::delete_object(client, &o.key()).await?;
    Ok(())
}

/// The public port the controller gave `name`'s first mapped port.
async fn public_port(client: &mut ControllerClient<Channel>, o: &Object) -> Result<u16> {
    let mut s = client
        .show(pb::ShowRequest {
            key: Some(pb::ObjectKey::from(&o.key())),
            ..Default::default()
        })
        .await?
        .into_inner();
    let obj = s.message().await?.context("instance not found")?;
    match Object::try_from(obj)? {
        Object::AppInst(i) => Ok(u16::try_from(
            i.mapped_ports.first().context("no port")?.public_port,
        )?),
        _ => bail!("not an instance"),
    }
}

async fn echoed(addr: SocketAddr) -> bool {
    let Ok(Ok(mut s)) = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    else {
        return false;
    };
    let mut b = [0u8; 1];
    s.write_all(b"x").await.is_ok()
        && matches!(
            tokio::time::timeout(Duration::from_millis(500), s.read_exact(&mut b)).await,
            Ok(Ok(_))
        )
}

async fn create_latency(dir: &Path, creates: usize) -> Result<()> {
    let (mut client, notify, stop_tx) = controller(dir).await?;
    let me = std::env::current_exe()?;
    let echo = me
        .parent()
        .map(|d| d.join("edgeplane"))
        .filter(|p| p.exists())
        .context(
            "build the edgeplane binary next to crm-load (cargo build --release -p edgeplane)",
        )?;
    let doc = edge_model::document::parse(&document("local", &format!("{} echo", echo.display())))?;
    edgectl::apply(&mut client, &doc).await?;
    let lb_ip = IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        9,
        (std::process::id() % 200) as u8 + 10,
    ));
    let opts = crm::cli::PlatformOptions {
        state_dir: dir.join("crm"),
        ..Default::default()
    };
    let stop = stop_tx.subscribe();
    let config = crm::CrmConfig {
        addrs: vec![notify.to_string()],
        tls: None,
        name: "crm-load".into(),
        scope: crm::Scope::Cloudlet(cloudlet()),
        platforms: Box::new(move |c| crm::cli::make_platform(&opts, c)),
        rootlb_address: Some(lb_ip),
    };
    tokio::spawn(crm::run(config, stop.clone()));
    #[derive(Parser)]
    struct Lb {
        #[command(flatten)]
        args: dataplane::RootLbArgs,
    }
    let lb = Lb::try_parse_from([
        "rootlb",
        "--controller",
        &notify.to_string(),
        "--cloudlet",
        "loadop/site-1",
        "--listen-ip",
        &lb_ip.to_string(),
    ])?
    .args;
    let mut lb_stop = stop.clone();
    tokio::spawn(dataplane::run_rootlb_until(lb, async move {
        let _ = lb_stop.wait_for(|s| *s).await;
    }));
    let mut hist = Histogram::<u64>::new(3)?;
    let mut objects = Vec::new();
    for i in 0..creates {
        // Its own cluster (an address of its own), made before the clock starts.
        let c = cluster(&format!("c{i}"));
        create(&mut client, &c).await?;
        let o = inst(&format!("e{i}"), Some(&format!("c{i}")));
        let started = Instant::now();
        create(&mut client, &o).await?;
        let port = public_port(&mut client, &o).await?;
        let front = SocketAddr::new(lb_ip, port);
        while !echoed(front).await {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("no echo through {front} within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ms = started.elapsed().as_micros() as u64;
        hist.record(ms)?;
        println!("create {i}: first byte after {:.1} ms", ms as f64 / 1000.0);
        objects.push((o, c));
    }
    println!(
        "create -> first byte through the root LB, {creates} creates: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0
    );
    for (o, c) in objects {
        delete(&mut client, &o).await?;
        delete(&mut client, &c).await?;
    }
    let _ = stop_tx.send(true);
    Ok(())
}

async fn fake_capacity(dir: &Path, instances: usize, concurrency: usize) -> Result<()> {
    let (mut client, notify, stop_tx) = controller(dir).await?;
    let doc = edge_model::document::parse(&document("fake", "unused"))?;
    edgectl::apply(&mut client, &doc).await?;
    let config = crm::CrmConfig {
        addrs: vec![notify.to_string()],
        tls: None,
        name: "crm-fake-load".into(),
        scope: crm::Scope::Cloudlet(cloudlet()),
        platforms: Box::new(|c| crm::cli::make_platform(&crm::cli::PlatformOptions::default(), c)),
        rootlb_address: None,
    };
    tokio::spawn(crm::run(config, stop_tx.subscribe()));
    let started = Instant::now();
    let mut done = 0;
    let wave = 1000.min(instances);
    while done < instances {
        let n = wave.min(instances - done);
        let t = Instant::now();
        let mut hist = Histogram::<u64>::new(3)?;
        let names: Vec<String> = (done..done + n).map(|i| format!("f{i}")).collect();
        for chunk in names.chunks(concurrency) {
            let mut tasks = Vec::new();
            for name in chunk {
                let (mut c, o) = (client.clone(), inst(name, None));
                tasks.push(tokio::spawn(async move {
                    let t = Instant::now();
                    create(&mut c, &o).await.map(|_| t.elapsed())
                }));
            }
            for t in tasks {
                hist.record(t.await??.as_micros() as u64)?;
            }
        }
        done += n;
        println!(
            "{done:>6} instances: {:>6.0} creates/s, create -> READY p50 {:.2} ms, p99 {:.2} ms",
            n as f64 / t.elapsed().as_secs_f64(),
            hist.value_at_quantile(0.5) as f64 / 1000.0,
            hist.value_at_quantile(0.99) as f64 / 1000.0
        );
    }
    println!(
        "{instances} instances READY in {:.1} s ({:.0}/s) on one fake-platform CRM",
        started.elapsed().as_secs_f64(),
        instances as f64 / started.elapsed().as_secs_f64()
    );
    let _ = stop_tx.send(true);
    Ok(())
}
