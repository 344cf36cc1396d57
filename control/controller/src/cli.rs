//! The `controller` role: flags, opening the store, serving.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use edge_store::Store;
use tokio::net::TcpListener;

/// Flags of `edgeplane controller`.
#[derive(clap::Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Controller API (gRPC) listen address.
    #[arg(
        long,
        env = "EDGEPLANE_CONTROLLER_API_ADDR",
        default_value = "127.0.0.1:55001"
    )]
    pub api_addr: String,
    /// Notify (subscriber push) listen address.
    #[arg(
        long,
        env = "EDGEPLANE_CONTROLLER_NOTIFY_ADDR",
        default_value = "127.0.0.1:37001"
    )]
    pub notify_addr: String,
    /// REST/JSON mirror of the controller API listen address.
    #[arg(
        long,
        env = "EDGEPLANE_CONTROLLER_HTTP_ADDR",
        default_value = "127.0.0.1:36001"
    )]
    pub http_addr: String,
    /// Region name, part of generated FQDNs.
    #[arg(long, env = "EDGEPLANE_REGION", default_value = "local")]
    pub region: String,
    /// Seconds a cloudlet may be without a connected root LB before the instances it carries
    /// are marked `HEALTH_CHECK_ROOTLB_OFFLINE` (and the DME stops returning them).
    #[arg(long, default_value_t = 15)]
    pub rootlb_grace_secs: u64,
    /// Seconds between HTTP/2 keep-alive PINGs on notify connections; a subscriber that leaves
    /// one unanswered this long is disconnected (so a root LB cut off without a reset still
    /// counts as gone, and its cloudlet's instances go offline after the grace above).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub notify_keepalive_secs: u64,
    #[command(flatten)]
    pub store: StoreArgs,
    /// With these, the API, its REST mirror and notify require mutual TLS: API callers need
    /// an `mc` or `edgectl` certificate, subscribers a `dme`, `rootlb`, `crm`, `dns` or
    /// `shepherd` one, all of this region CA.
    #[command(flatten)]
    pub mtls: edge_tls::cli::MtlsArgs,
    /// Serve the API and notify in plaintext on a non-loopback address (insecure: anyone who
    /// reaches them can change the region or read it).
    #[arg(long)]
    pub insecure_plaintext: bool,
}

/// Where the object model is persisted.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Data directory of the embedded store (the default backend).
    #[arg(long, env = "EDGEPLANE_DATA_DIR", default_value = "./edgeplane-data")]
    pub data_dir: PathBuf,
    /// Use etcd at these comma-separated endpoints instead of the embedded store (needs a build
    /// with the `etcd` feature).
    #[arg(long, env = "EDGEPLANE_STORE_ETCD", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// Key namespace inside etcd.
    #[arg(long, default_value = "edgeplane/")]
    pub etcd_prefix: String,
}

impl StoreArgs {
    pub async fn open(&self) -> Result<Arc<dyn Store>> {
        if !self.etcd.is_empty() {
            return open_etcd(self).await;
        }
        let store = edge_store::RedbStore::open(&self.data_dir)
            .await
            .with_context(|| format!("opening the store in {}", self.data_dir.display()))?;
        Ok(Arc::new(store))
    }
}

#[cfg(feature = "etcd")]
async fn open_etcd(args: &StoreArgs) -> Result<Arc<dyn Store>> {
    let opts =
        edge_store::EtcdOptions::new(args.etcd.clone(), args.etcd_prefix.clone().into_bytes());
    Ok(Arc::new(
        edge_store::EtcdStore::connect(opts)
            .await
            .context("connecting to etcd")?,
    ))
}

#[cfg(not(feature = "etcd"))]
async fn open_etcd(_: &StoreArgs) -> Result<Arc<dyn Store>> {
    anyhow::bail!("this build has no etcd support: rebuild with `--features etcd`")
}

/// Opens the store, binds, serves until Ctrl-C. `bound` is called with the notify address once
/// it is bound, and the client side of mutual TLS when configured (the binary starts the
/// in-process CRMs there, on the controller's certificate).
pub async fn run_controller(
    args: ControllerArgs,
    bound: impl FnOnce(std::net::SocketAddr, Option<edge_tls::MtlsClient>),
) -> Result<()> {
    let mtls = args.mtls.load().context("loading the mutual-TLS files")?;
    let store = args.store.open().await?;
    let mut handle = crate::server::start(store, &args.region).await?;
    let mut subscriber_tls = None;
    if let Some(m) = &mtls {
        if m.region() != args.region {
            anyhow::bail!(
                "the region CA is for region {:?} but --region is {:?}",
                m.region(),
                args.region
            );
        }
        handle.tls = Some(crate::server::ControllerTls::new(m)?);
        subscriber_tls = Some(m.client(
            edge_tls::PeerPolicy::roles(&[edge_tls::Role::Controller]),
            &[b"h2"],
        )?);
        m.watch();
    }
    handle.rootlb_grace = std::time::Duration::from_secs(args.rootlb_grace_secs);
    handle.notify_keepalive = std::time::Duration::from_secs(args.notify_keepalive_secs);
    let api = TcpListener::bind(&args.api_addr)
        .await
        .with_context(|| format!("binding API address {}", args.api_addr))?;
    let notify = TcpListener::bind(&args.notify_addr)
        .await
        .with_context(|| format!("binding notify address {}", args.notify_addr))?;
    let http = TcpListener::bind(&args.http_addr)
        .await
        .with_context(|| format!("binding REST address {}", args.http_addr))?;
    if mtls.is_none() && !args.insecure_plaintext {
        for (what, l) in [("API", &api), ("notify", &notify), ("REST", &http)] {
            let addr = l.local_addr()?;
            if !addr.ip().to_canonical().is_loopback() {
                anyhow::bail!(
                    "refusing to serve the {what} in plaintext on {addr}, which is not a \
                     loopback address: give --mtls-ca/--mtls-cert/--mtls-key (edgeplane pki), \
                     or --insecure-plaintext to accept plaintext anyway"
                );
            }
        }
    }
    println!(
        "controller: API on {}, REST on {}, notify on {}{}",
        api.local_addr()?,
        http.local_addr()?,
        notify.local_addr()?,
        if mtls.is_some() {
            " (mutual TLS)"
        } else {
            " (plaintext)"
        }
    );
    bound(notify.local_addr()?, subscriber_tls);
    let rest = crate::server::spawn_rest(http, &handle, async {
        let _ = tokio::signal::ctrl_c().await;
    });
    crate::server::run(api, notify, handle, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    rest.await?.context("serving REST")?;
    Ok(())
}
