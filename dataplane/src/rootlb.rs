//! `edgeplane rootlb`: the root load balancer, driven by a routes file or by the controller.
//!
//! With `--routes` the file is re-read when it (or a certificate it names) changes, and on
//! SIGHUP. A file that does not validate is rejected whole and the previous table keeps serving.
//! With `--controller`/`--cloudlet` the table comes from the controller's notify stream
//! ([`crate::subscribe`]) and backend health goes back up as instance health. Either source
//! feeds the same `watch` channel that [`server::run`] applies.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tokio::sync::watch;

use crate::handoff;
use crate::notify_routes::RouteOptions;
use crate::runtime::{CopyMode, ServerOptions};
use crate::server::{self, Server};
use crate::subscribe::{self, NotifyConfig};
use crate::table::{
    HealthCheck, ListenerKey, Proto, RouteTable, TableError, TlsFiles, UdpProbe, default,
};

/// Flags of `edgeplane rootlb`.
#[derive(Debug, Clone, clap::Args)]
pub struct RootLbArgs {
    /// YAML routes file (see dataplane/README.md). Exactly one of this and `--controller`.
    #[arg(long, value_name = "FILE", required_unless_present = "controller", conflicts_with_all = ["controller", "cloudlet"])]
    pub routes: Option<PathBuf>,
    /// Take routes from the controller's notify stream at these addresses (tried in turn).
    #[arg(
        long,
        value_name = "ADDR[,ADDR]",
        value_delimiter = ',',
        requires = "cloudlet"
    )]
    pub controller: Vec<String>,
    /// The cloudlet this root LB serves, `ORG/NAME` (with `--controller`).
    #[arg(long, value_name = "ORG/NAME", value_parser = parse_cloudlet, requires = "controller")]
    pub cloudlet: Option<edge_model::CloudletKey>,
    /// Address the public listeners bind (with `--controller`; a routes file sets its own).
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub listen_ip: IpAddr,
    /// Subscriber name the controller records acknowledgements under (default
    /// `rootlb-ORG-NAME`).
    #[arg(long)]
    pub name: Option<String>,
    /// Cloudlet-wide (wildcard) certificate chain, PEM, for `tls` ports (with `--controller`;
    /// without it `tls` ports get no listener).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of `--tls-cert`, PEM.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Active health check interval in milliseconds (with `--controller`; 0 turns checks off).
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub health_interval_ms: u64,
    /// Active health check timeout in milliseconds (at most the interval).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub health_timeout_ms: u64,
    /// Consecutive passing checks that bring a backend up.
    #[arg(long, default_value_t = default::HC_RISE, value_parser = clap::value_parser!(u32).range(1..))]
    pub health_rise: u32,
    /// Consecutive failing checks that take a backend down.
    #[arg(long, default_value_t = default::HC_FALL, value_parser = clap::value_parser!(u32).range(1..))]
    pub health_fall: u32,
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
    /// Worker threads when the runtime is built by [`main`] (default: one per core); also the
    /// number of `SO_REUSEPORT` sockets per UDP listener.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Unix socket for binary upgrades. A root LB started with the same path takes over this
    /// one's listening sockets without refusing a connection; this one then drains and ends.
    /// At start-up, a process already listening there is taken over.
    #[arg(long, value_name = "PATH")]
    pub upgrade_socket: Option<PathBuf>,
    /// Mutual TLS with the controller's notify endpoint (`edgeplane pki issue --role rootlb`).
    #[command(flatten)]
    pub mtls: edge_tls::cli::MtlsArgs,
}

fn parse_cloudlet(s: &str) -> Result<edge_model::CloudletKey, String> {
    match s.split_once('/') {
        Some((org, name)) if !org.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(edge_model::CloudletKey {
                organization: org.into(),
                name: name.into(),
            })
        }
        _ => Err(format!("expected ORG/NAME, got {s:?}")),
    }
}

impl RootLbArgs {
    /// The route settings for tables built from the controller's objects.
    pub fn route_options(&self) -> anyhow::Result<RouteOptions> {
        let health_check = (self.health_interval_ms > 0).then(|| HealthCheck {
            interval: Duration::from_millis(self.health_interval_ms),
            timeout: Duration::from_millis(self.health_timeout_ms),
            rise: self.health_rise,
            fall: self.health_fall,
            udp: UdpProbe::default(),
        });
        if let Some(hc) = &health_check
            && (hc.timeout.is_zero() || hc.timeout > hc.interval)
        {
            anyhow::bail!("--health-timeout-ms must be between 1 and --health-interval-ms");
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        Ok(RouteOptions {
            listen_ip: self.listen_ip,
            tls,
            health_check,
            ..RouteOptions::default()
        })
    }
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
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: draining connections");
    };
    run_rootlb_until(args, shutdown).await
}

/// Run the root LB inside the current runtime until `shutdown` resolves (then drain).
pub async fn run_rootlb_until(
    args: RootLbArgs,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // One UDP socket per worker thread, so one port's datagrams can be read on every core.
    let udp_sockets = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let mut server = Server::new(ServerOptions {
        copy_mode: args.copy_mode,
        copy_buf: args.copy_buf,
        udp_sockets,
        ..Default::default()
    });
    let shared = server.shared();
    let inherited = match &args.upgrade_socket {
        Some(path) => handoff::take_over(path).await?,
        None => None,
    };
    let (inherited, inherited_keys) = match inherited {
        Some(inh) => {
            let (inh, keys) = adopt(&mut server, inh)?;
            (Some(inh), keys)
        }
        None => (None, Vec::new()),
    };
    let first = match &args.routes {
        Some(path) => {
            let table = load_routes(path)?;
            tracing::info!(listeners = table.len(), file = %path.display(), "routes loaded");
            table
        }
        // Nothing is served until the controller's snapshot arrives.
        None => RouteTable::empty(),
    };
    let (tx, rx) = watch::channel(Arc::new(first));

    // The metrics endpoint ends with this function (an upgraded successor needs its port).
    let (metrics_stop, metrics_stopped) = watch::channel(false);
    if let Some(addr) = args.metrics_addr {
        start_metrics(addr, shared.clone(), metrics_stopped, inherited.is_some()).await?;
    }
    let producer = match (&args.routes, &args.cloudlet) {
        (Some(path), _) => {
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
            let (force_tx, force_rx) = tokio::sync::mpsc::channel(1);
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    let _ = force_tx.try_send(());
                }
            });
            let poll = Duration::from_millis(args.reload_poll_ms.max(10));
            tokio::spawn(watch_routes(path.clone(), tx, poll, force_rx))
        }
        (None, Some(cloudlet)) if !args.controller.is_empty() => {
            let config = NotifyConfig {
                addrs: args.controller.clone(),
                tls: args.mtls.controller_client()?,
                name: args.name.clone().unwrap_or_else(|| {
                    format!("rootlb-{}-{}", cloudlet.organization, cloudlet.name)
                }),
                cloudlet: cloudlet.clone(),
                routes: args.route_options()?,
            };
            tracing::info!(controller = ?config.addrs, %cloudlet, name = %config.name, "routes from the controller");
            let health = server.health_events();
            tokio::spawn(subscribe::run(config, tx, shared.clone(), health))
        }
        _ => {
            anyhow::bail!("give either --routes FILE or --controller ADDR with --cloudlet ORG/NAME")
        }
    };
    let (reports_tx, reports) = tokio::sync::mpsc::unbounded_channel();
    let (handoff_tx, handoff_rx) = tokio::sync::mpsc::channel(1);
    let upgrades = args.upgrade_socket.clone().map(|path| {
        tokio::spawn(serve_upgrades(
            path,
            inherited,
            inherited_keys,
            reports,
            handoff_tx,
        ))
    });
    server::run_with_handoff(server, rx, Some(reports_tx), shutdown, Some(handoff_rx)).await;
    producer.abort();
    if let Some(u) = upgrades {
        u.abort();
    }
    let _ = metrics_stop.send(true);
    Ok(())
}

/// Hands the previous process's sockets to `server`; the listener keys they serve.
fn adopt(
    server: &mut Server,
    mut inh: handoff::Inherited,
) -> anyhow::Result<(handoff::Inherited, Vec<ListenerKey>)> {
    let mut keys = Vec::new();
    for l in std::mem::take(&mut inh.tcp) {
        let port = l.local_addr()?.port();
        keys.push(ListenerKey {
            proto: Proto::Tcp,
            port,
        });
        server.adopt_tcp(l)?;
    }
    for s in std::mem::take(&mut inh.udp) {
        let port = s.local_addr()?.port();
        keys.push(ListenerKey {
            proto: Proto::Udp,
            port,
        });
        server.adopt_udp(s)?;
    }
    tracing::info!(
        sockets = keys.len(),
        "upgrade: took over the running root LB's listeners"
    );
    Ok((inh, keys))
}

/// Serves metrics on `addr` until `stop` turns true. During an upgrade (`upgrading`) the
/// previous process holds the port until it has drained: it is taken once free.
async fn start_metrics(
    addr: SocketAddr,
    shared: Arc<crate::runtime::Shared>,
    stop: watch::Receiver<bool>,
    upgrading: bool,
) -> anyhow::Result<()> {
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => {
            tracing::info!(%addr, "metrics on /metrics");
            tokio::spawn(crate::metrics::serve(l, shared, until(stop)));
        }
        Err(e) if upgrading && e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::info!(%addr, "metrics address held by the previous process; taking it when it ends");
            tokio::spawn(async move {
                while !*stop.borrow() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if let Ok(l) = tokio::net::TcpListener::bind(addr).await {
                        tracing::info!(%addr, "metrics on /metrics");
                        crate::metrics::serve(l, shared, until(stop)).await;
                        return;
                    }
                }
            });
        }
        Err(e) => return Err(e).with_context(|| format!("binding metrics address {addr}")),
    }
    Ok(())
}

/// Longest wait for the inherited listeners to serve before the old process is let go anyway
/// (with `--controller` they serve once the first table arrives; meanwhile the sockets stay
/// open here and queue connections).
const INHERITED_SERVE_WAIT: Duration = Duration::from_secs(10);

/// With `--upgrade-socket`: tells the previous process (if any) to drain once the inherited
/// listeners serve, then listens for the next upgrade.
async fn serve_upgrades(
    path: PathBuf,
    inherited: Option<handoff::Inherited>,
    keys: Vec<ListenerKey>,
    mut reports: tokio::sync::mpsc::UnboundedReceiver<server::ApplyReport>,
    handoff: tokio::sync::mpsc::Sender<handoff::Request>,
) {
    if let Some(inh) = inherited {
        let serving = async {
            while let Some(r) = reports.recv().await {
                if keys.iter().all(|k| r.serving.contains(k)) {
                    return;
                }
            }
        };
        if tokio::time::timeout(INHERITED_SERVE_WAIT, serving)
            .await
            .is_err()
        {
            tracing::warn!(
                "upgrade: inherited listeners not all serving yet; releasing the old process anyway"
            );
        }
        match tokio::task::spawn_blocking(move || inh.ready()).await {
            Ok(Ok(())) => tracing::info!("upgrade: serving; the old process drains"),
            Ok(Err(e)) => tracing::warn!("upgrade: telling the old process: {e}"),
            Err(e) => tracing::warn!("upgrade: telling the old process: {e}"),
        }
    }
    // Reports are not needed any more; keep the channel drained so it does not grow.
    tokio::spawn(async move { while reports.recv().await.is_some() {} });
    match handoff::bind(&path) {
        Ok(l) => {
            tracing::info!(path = %path.display(), "listening for upgrades");
            handoff::serve(l, handoff).await;
        }
        Err(e) => tracing::error!(path = %path.display(), "upgrade socket: {e}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: RootLbArgs,
    }

    fn parse(args: &[&str]) -> Result<RootLbArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("rootlb").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn exactly_one_route_source() {
        assert!(parse(&["--routes", "r.yaml"]).is_ok());
        let a = parse(&["--controller", "a:1,b:2", "--cloudlet", "telekom/berlin-1"]).unwrap();
        assert_eq!(a.controller, ["a:1", "b:2"]);
        assert_eq!(a.cloudlet.as_ref().unwrap().name, "berlin-1");
        assert_eq!(a.listen_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(parse(&[]).is_err());
        assert!(parse(&["--controller", "a:1"]).is_err(), "needs --cloudlet");
        assert!(
            parse(&[
                "--routes",
                "r.yaml",
                "--controller",
                "a:1",
                "--cloudlet",
                "o/n"
            ])
            .is_err()
        );
        assert!(parse(&["--controller", "a:1", "--cloudlet", "no-slash"]).is_err());
        assert!(
            parse(&[
                "--controller",
                "a:1",
                "--cloudlet",
                "o/n",
                "--tls-cert",
                "c"
            ])
            .is_err()
        );
    }

    #[test]
    fn route_options_follow_the_flags() {
        let a = parse(&[
            "--controller",
            "a:1",
            "--cloudlet",
            "o/n",
            "--listen-ip",
            "127.0.0.2",
            "--health-interval-ms",
            "200",
            "--health-timeout-ms",
            "100",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ])
        .unwrap();
        let o = a.route_options().unwrap();
        assert_eq!(o.listen_ip, "127.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(o.health_check.unwrap().interval, Duration::from_millis(200));
        assert_eq!(o.tls.unwrap().cert, PathBuf::from("c.pem"));
        let off = parse(&[
            "--controller",
            "a:1",
            "--cloudlet",
            "o/n",
            "--health-interval-ms",
            "0",
        ]);
        assert!(off.unwrap().route_options().unwrap().health_check.is_none());
        let bad = parse(&[
            "--controller",
            "a:1",
            "--cloudlet",
            "o/n",
            "--health-timeout-ms",
            "9000",
        ]);
        assert!(bad.unwrap().route_options().is_err());
    }
}
