//! The `edgectl` command line: flags, dispatch, and turning every failure into one line on
//! stderr and exit code 1 (usage errors included, so scripts see one failure code).
//!
//! Where object commands go: through the MC with the token of `edgectl login` (the region from
//! `--region`, else the MC's only one), unless `--addr` (env `EDGECTL_ADDR`) or the `--mtls-*`
//! flags name a controller to call directly (default 127.0.0.1:55001; plaintext, or mutual TLS
//! with an `edgectl` certificate from `edgeplane pki issue --role edgectl`). Without a login,
//! the default controller address.
//!
//! Commands:
//! - `login --mc https://HOST:PORT --ca PEM --username NAME` (password from `--password-file`,
//!   env `EDGECTL_PASSWORD`, or the first line of stdin), `logout` ([`crate::login`]).
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
use edge_tls::{PeerPolicy, Role};
use tonic::Status;

use crate::transport::{Auth, Client};
use tonic::transport::{Channel, Endpoint};

#[derive(Parser, Debug)]
#[command(
    name = "edgectl",
    version,
    about = "Edgeplane command line: objects and documents on the controller, DME client calls"
)]
pub struct Cli {
    /// Controller API (gRPC) address, called directly instead of through the MC of
    /// `edgectl login` [default: 127.0.0.1:55001].
    #[arg(long, global = true, env = "EDGECTL_ADDR")]
    addr: Option<String>,
    /// The region, through the MC (default: its only region).
    #[arg(long, global = true, env = "EDGECTL_REGION")]
    region: Option<String>,
    /// Direct access over mutual TLS: the region CA and an `edgectl` certificate (give these
    /// before the command).
    #[command(flatten)]
    mtls: edge_tls::cli::MtlsArgs,
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
    /// Log in to the MC; later commands go through it with the token.
    Login(LoginArgs),
    /// Forget the MC login.
    Logout,
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

#[derive(clap::Args, Debug)]
struct LoginArgs {
    /// The MC's API: https://HOST:PORT (http:// only on loopback).
    #[arg(long)]
    mc: String,
    /// The CA certificate (PEM) the MC's certificate must be issued by.
    #[arg(long)]
    ca: Option<PathBuf>,
    #[arg(long)]
    username: String,
    /// A file whose first line is the password (else env EDGECTL_PASSWORD, else stdin).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
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
    let t = Target {
        addr: cli.addr,
        region: cli.region,
        mtls: cli.mtls,
    };
    match cli.command {
        Command::Apply { file } => apply_file(&t, &file).await,
        Command::Delete {
            file: Some(file), ..
        } => delete_file(&t, &file).await,
        Command::Delete {
            kind: Some(kind),
            fields,
            ..
        } => edit::delete(&mut connect(&t).await?, kind, &fields)
            .await
            .map_err(relogin),
        // clap requires KIND without -f.
        Command::Delete { .. } => anyhow::bail!("delete: give -f FILE or KIND and key fields"),
        Command::Create { kind, fields } => edit::create(&mut connect(&t).await?, kind, &fields)
            .await
            .map_err(relogin),
        Command::Update { kind, fields } => edit::update(&mut connect(&t).await?, kind, &fields)
            .await
            .map_err(relogin),
        Command::Show(args) => edit::show(&mut connect(&t).await?, &args)
            .await
            .map_err(relogin),
        Command::Dme(args) => dme::run(&args).await,
        Command::RequestLatency { app_inst } => request_latency(&t, &app_inst).await,
        Command::Login(args) => login(&args).await,
        Command::Logout => {
            let had = crate::login::remove()?;
            println!("{}", if had { "logged out" } else { "not logged in" });
            Ok(())
        }
    }
}

/// Where object commands go (see the module doc).
struct Target {
    addr: Option<String>,
    region: Option<String>,
    mtls: edge_tls::cli::MtlsArgs,
}

const DEFAULT_ADDR: &str = "127.0.0.1:55001";

async fn login(a: &LoginArgs) -> Result<()> {
    let password = match (&a.password_file, std::env::var("EDGECTL_PASSWORD")) {
        (Some(f), _) => std::fs::read_to_string(f)
            .with_context(|| format!("--password-file {}", f.display()))?,
        (None, Ok(p)) => p,
        (None, Err(_)) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            line
        }
    };
    let password = password.lines().next().unwrap_or("").to_string();
    let ca =
        a.ca.as_ref()
            .map(|c| std::fs::canonicalize(c).with_context(|| format!("--ca {}", c.display())))
            .transpose()?;
    let mc = a.mc.trim_end_matches('/').to_string();
    let token = crate::login::request_token(&mc, ca.as_deref(), &a.username, &password).await?;
    crate::login::save(&crate::login::LoginFile {
        mc: mc.clone(),
        ca,
        token,
        username: a.username.clone(),
    })?;
    println!("logged in as {} at {mc}", a.username);
    Ok(())
}

/// An MC refusal of the token, said so that the user knows to log in again.
fn relogin(e: anyhow::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    if text.contains("Unauthenticated") && text.contains("expired") {
        anyhow::anyhow!("token expired: run edgectl login ({text})")
    } else if text.contains("Unauthenticated") {
        anyhow::anyhow!("{text} (run edgectl login)")
    } else {
        e
    }
}

async fn request_latency(t: &Target, app_inst: &str) -> Result<()> {
    let (organization, name) = app_inst
        .split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| anyhow::anyhow!("--appinst `{app_inst}`: expected ORGANIZATION/NAME"))?;
    let key = edge_model::AppInstKey {
        organization: organization.into(),
        name: name.into(),
    };
    let request = edge_api::notify::Request::AppInstLatency(key);
    let r = connect(t)
        .await?
        .relay(edge_api::pb::RelayRequest {
            request: Some((&request).into()),
        })
        .await
        .map_err(|s| relogin(status(&s).context("request-latency")))?
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

/// The controller client of an object command (see the module doc for where it goes).
async fn connect(t: &Target) -> Result<Client> {
    let direct = t.addr.is_some() || t.mtls.mtls_ca.is_some();
    let login = if direct { None } else { crate::login::load()? };
    if let Some(l) = login {
        let ch = crate::transport::mc_channel(&l.mc, l.ca.as_deref())
            .await
            .map_err(anyhow::Error::msg)?;
        let auth = Auth::new(Some(&l.token), t.region.as_deref()).map_err(anyhow::Error::msg)?;
        return Ok(ControllerClient::with_interceptor(ch, auth));
    }
    let addr = t.addr.as_deref().unwrap_or(DEFAULT_ADDR);
    let ch = match t.mtls.load().context("loading the --mtls-* files")? {
        None => channel(addr, "controller").await?,
        Some(m) => {
            let client = m
                .client(PeerPolicy::roles(&[Role::Controller]), &[b"h2"])
                .context("mutual TLS client")?;
            let ep = edge_tls::grpc::endpoint(addr, Duration::from_secs(5))
                .with_context(|| format!("bad controller address `{addr}`"))?;
            edge_tls::grpc::channel(ep, Some(&client))
                .await
                .map_err(|e| anyhow::anyhow!("{}", crate::transport::chain(&e)))
                .with_context(|| format!("cannot connect to the controller at {addr}"))?
        }
    };
    Ok(ControllerClient::with_interceptor(ch, Auth::default()))
}

/// A gRPC status as one readable line: `NotFound: Cloudlet telekom/x not found`.
pub(crate) fn status(s: &Status) -> anyhow::Error {
    // A plaintext client of a mutual-TLS controller only sees its HTTP/2 preface refused.
    // (Depending on timing tonic says "h2 protocol error" or only "transport error".)
    let refused = s.message().contains("h2 protocol error") || s.message() == "transport error";
    let hint = if refused {
        " (if the controller requires mutual TLS, give --mtls-ca, --mtls-cert and --mtls-key \
         before the command, or log in to the MC)"
    } else {
        ""
    };
    anyhow::anyhow!("{:?}: {}{hint}", s.code(), s.message())
}

fn load(file: &Path) -> Result<edge_model::Deployment> {
    // DocumentError's Display carries the field path and line; prefix the file.
    edge_model::document::load(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

async fn apply_file(t: &Target, file: &Path) -> Result<()> {
    let (doc, computed) = edge_model::document::load_noting_computed(file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let r = crate::apply_noting(&mut connect(t).await?, &doc, &computed)
        .await
        .map_err(|s| relogin(status(&s).context(format!("applying {}", file.display()))))?;
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

async fn delete_file(t: &Target, file: &Path) -> Result<()> {
    let doc = load(file)?;
    let r = crate::delete(&mut connect(t).await?, &doc)
        .await
        .map_err(|s| relogin(status(&s).context(format!("deleting {}", file.display()))))?;
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
