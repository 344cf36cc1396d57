//! The `edgectl` command line: flags, dispatch, and turning every failure into one line on
//! stderr and exit code 1 (usage errors included, so scripts see one failure code).
//!
//! Commands (global `--addr`, the controller API, default 127.0.0.1:55001, env `EDGECTL_ADDR`):
//! - `apply -f FILE`, `delete -f FILE`: a deployment document ([`crate::apply`]).
//! - `create KIND f=v..`, `update KIND f=v..`, `delete KIND key=v..`: one object from dotted
//!   proto field paths ([`crate::assign`]); `update`'s field mask is the top-level non-key
//!   fields given.
//! - `show [KIND] [--org ORG] [-o table|yaml|json]`, `show --all -o yaml` (a document that
//!   `apply` takes back unchanged).
//! - `dme [--dme-addr A] register|find|list ...`: DME client calls.

mod dme;
mod edit;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use edge_api::pb::controller_client::ControllerClient;
use edge_model::ObjectKind;
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

#[derive(Parser, Debug)]
#[command(
    name = "edgectl",
    version,
    about = "Edgeplane command line: objects and documents on the controller, DME client calls"
)]
pub struct Cli {
    /// Controller API (gRPC) address.
    #[arg(
        long,
        global = true,
        env = "EDGECTL_ADDR",
        default_value = "127.0.0.1:55001"
    )]
    addr: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create what a deployment document names and update what differs, parents first.
    Apply {
        /// The document (YAML or JSON).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Delete what a document names (-f FILE), or one object: KIND key.organization=.. key.name=..
    Delete {
        /// The document (YAML or JSON) whose objects to delete, children first.
        #[arg(short = 'f', long = "file", conflicts_with_all = ["kind", "fields"])]
        file: Option<PathBuf>,
        /// Object kind (cloudlet, app, app_inst, ...), with key fields after it.
        #[arg(required_unless_present = "file")]
        kind: Option<ObjectKind>,
        /// Key fields, e.g. key.organization=telekom key.name=berlin-2.
        fields: Vec<String>,
    },
    /// Create one object from FIELD=VALUE pairs (dotted proto field names).
    Create {
        /// Object kind: operator_code, flavor, cloudlet, app, cluster_inst, app_inst, ...
        kind: ObjectKind,
        /// e.g. key.organization=telekom key.name=berlin-2 location.latitude=52.5
        #[arg(required = true)]
        fields: Vec<String>,
    },
    /// Update the given fields of one object (the key fields name it).
    Update {
        /// Object kind.
        kind: ObjectKind,
        /// Key fields plus the fields to change, e.g. maintenance_state=UNDER_MAINTENANCE.
        #[arg(required = true)]
        fields: Vec<String>,
    },
    /// Show objects as a table, a deployment document (yaml) or proto JSON.
    Show(edit::ShowArgs),
    /// Call a DME as a client app would.
    Dme(dme::DmeArgs),
    /// Ask the edge-events clients of an instance to measure and report their latency (the
    /// region's DMEs send them EVENT_LATENCY_REQUEST).
    RequestLatency {
        /// The instance: ORGANIZATION/NAME.
        #[arg(long = "appinst", value_name = "ORG/NAME")]
        app_inst: String,
    },
}

/// `-o` formats of `show`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Yaml,
    Json,
}

/// Parses the command line, runs it, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are not errors; everything else is exit code 1.
            let code = u8::from(e.use_stderr());
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(run(cli)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgectl: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Apply { file } => apply_file(&cli.addr, &file).await,
        Command::Delete {
            file: Some(file), ..
        } => delete_file(&cli.addr, &file).await,
        Command::Delete {
            kind: Some(kind),
            fields,
            ..
        } => edit::delete(&mut connect(&cli.addr).await?, kind, &fields).await,
        // clap requires KIND without -f.
        Command::Delete { .. } => anyhow::bail!("delete: give -f FILE or KIND and key fields"),
        Command::Create { kind, fields } => {
            edit::create(&mut connect(&cli.addr).await?, kind, &fields).await
        }
        Command::Update { kind, fields } => {
            edit::update(&mut connect(&cli.addr).await?, kind, &fields).await
        }
        Command::Show(args) => edit::show(&mut connect(&cli.addr).await?, &args).await,
        Command::Dme(args) => dme::run(&args).await,
        Command::RequestLatency { app_inst } => request_latency(&cli.addr, &app_inst).await,
    }
}

async fn request_latency(addr: &str, app_inst: &str) -> Result<()> {
    let (organization, name) = app_inst
        .split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| anyhow::anyhow!("--appinst `{app_inst}`: expected ORGANIZATION/NAME"))?;
    let key = edge_model::AppInstKey {
        organization: organization.into(),
        name: name.into(),
    };
    let request = edge_api::notify::Request::AppInstLatency(key);
    let r = connect(addr)
        .await?
        .relay(edge_api::pb::RelayRequest {
            request: Some((&request).into()),
        })
        .await
        .map_err(|s| status(&s).context("request-latency"))?
        .into_inner();
    println!(
        "latency requested from the clients of {app_inst} through {} DME(s)",
        r.subscribers
    );
    Ok(())
}

/// `http://` plus `addr` unless it already has a scheme.
pub(crate) fn url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// A channel to `addr`, failing fast (5 s) when nothing answers there.
pub(crate) async fn channel(addr: &str, what: &str) -> Result<Channel> {
    Endpoint::from_shared(url(addr))
        .with_context(|| format!("bad {what} address `{addr}`"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("cannot connect to the {what} at {addr}"))
}

async fn connect(addr: &str) -> Result<ControllerClient<Channel>> {
    Ok(ControllerClient::new(channel(addr, "controller").await?))
}

/// A gRPC status as one readable line: `NotFound: Cloudlet telekom/x not found`.
pub(crate) fn status(s: &Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", s.code(), s.message())
}

fn load(file: &Path) -> Result<edge_model::Deployment> {
    // DocumentError's Display carries the field path and line; prefix the file.
    edge_model::document::load(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

async fn apply_file(addr: &str, file: &Path) -> Result<()> {
    let (doc, computed) = edge_model::document::load_noting_computed(file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let r = crate::apply_noting(&mut connect(addr).await?, &doc, &computed)
        .await
        .map_err(|s| status(&s).context(format!("applying {}", file.display())))?;
    for n in &r.not_taken {
        eprintln!("{}", not_taken_warning(file, n));
    }
    println!(
        "applied {}: {} created, {} updated, {} unchanged{}",
        file.display(),
        r.created,
        r.updated,
        r.unchanged,
        revision_note(r.revision)
    );
    Ok(())
}

async fn delete_file(addr: &str, file: &Path) -> Result<()> {
    let doc = load(file)?;
    let r = crate::delete(&mut connect(addr).await?, &doc)
        .await
        .map_err(|s| status(&s).context(format!("deleting {}", file.display())))?;
    println!(
        "deleted {}: {} deleted, {} already absent{}",
        file.display(),
        r.deleted,
        r.absent,
        revision_note(r.revision)
    );
    Ok(())
}

/// One line per object: the fields it set that the controller computed otherwise, and why.
fn not_taken_warning(file: &Path, n: &crate::NotTaken) -> String {
    let at = match n.line {
        Some(l) => format!("{}:{l}", file.display()),
        None => file.display().to_string(),
    };
    let fields: Vec<String> = n
        .fields
        .iter()
        .map(|(f, given, used)| format!("{f} {given} (the controller's: {used})"))
        .collect();
    format!(
        "warning: {at}: {} {}: not taken: {}; the controller computes an instance's uri and \
         mapped_ports from its app, cluster and cloudlet, its state from the CRM and its health \
         from the root LB (these fields apply to a standalone DME only)",
        n.path,
        n.key,
        fields.join(", "),
    )
}

/// ` (revision N)` after a change; nothing when nothing changed (the report then has no
/// revision to give).
fn revision_note(revision: u64) -> String {
    if revision == 0 {
        String::new()
    } else {
        format!(" (revision {revision})")
    }
}
