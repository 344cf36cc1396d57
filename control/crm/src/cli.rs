//! The `crm` role: `edgeplane crm --controller ADDR --cloudlet ORG/NAME`, and the in-process
//! CRM of the `fake` platform that `edgeplane controller` and `edgeplane up` run.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use edge_model::{Cloudlet, CloudletKey};
use tokio::sync::watch;

use crate::platform::Platform;
use crate::platform::fake::FakePlatform;
use crate::platform::local::net::Isolation;
use crate::platform::local::{LocalOptions, LocalPlatform};
use crate::subscribe::{CrmConfig, PlatformFactory, Scope};

/// Flags of `edgeplane crm`.
#[derive(clap::Args, Debug, Clone)]
pub struct CrmArgs {
    /// Controller notify addresses, tried in turn.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:37001")]
    pub controller: Vec<String>,
    /// The cloudlet this CRM runs, as ORGANIZATION/NAME.
    #[arg(long, value_parser = parse_cloudlet)]
    pub cloudlet: CloudletKey,
    /// Where the local platform records what it runs (per cloudlet underneath).
    #[arg(long, default_value = "./edgeplane-data/crm")]
    pub state_dir: PathBuf,
    /// How the local platform isolates clusters.
    #[arg(long, value_enum, default_value_t = Isolation::Auto)]
    pub isolation: Isolation,
    /// Public address of the cloudlet's shared root LB (what its names resolve to).
    #[arg(long)]
    pub rootlb_address: Option<IpAddr>,
    /// The node address the fake platform reports for its clusters.
    #[arg(long, default_value = "127.0.0.1")]
    pub fake_node_address: IpAddr,
    /// Seconds a started process may take to listen on its TCP ports.
    #[arg(long, default_value_t = 10)]
    pub ready_timeout_secs: u64,
    /// Subscriber name (default: crm-ORG-NAME).
    #[arg(long)]
    pub name: Option<String>,
    /// Mutual TLS with the controller's notify endpoint (`edgeplane pki issue --role crm`).
    #[command(flatten)]
    pub mtls: edge_tls::cli::MtlsArgs,
}

pub fn parse_cloudlet(s: &str) -> Result<CloudletKey, String> {
    match s.split_once('/') {
        Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => Ok(CloudletKey {
            organization: o.into(),
            name: n.into(),
        }),
        _ => Err(format!("{s:?} is not ORGANIZATION/NAME")),
    }
}

/// Options of the platforms a CRM may start.
#[derive(Clone, Debug)]
pub struct PlatformOptions {
    pub state_dir: PathBuf,
    pub isolation: Isolation,
    pub fake_node_address: IpAddr,
    pub ready_timeout: Duration,
}

impl Default for PlatformOptions {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("./edgeplane-data/crm"),
            isolation: Isolation::Auto,
            fake_node_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// The platform of `cloudlet` by its `platform_type`.
pub fn make_platform(
    opts: &PlatformOptions,
    cloudlet: &Cloudlet,
) -> Result<Arc<dyn Platform>, String> {
    match cloudlet.platform_type.as_str() {
        "fake" => Ok(Arc::new(FakePlatform::new(opts.fake_node_address))),
        "local" => {
            let dir = opts.state_dir.join(format!(
                "{}-{}",
                cloudlet.key.organization, cloudlet.key.name
            ));
            LocalPlatform::new(LocalOptions {
                state_dir: dir,
                isolation: opts.isolation,
                cloudlet: cloudlet.key.clone(),
                ready_timeout: opts.ready_timeout,
            })
            .map(|p| Arc::new(p) as Arc<dyn Platform>)
            .map_err(|e| e.to_string())
        }
        other => Err(format!(
            "platform {other:?} has no driver here (drivers: fake, local)"
        )),
    }
}

fn factory(opts: PlatformOptions) -> PlatformFactory {
    Box::new(move |c: &Cloudlet| make_platform(&opts, c))
}

/// Runs the CRM of one cloudlet until Ctrl-C; its workloads keep running after it stops, so
/// the next CRM adopts them.
pub async fn run_crm(args: CrmArgs) -> Result<()> {
    let opts = PlatformOptions {
        state_dir: args.state_dir.clone(),
        isolation: args.isolation,
        fake_node_address: args.fake_node_address,
        ready_timeout: Duration::from_secs(args.ready_timeout_secs),
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("crm-{}-{}", args.cloudlet.organization, args.cloudlet.name));
    let config = CrmConfig {
        addrs: args.controller.clone(),
        tls: args.mtls.controller_client()?,
        name,
        scope: Scope::Cloudlet(args.cloudlet.clone()),
        platforms: factory(opts),
        rootlb_address: args.rootlb_address,
    };
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    });
    println!(
        "CRM for cloudlet {} subscribing to {}",
        args.cloudlet,
        args.controller.join(",")
    );
    crate::run(config, stop)
        .await
        .with_context(|| format!("CRM for cloudlet {}", args.cloudlet))
}

/// A CRM for every cloudlet of the `fake` platform, in this process (the controller no longer
/// drives a platform itself). Stops when `stop` turns true.
pub fn spawn_fake(
    controller: Vec<String>,
    tls: Option<edge_tls::MtlsClient>,
    node_address: IpAddr,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let opts = PlatformOptions {
        fake_node_address: node_address,
        ..PlatformOptions::default()
    };
    let config = CrmConfig {
        addrs: controller,
        tls,
        name: "crm-fake".into(),
        scope: Scope::Platform("fake".into()),
        platforms: factory(opts),
        rootlb_address: None,
    };
    tokio::spawn(async move {
        if let Err(e) = crate::run(config, stop).await {
            tracing::error!("the fake platform's CRM stopped: {e}");
        }
    })
}
