//! `edgeplane`: one binary, one role per subcommand. Each role lives in its own crate; this file
//! only parses flags, sets up logging and the runtime, and dispatches.

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
    /// The regional controller (object API, notify push, fake CRM).
    Controller(controller::cli::ControllerArgs),
    /// The shared root load balancer of a cloudlet (multi-tenant L4 proxy).
    Rootlb(dataplane::RootLbArgs),
    /// Print the version and exit.
    Version,
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
        Role::Controller(args) => rt.block_on(controller::cli::run_controller(args)),
        Role::Rootlb(_) => unreachable!("handled before the runtime is built"),
        Role::Version => {
            println!("edgeplane {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
