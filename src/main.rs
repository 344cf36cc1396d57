//! `edgeplane`: one binary, one role per subcommand. Each role lives in its own crate; this file
//! only parses flags and dispatches.

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "edgeplane", version, about = "Edgeplane edge-cloud platform")]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Print the version and exit.
    Version,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.role {
        Role::Version => println!("edgeplane {}", env!("CARGO_PKG_VERSION")),
    }
    Ok(())
}
