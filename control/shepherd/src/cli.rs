//! `edgeplane shepherd`: flags, binding, signals; the work is [`crate::agent::run`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use edge_model::CloudletKey;

use crate::agent::{self, ShepherdConfig};
use crate::collect::process::StateDirSource;
use crate::collector::Sources;
use crate::sink::InfluxConfig;

/// Flags of `edgeplane shepherd`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShepherdArgs {
    /// The controller's notify addresses (tried in turn).
    #[arg(
        long,
        value_name = "ADDR[,ADDR]",
        value_delimiter = ',',
        required = true
    )]
    pub controller: Vec<String>,
    /// The cloudlet whose metrics this Shepherd collects, `ORG/NAME`.
    #[arg(long, value_name = "ORG/NAME", value_parser = parse_cloudlet)]
    pub cloudlet: CloudletKey,
    /// Subscriber name the controller records acknowledgements under (default
    /// `shepherd-ORG-NAME`).
    #[arg(long)]
    pub name: Option<String>,
    /// The root LB's Prometheus endpoint (its `--metrics-addr`), e.g.
    /// `http://127.0.0.1:9100/metrics`.
    #[arg(long, value_name = "URL")]
    pub rootlb_metrics: Option<String>,
    /// A DME's Prometheus endpoint, e.g. `http://127.0.0.1:38001/metrics` (repeatable).
    #[arg(long = "dme-metrics", value_name = "URL")]
    pub dme_metrics: Vec<String>,
    /// The CRM `local` platform's state directory (instance pids for CPU and memory).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// InfluxDB 1.x to write to, `http://host:port`. Without it metrics go to the
    /// Prometheus endpoint only.
    #[arg(long, value_name = "URL")]
    pub influx_url: Option<String>,
    /// InfluxDB database (created when missing).
    #[arg(long, value_name = "NAME", default_value = "metrics")]
    pub influx_db: String,
    /// Serve the latest metrics in Prometheus text on this address (GET /metrics).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9091")]
    pub metrics_addr: SocketAddr,
    /// Seconds between collections (upstream's shepherd_metrics_collection_interval).
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    /// Mutual TLS with the controller's notify endpoint (`edgeplane pki issue --role shepherd`).
    #[command(flatten)]
    pub mtls: edge_tls::cli::MtlsArgs,
}

fn parse_cloudlet(s: &str) -> Result<CloudletKey, String> {
    match s.split_once('/') {
        Some((org, name)) if !org.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(CloudletKey {
                organization: org.into(),
                name: name.into(),
            })
        }
        _ => Err(format!("expected ORG/NAME, got {s:?}")),
    }
}

impl ShepherdArgs {
    /// The configuration these flags describe (the metrics listener is bound by the caller).
    pub fn config(&self) -> ShepherdConfig {
        let mut config = ShepherdConfig::new(self.controller.clone(), self.cloudlet.clone());
        if let Some(name) = &self.name {
            config.name.clone_from(name);
        }
        config.sources = Sources {
            rootlb_metrics: self.rootlb_metrics.clone(),
            dme_metrics: self.dme_metrics.clone(),
            processes: self
                .state_dir
                .as_ref()
                .map(|d| Arc::new(StateDirSource::new(d)) as _),
        };
        config.influx = self
            .influx_url
            .as_ref()
            .map(|url| InfluxConfig::new(url.clone(), self.influx_db.clone()));
        config.interval = Duration::from_secs(self.interval);
        config
    }
}

/// Runs Shepherd inside the current runtime until SIGINT/SIGTERM.
pub async fn run_shepherd(args: ShepherdArgs) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: flushing metrics");
    };
    run_shepherd_until(args, shutdown).await
}

/// Runs Shepherd inside the current runtime until `shutdown` resolves.
pub async fn run_shepherd_until(
    args: ShepherdArgs,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut config = args.config();
    config.tls = args.mtls.controller_client()?;
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding --metrics-addr {}", args.metrics_addr))?;
    config.metrics_listener = Some(listener);
    tracing::info!(
        cloudlet = %args.cloudlet, controller = ?args.controller,
        interval_s = args.interval, "shepherd starting"
    );
    agent::run(config, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ShepherdArgs,
    }

    fn parse(argv: &[&str]) -> Result<ShepherdArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("shepherd").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn defaults_and_every_flag() {
        let a = parse(&["--controller", "127.0.0.1:37001", "--cloudlet", "Op/c1"]).unwrap();
        assert_eq!(a.metrics_addr, "127.0.0.1:9091".parse().unwrap());
        assert_eq!((a.interval, a.influx_db.as_str()), (5, "metrics"));
        let c = a.config();
        assert_eq!(c.name, "shepherd-Op-c1");
        assert!(c.influx.is_none() && c.sources.processes.is_none());

        let a = parse(&[
            "--controller=a:1,b:2",
            "--cloudlet=Op/c1",
            "--name=s1",
            "--rootlb-metrics=http://127.0.0.1:9100/metrics",
            "--dme-metrics=http://127.0.0.1:1/metrics",
            "--dme-metrics=http://127.0.0.1:2/metrics",
            "--state-dir=/var/lib/crm",
            "--influx-url=http://127.0.0.1:8086",
            "--influx-db=m2",
            "--metrics-addr=127.0.0.1:0",
            "--interval=1",
        ])
        .unwrap();
        let c = a.config();
        assert_eq!(c.controller, ["a:1", "b:2"]);
        assert_eq!(c.name, "s1");
        assert_eq!(c.sources.dme_metrics.len(), 2);
        assert!(c.sources.processes.is_some());
        let influx = c.influx.unwrap();
        assert_eq!(
            (influx.url.as_str(), influx.db.as_str()),
            ("http://127.0.0.1:8086", "m2")
        );
        assert_eq!(c.interval, Duration::from_secs(1));
    }

    #[test]
    fn refuses_bad_flags() {
        let bad: &[&[&str]] = &[
            &["--cloudlet", "Op/c1"],
            &["--controller", "a:1"],
            &["--controller", "a:1", "--cloudlet", "nocloudlet"],
            &["--controller", "a:1", "--cloudlet", "a/b/c"],
            &[
                "--controller",
                "a:1",
                "--cloudlet",
                "Op/c1",
                "--interval",
                "0",
            ],
            &[
                "--controller",
                "a:1",
                "--cloudlet",
                "Op/c1",
                "--metrics-addr",
                "x",
            ],
        ];
        for argv in bad {
            assert!(parse(argv).is_err(), "{argv:?}");
        }
    }
}
