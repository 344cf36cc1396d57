//! The echo app as its own binary (the `crm` crate's tests run it on the local platform).

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: crm::echo::EchoArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    crm::echo::run(Cli::parse().args).await
}
