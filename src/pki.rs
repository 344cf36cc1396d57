//! `edgeplane pki init|issue`: the region CA and component certificates on disk. Flags only;
//! the PKI itself is `edge_tls::pki`.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Result;
use edge_tls::Role;
use edge_tls::pki::{self, LeafRequest};

#[derive(clap::Args)]
pub struct PkiArgs {
    #[command(subcommand)]
    command: PkiCommand,
}

#[derive(clap::Subcommand)]
enum PkiCommand {
    /// Create the region CA: DIR/ca.pem and DIR/ca.key (mode 0600).
    Init {
        /// The PKI directory (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// The region the CA certifies.
        #[arg(long)]
        region: String,
        /// Replace an existing CA (every certificate it issued stops being trusted).
        #[arg(long)]
        force: bool,
    },
    /// Issue a component certificate from the CA in DIR: DIR/<role>-<name>.pem (leaf then
    /// CA) and .key (mode 0600), with SANs localhost, 127.0.0.1, the given ones and the URI
    /// edgeplane://<region>/<role>/<name>.
    Issue {
        /// The PKI directory holding ca.pem and ca.key.
        #[arg(long)]
        dir: PathBuf,
        /// mc, controller, dme, rootlb, crm, shepherd, edgectl or dns.
        #[arg(long)]
        role: Role,
        /// The component's name (letters, digits, '-', '_', '.').
        #[arg(long)]
        name: String,
        /// An extra DNS name (repeatable).
        #[arg(long = "dns")]
        dns: Vec<String>,
        /// An extra IP address (repeatable).
        #[arg(long = "ip")]
        ips: Vec<IpAddr>,
        /// Validity in days.
        #[arg(long, default_value_t = pki::DEFAULT_LEAF_DAYS)]
        days: u32,
    },
}

pub fn run(args: PkiArgs) -> Result<()> {
    match args.command {
        PkiCommand::Init { dir, region, force } => {
            let ca = pki::init(&dir, &region, force)?;
            println!(
                "region {} CA written to {} (key {}), SHA-256 {}",
                ca.region(),
                dir.join(pki::CA_CERT_FILE).display(),
                dir.join(pki::CA_KEY_FILE).display(),
                ca.fingerprint()
            );
        }
        PkiCommand::Issue {
            dir,
            role,
            name,
            dns,
            ips,
            days,
        } => {
            let request = LeafRequest {
                dns,
                ips,
                days,
                ..LeafRequest::new(role, &name)
            };
            let (issued, cert, key) = pki::issue(&dir, &request)?;
            println!(
                "{} certificate written to {} (key {}), valid {days} days, SHA-256 {}",
                issued.identity,
                cert.display(),
                key.display(),
                issued.fingerprint
            );
        }
    }
    Ok(())
}
