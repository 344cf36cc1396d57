//! `edgeplane`: one binary, one role per subcommand. Each role lives in its own crate; this file
//! only parses flags, sets up logging and the runtime, and dispatches.

mod pki;
mod up;

/// glibc's allocator serialises threads on its arena locks under the DME's allocation pattern
/// (measured: futex waits in malloc under load); mimalloc keeps per-thread heaps.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "edgeplane", version, about = "Edgeplane edge-cloud platform")]
struct Cli {
    /// Tokio worker threads (default: one per core).
    #[arg(long, global = true, env = "EDGEPLANE_WORKERS")]
    workers: Option<usize>,
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// A whole local region in one process: controller (embedded store) + DME, with a
    /// deployment document applied.
    Up(up::UpArgs),
    /// The Distributed Matching Engine (gRPC + REST client API).
    Dme(dme::cli::DmeArgs),
    /// The regional controller (object API, notify push), with the CRM of every cloudlet of
    /// the `fake` platform in the same process.
    Controller(ControllerRole),
    /// The Cloudlet Resource Manager of one cloudlet (runs its clusters and app instances).
    Crm(crm::cli::CrmArgs),
    /// The region DNS: authoritative for the region's app_dns_root, from the controller's
    /// objects.
    Dns(edge_dns::cli::DnsArgs),
    /// A cloudlet's metrics agent (root LB, processes, cloudlet use, DME counters → InfluxDB
    /// and a Prometheus endpoint).
    Shepherd(shepherd::ShepherdArgs),
    /// The echo app (serves its access ports, echoing TCP bytes and UDP datagrams): what the
    /// example region's `local` cloudlets run.
    Echo(crm::echo::EchoArgs),
    /// The shared root load balancer of a cloudlet (multi-tenant L4 proxy).
    Rootlb(dataplane::RootLbArgs),
    /// The master controller: users, organisations, roles, API keys and the audit log in
    /// front of the regions (REST API).
    Mc(mc::cli::McArgs),
    /// The region PKI: `init` the region CA, `issue` component certificates (mutual TLS).
    Pki(pki::PkiArgs),
    /// Print the version and exit.
    Version,
}

/// Flags of `edgeplane controller`.
#[derive(clap::Args)]
struct ControllerRole {
    #[command(flatten)]
    controller: controller::cli::ControllerArgs,
    /// The node address the fake platform's CRM reports for every cluster it makes ready:
    /// where the cloudlet's shared root LB sends the cluster's traffic.
    #[arg(long, default_value = "127.0.0.1")]
    fake_node_address: std::net::IpAddr,
}

async fn run_controller(role: ControllerRole) -> Result<()> {
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let node = role.fake_node_address;
    controller::cli::run_controller(role.controller, move |notify, tls| {
        crm::cli::spawn_fake(vec![notify.to_string()], tls, node, stop);
    })
    .await
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Files only, no runtime.
    if let Role::Pki(args) = cli.role {
        return pki::run(args);
    }
    // The root LB sizes its own runtime (`--threads`).
    if let Role::Rootlb(args) = cli.role {
        return dataplane::rootlb::main(args);
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = cli.workers {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build()?;
    match cli.role {
        Role::Up(args) => rt.block_on(up::run(args)),
        Role::Dme(args) => rt.block_on(dme::cli::run_dme(args)),
        Role::Controller(args) => rt.block_on(run_controller(args)),
        Role::Crm(args) => rt.block_on(crm::cli::run_crm(args)),
        Role::Dns(args) => rt.block_on(edge_dns::cli::run_dns(args)),
        Role::Shepherd(args) => rt.block_on(shepherd::cli::run_shepherd(args)),
        Role::Echo(args) => rt.block_on(crm::echo::run(args)),
        Role::Mc(args) => rt.block_on(mc::cli::run(args)).map_err(Into::into),
        Role::Rootlb(_) | Role::Pki(_) => unreachable!("handled before the runtime is built"),
        Role::Version => {
            println!("edgeplane {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
