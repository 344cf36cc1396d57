//! The root LB alone, with the system allocator, for quick manual runs and A/B comparisons
//! (the shipped `edgeplane rootlb` is the same code with mimalloc; `compare.sh` measures that):
//! `cargo run --release -p dataplane --example rootlb -- --routes routes.yaml --threads 1`.

use clap::Parser;

#[derive(Parser)]
#[command(name = "rootlb", about = "Edgeplane shared root load balancer")]
struct Cli {
    #[command(flatten)]
    args: dataplane::RootLbArgs,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    dataplane::rootlb::main(Cli::parse().args)
}
