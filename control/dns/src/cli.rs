//! The `dns` role: flags, binding UDP and TCP on one port, subscribing, serving.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio::net::{TcpListener, UdpSocket};

use crate::provider::Embedded;
use crate::subscribe::{self, SubscribeConfig};
use crate::zone::ZoneOptions;

/// Flags of `edgeplane dns`.
#[derive(clap::Args, Debug, Clone)]
pub struct DnsArgs {
    /// Controller notify addresses (comma-separated or repeated, tried in turn).
    #[arg(
        long,
        value_name = "ADDR[,ADDR]",
        env = "EDGEPLANE_NOTIFY_ADDRS",
        value_delimiter = ',',
        default_value = "127.0.0.1:37001"
    )]
    pub controller: Vec<String>,
    /// Address to serve on, UDP and TCP on the same port.
    #[arg(long, env = "EDGEPLANE_DNS_ADDR", default_value = "127.0.0.1:5353")]
    pub listen: SocketAddr,
    /// This server's name towards the controller (its acknowledgements are recorded under it).
    #[arg(long, env = "EDGEPLANE_DNS_NAME", default_value = "dns")]
    pub name: String,
    /// Region name, part of the shared root LB names (the controller's `--region`).
    #[arg(long, env = "EDGEPLANE_REGION", default_value = "local")]
    pub region: String,
    /// Addresses `ns.<app_dns_root>` (the zone's NS) resolves to (default: the listen address
    /// unless it is unspecified, e.g. 0.0.0.0).
    #[arg(long, value_name = "IP[,IP]", value_delimiter = ',')]
    pub ns_address: Vec<IpAddr>,
    /// Mutual TLS with the controller's notify endpoint (`edgeplane pki issue --role dns`).
    #[command(flatten)]
    pub mtls: edge_tls::cli::MtlsArgs,
}

/// What [`run`] needs besides its sockets.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Controller notify addresses (`host:port`), tried in turn.
    pub controller: Vec<String>,
    /// Subscriber name towards the controller.
    pub name: String,
    pub zone: ZoneOptions,
    /// Mutual TLS with the controller (`None`: plaintext).
    pub tls: Option<edge_tls::MtlsClient>,
}

impl DnsConfig {
    /// Subscribes to `controller` as `dns`, for `region`, with no NS addresses.
    pub fn new(controller: Vec<String>, region: impl Into<String>) -> Self {
        Self {
            controller,
            tls: None,
            name: "dns".into(),
            zone: ZoneOptions {
                region: region.into(),
                nameserver: Vec::new(),
            },
        }
    }
}

/// Binds `args.listen`, prints where it serves, and serves until Ctrl-C.
pub async fn run_dns(args: DnsArgs) -> Result<()> {
    let nameserver = if args.ns_address.is_empty() && !args.listen.ip().is_unspecified() {
        vec![args.listen.ip()]
    } else {
        args.ns_address.clone()
    };
    let config = DnsConfig {
        controller: args.controller.clone(),
        tls: args.mtls.controller_client()?,
        name: args.name.clone(),
        zone: ZoneOptions {
            region: args.region.clone(),
            nameserver,
        },
    };
    let (udp, tcp) = bind(args.listen).await?;
    println!("region DNS serving on UDP+TCP {}", udp.local_addr()?);
    run(config, udp, tcp, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Subscribes to the controller and serves the zone it builds on `udp` and `tcp` until
/// `shutdown` resolves (queries get SERVFAIL until the first zone is published).
pub async fn run(
    config: DnsConfig,
    udp: UdpSocket,
    tcp: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let controller: Vec<String> = config
        .controller
        .iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    if controller.is_empty() {
        bail!("no controller notify address to subscribe to (--controller ADDR)");
    }
    let provider = Arc::new(Embedded::new());
    let sub = SubscribeConfig {
        addrs: controller,
        tls: config.tls,
        name: config.name,
        zone: config.zone,
    };
    let subscription = tokio::spawn(subscribe::run(sub, provider.clone()));
    let served = crate::server::serve(udp, tcp, provider, shutdown).await;
    subscription.abort();
    served.context("serving DNS")
}

/// Attempts at finding a port free for both UDP and TCP when `addr` asks for any port.
const BIND_ATTEMPTS: usize = 16;

/// Binds UDP and TCP on the same address and port. Port 0 picks one free for both.
pub async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..BIND_ATTEMPTS {
        let udp = UdpSocket::bind(addr)
            .await
            .with_context(|| format!("binding UDP {addr}"))?;
        let port_addr = udp.local_addr()?;
        match TcpListener::bind(port_addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // Only a port we picked may be taken by TCP alone: then try another.
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e).with_context(|| format!("binding TCP {port_addr}")),
        }
    }
    let e = last.map_or_else(|| "no attempt".to_owned(), |e| e.to_string());
    bail!(
        "no port on {} free for both UDP and TCP after {BIND_ATTEMPTS} tries: {e}",
        addr.ip()
    )
}
