//! `edgeplane up`: a whole local region in one process — controller on the embedded store, the
//! CRM of the `fake` platform, a DME, the region DNS, and for every cloudlet on the `local`
//! platform its CRM (real processes), shared root LB and Shepherd — with the deployment
//! documents applied through the controller's own API.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use edge_api::pb::controller_client::ControllerClient;
use edge_model::{Cloudlet, Deployment};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Flags of `edgeplane up`.
#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Deployment documents applied at start, in order (a default one that does not exist is
    /// skipped).
    #[arg(
        long,
        value_name = "FILE",
        default_values = ["examples/region.yaml", "examples/local.yaml"]
    )]
    pub apply: Vec<PathBuf>,
    /// Apply nothing at start.
    #[arg(long)]
    pub no_apply: bool,
    #[command(flatten)]
    pub store: controller::cli::StoreArgs,
    /// Controller API (gRPC).
    #[arg(long, default_value = "127.0.0.1:55001")]
    pub api_addr: String,
    /// Controller notify.
    #[arg(long, default_value = "127.0.0.1:37001")]
    pub notify_addr: String,
    /// DME gRPC.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub dme_grpc_addr: String,
    /// DME REST.
    #[arg(long, default_value = "127.0.0.1:38001")]
    pub dme_http_addr: String,
    /// Region DNS (UDP and TCP).
    #[arg(long, default_value = "127.0.0.1:5353")]
    pub dns_addr: String,
    /// Region name used in generated FQDNs (default: the first document's, else "local").
    #[arg(long)]
    pub region: Option<String>,
    /// How local cloudlets isolate their clusters.
    #[arg(long, value_enum, default_value_t = crm::platform::local::net::Isolation::Auto)]
    pub isolation: crm::platform::local::net::Isolation,
    /// InfluxDB the local cloudlets' Shepherds write to (e.g. http://127.0.0.1:8086).
    #[arg(long)]
    pub influx_url: Option<String>,
}

async fn bind(addr: &str, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {what} address {addr}"))
}

/// The documents to apply (explicitly named ones must exist).
fn documents(args: &UpArgs) -> Result<Vec<(PathBuf, Deployment)>> {
    if args.no_apply {
        return Ok(Vec::new());
    }
    let defaults = UpArgs::parse_defaults_apply();
    let mut out = Vec::new();
    for path in &args.apply {
        if !path.exists() && defaults.contains(path) {
            continue;
        }
        let doc = edge_model::document::load(path)
            .with_context(|| format!("loading {}", path.display()))?;
        out.push((path.clone(), doc));
    }
    Ok(out)
}

impl UpArgs {
    fn parse_defaults_apply() -> Vec<PathBuf> {
        vec!["examples/region.yaml".into(), "examples/local.yaml".into()]
    }
}

/// What runs for the local cloudlets, so Ctrl-C can stop their workloads.
type Platforms = Arc<Mutex<Vec<Arc<dyn crm::platform::Platform>>>>;

/// Resolves on Ctrl-C or SIGTERM (registered at once, so a signal during start-up is not lost).
fn interrupted() -> Result<impl Future<Output = ()>> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let int = tokio::spawn(tokio::signal::ctrl_c());
    Ok(async move {
        tokio::select! {
            _ = int => {}
            _ = term.recv() => {}
        }
    })
}

pub async fn run(args: UpArgs) -> Result<()> {
    let signal = interrupted()?;
    tokio::pin!(signal);
    let docs = documents(&args)?;
    let region = args
        .region
        .clone()
        .or_else(|| docs.first().map(|(_, d)| d.region.clone()))
        .unwrap_or_else(|| "local".into());
    let store = args.store.open().await?;
    let handle = controller::server::start(store, &region).await?;
    let (api, notify) = (
        bind(&args.api_addr, "controller API").await?,
        bind(&args.notify_addr, "notify").await?,
    );
    let (api_addr, notify_addr) = (api.local_addr()?, notify.local_addr()?);
    let notify_addrs = vec![notify_addr.to_string()];
    let (stop_tx, stop) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(controller::server::run(
        api,
        notify,
        handle.clone(),
        stopped(stop.clone()),
    ));
    crm::cli::spawn_fake(
        notify_addrs.clone(),
        None,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        stop.clone(),
    );

    let engine = dme::subscriber::spawn_local(dme::subscriber::SubscriberConfig {
        addrs: notify_addrs.clone(),
        tls: None,
        name: "dme-local".into(),
    });
    let (g, h) = (
        bind(&args.dme_grpc_addr, "DME gRPC").await?,
        bind(&args.dme_http_addr, "DME REST").await?,
    );
    let (grpc_addr, http_addr) = (g.local_addr()?, h.local_addr()?);
    let dme_task = tokio::spawn(dme::server::run(
        dme::server::Listeners::plaintext(g, h),
        engine,
        stopped(stop.clone()),
    ));

    let dns_addr: SocketAddr = args
        .dns_addr
        .parse()
        .with_context(|| format!("--dns-addr {:?} is not IP:PORT", args.dns_addr))?;
    let (udp, tcp) = edge_dns::cli::bind(dns_addr)
        .await
        .with_context(|| format!("binding the region DNS on {dns_addr}"))?;
    let dns_addr = udp.local_addr()?;
    tokio::spawn(edge_dns::cli::run(
        edge_dns::cli::DnsConfig::new(notify_addrs.clone(), region.clone()),
        udp,
        tcp,
        stopped(stop.clone()),
    ));

    let platforms: Platforms = Arc::default();
    let started = async {
        let mut client = ControllerClient::connect(format!("http://{api_addr}")).await?;
        let mut local = Vec::new();
        for (path, doc) in &docs {
            // Local cloudlets first without their clusters and instances: their CRM needs the
            // cloudlet to exist, and a create waits for the CRM.
            let mine: Vec<&Cloudlet> = doc
                .cloudlets
                .iter()
                .filter(|c| c.platform_type == "local")
                .collect();
            if !mine.is_empty() {
                let mut first = doc.clone();
                first.cluster_insts.clear();
                first.app_insts.clear();
                edgectl::apply(&mut client, &first)
                    .await
                    .with_context(|| format!("applying {}", path.display()))?;
                for c in mine {
                    let lb_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + local.len() as u8));
                    let cloudlet = LocalCloudlet {
                        key: c.key.clone(),
                        lb_ip,
                    };
                    cloudlet
                        .start(&args, &notify_addrs, http_addr, &platforms, &stop)
                        .await?;
                    local.push(cloudlet);
                }
            }
            let report = edgectl::apply(&mut client, doc)
                .await
                .with_context(|| format!("applying {}", path.display()))?;
            tokio::time::timeout(
                Duration::from_secs(30),
                handle.acks.wait_for("dme-local", report.revision),
            )
            .await
            .context("the DME did not catch up within 30 s")?;
            println!(
                "applied {}: {} created, {} updated, {} unchanged",
                path.display(),
                report.created,
                report.updated,
                report.unchanged
            );
        }
        banner(
            &region,
            &args,
            api_addr,
            notify_addr,
            grpc_addr,
            http_addr,
            dns_addr,
            &local,
        );
        anyhow::Ok(())
    };
    let result = tokio::select! {
        r = started => match r {
            Ok(()) => {
                signal.await;
                Ok(())
            }
            Err(e) => Err(e),
        },
        () = &mut signal => Ok(()),
    };
    let _ = stop_tx.send(true);
    println!("stopping the local cloudlets' workloads");
    let running: Vec<_> = platforms.lock().map(|p| p.clone()).unwrap_or_default();
    for p in running {
        p.stop_all().await;
    }
    result?;
    dme_task.await??;
    Ok(())
}

/// A cloudlet of the `local` platform and the public address of its root LB.
struct LocalCloudlet {
    key: edge_model::CloudletKey,
    lb_ip: IpAddr,
}

#[derive(Parser)]
struct RootLbCli {
    #[command(flatten)]
    args: dataplane::RootLbArgs,
}

impl LocalCloudlet {
    /// Its CRM, its root LB and its Shepherd.
    async fn start(
        &self,
        args: &UpArgs,
        controller: &[String],
        dme_http: SocketAddr,
        platforms: &Platforms,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        let opts = crm::cli::PlatformOptions {
            state_dir: args.store.data_dir.join("crm"),
            isolation: args.isolation,
            ..Default::default()
        };
        let made = platforms.clone();
        let config = crm::CrmConfig {
            addrs: controller.to_vec(),
            tls: None,
            name: format!("crm-{}-{}", self.key.organization, self.key.name),
            scope: crm::Scope::Cloudlet(self.key.clone()),
            platforms: Box::new(move |c| {
                let p = crm::cli::make_platform(&opts, c)?;
                if let Ok(mut all) = made.lock() {
                    all.push(p.clone());
                }
                Ok(p)
            }),
            rootlb_address: Some(self.lb_ip),
        };
        let (key, rx) = (self.key.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = crm::run(config, rx).await {
                tracing::error!(cloudlet = %key, "CRM stopped: {e}");
            }
        });
        // The root LB's metrics on a free port, for Shepherd.
        let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let cloudlet = format!("{}/{}", self.key.organization, self.key.name);
        let lb = RootLbCli::try_parse_from([
            "rootlb",
            "--controller",
            &controller.join(","),
            "--cloudlet",
            &cloudlet,
            "--listen-ip",
            &self.lb_ip.to_string(),
            "--metrics-addr",
            &metrics.to_string(),
        ])?
        .args;
        let mut rx = stop.clone();
        tokio::spawn(dataplane::run_rootlb_until(lb, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        let mut shepherd = shepherd::ShepherdConfig::new(controller.to_vec(), self.key.clone());
        shepherd.sources = shepherd::Sources {
            rootlb_metrics: Some(format!("http://{metrics}/metrics")),
            dme_metrics: vec![format!("http://{dme_http}/metrics")],
            processes: Some(Arc::new(shepherd::StateDirSource::new(
                args.store
                    .data_dir
                    .join("crm")
                    .join(format!("{}-{}", self.key.organization, self.key.name)),
            ))),
        };
        shepherd.influx = args
            .influx_url
            .as_ref()
            .map(|u| shepherd::InfluxConfig::new(u.clone(), "metrics"));
        let mut rx = stop.clone();
        tokio::spawn(async move {
            let done = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = shepherd::run(shepherd, done).await {
                tracing::error!("Shepherd stopped: {e}");
            }
        });
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn banner(
    region: &str,
    args: &UpArgs,
    api: SocketAddr,
    notify: SocketAddr,
    grpc: SocketAddr,
    http: SocketAddr,
    dns: SocketAddr,
    local: &[LocalCloudlet],
) {
    println!(
        "Edgeplane region {region:?} is up (data in {}):",
        args.store.data_dir.display()
    );
    println!("  controller API  {api}    (edgectl --addr {api} show --all)");
    println!("  notify          {notify}");
    println!("  DME gRPC        {grpc}");
    println!("  DME REST        {http}");
    println!("  region DNS      {dns}");
    for c in local {
        println!("  root LB of {}  {}", c.key, c.lb_ip);
    }
    println!("Try:");
    println!(
        "  cargo run --release --bin edgectl -- dme --dme-addr {grpc} find \\\n    --app NimbusGames/arena-shooter/2.3 --carrier 26201 --lat 52.3906 --lon 13.0645"
    );
    println!(
        "  curl -s {http}/v1/registerclient -d '{{\"org_name\":\"NimbusGames\",\"app_name\":\"arena-shooter\",\"app_vers\":\"2.3\"}}'"
    );
    if !local.is_empty() {
        println!(
            "  cargo run --release --bin edgectl -- dme --dme-addr {grpc} find \\\n    --app NimbusGames/echo/1 --carrier 26201 --lat 52.3906 --lon 13.0645 --connect --dns {dns}"
        );
        println!(
            "  dig @{} -p {} shared.berlin-local-telekom.{region}.edge.example.net",
            dns.ip(),
            dns.port()
        );
    }
    println!("Ctrl-C stops the region.");
}
