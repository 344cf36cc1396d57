//! `edgeplane rootlb`: the standalone root load balancer driven by a routes file.
//!
//! The file is re-read when it (or a certificate it names) changes, and on SIGHUP. A file that
//! does not validate is rejected whole and the previous table keeps serving.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tokio::sync::watch;

use crate::server::{self, CopyMode, Server, ServerOptions};
use crate::table::{RouteTable, TableError};

/// Flags of `edgeplane rootlb`.
#[derive(Debug, Clone, clap::Args)]
pub struct RootLbArgs {
    /// YAML routes file (see dataplane/README.md).
    #[arg(long, value_name = "FILE")]
    pub routes: PathBuf,
    /// Serve Prometheus metrics on this address (GET /metrics).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// How plain TCP bytes are moved.
    #[arg(long, value_enum, default_value_t = CopyMode::Auto)]
    pub copy_mode: CopyMode,
    /// Buffer bytes per direction for user-space copies (copy mode and TLS).
    #[arg(long, default_value_t = 16 * 1024)]
    pub copy_buf: usize,
    /// How often to look for changes of the routes and certificate files, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub reload_poll_ms: u64,
    /// Worker threads when the runtime is built by [`main`] (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Why a routes file could not be turned into a table.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Table { path: PathBuf, source: TableError },
}

/// Read and validate a routes file.
pub fn load_routes(path: &Path) -> Result<RouteTable, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.into(),
        source,
    })?;
    RouteTable::from_yaml(&text).map_err(|source| LoadError::Table {
        path: path.into(),
        source,
    })
}

/// Build a tokio runtime (honouring `--threads`) and run the root LB until SIGINT/SIGTERM.
/// For callers that are not already inside a runtime.
pub fn main(args: RootLbArgs) -> anyhow::Result<()> {
    let mut b = match args.threads {
        // One thread: no work stealing, no cross-thread wake-ups.
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.max(1));
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    b.enable_all()
        .build()
        .context("building tokio runtime")?
        .block_on(run_rootlb(args))
}

/// Run the root LB inside the current runtime until SIGINT/SIGTERM.
pub async fn run_rootlb(args: RootLbArgs) -> anyhow::Result<()> {
    let table = load_routes(&args.routes)?;
    tracing::info!(listeners = table.len(), file = %args.routes.display(), "routes loaded");
    let server = Server::new(ServerOptions {
        copy_mode: args.copy_mode,
        copy_buf: args.copy_buf,
        ..Default::default()
    });
    let shared = server.shared();
    let (tx, rx) = watch::channel(Arc::new(table));

    if let Some(addr) = args.metrics_addr {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding metrics address {addr}"))?;
        tracing::info!(%addr, "metrics on /metrics");
        tokio::spawn(crate::metrics::serve(
            l,
            shared.clone(),
            std::future::pending(),
        ));
    }
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let (force_tx, force_rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let _ = force_tx.try_send(());
        }
    });
    let poll = Duration::from_millis(args.reload_poll_ms.max(10));
    tokio::spawn(watch_routes(args.routes.clone(), tx, poll, force_rx));
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: draining connections");
    };
    server::run(server, rx, None, shutdown).await;
    Ok(())
}

/// Re-read `path` when it or a certificate it names changes (polled every `poll`), or when
/// `force` fires (SIGHUP), and publish each valid table into `tx`. Invalid files are logged and
/// ignored: the previous table stays. Ends when every receiver of `tx` is gone.
pub async fn watch_routes(
    path: PathBuf,
    tx: watch::Sender<Arc<RouteTable>>,
    poll: Duration,
    mut force: tokio::sync::mpsc::Receiver<()>,
) {
    let mut seen = fingerprint(&path, &tx.borrow());
    while !tx.is_closed() {
        let forced = tokio::select! {
            Some(()) = force.recv() => true,
            _ = tokio::time::sleep(poll) => false,
        };
        let now = fingerprint(&path, &tx.borrow());
        if !forced && now == seen {
            continue;
        }
        seen = now;
        match load_routes(&path) {
            Ok(t) => {
                tracing::info!(listeners = t.len(), forced, "routes reloaded");
                // send_replace: re-apply even when equal, so rotated certificates are re-read.
                tx.send_replace(Arc::new(t));
                seen = fingerprint(&path, &tx.borrow());
            }
            Err(e) => tracing::error!("routes file rejected, previous table keeps serving: {e}"),
        }
    }
}

type Fingerprint = Vec<Option<(SystemTime, u64)>>;

/// Modification time and size of the routes file and every certificate file the table names.
fn fingerprint(routes: &Path, table: &RouteTable) -> Fingerprint {
    let stat = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    let mut v = vec![stat(routes)];
    for r in table.routes() {
        if let Some(t) = &r.tls {
            v.push(stat(&t.cert));
            v.push(stat(&t.key));
        }
    }
    v
}
