//! `edgeplane up`: a whole local region in one process — controller on the embedded store, a DME
//! subscribed to it — with a deployment document applied through the controller's own API.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use edge_api::pb::controller_client::ControllerClient;
use tokio::net::TcpListener;

/// Flags of `edgeplane up`.
#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Deployment document applied at start (skipped if the file does not exist and was not
    /// given explicitly).
    #[arg(long, value_name = "FILE", default_value = "examples/region.yaml")]
    pub apply: PathBuf,
    /// Apply nothing at start.
    #[arg(long)]
    pub no_apply: bool,
    #[command(flatten)]
    pub store: controller::cli::StoreArgs,
    /// Controller API (gRPC).
    #[arg(long, default_value = "127.0.0.1:55001")]
    pub api_addr: String,
    /// Controller notify.
    #[arg(long, default_value = "127.0.0.1:37001")]
    pub notify_addr: String,
    /// DME gRPC.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub dme_grpc_addr: String,
    /// DME REST.
    #[arg(long, default_value = "127.0.0.1:38001")]
    pub dme_http_addr: String,
    /// Region name used in generated FQDNs (default: the document's, else "local").
    #[arg(long)]
    pub region: Option<String>,
}

async fn bind(addr: &str, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {what} address {addr}"))
}

pub async fn run(args: UpArgs) -> Result<()> {
    let doc = if args.no_apply || !args.apply.exists() {
        None
    } else {
        Some(
            edge_model::document::load(&args.apply)
                .with_context(|| format!("loading {}", args.apply.display()))?,
        )
    };
    let region = args
        .region
        .clone()
        .or_else(|| doc.as_ref().map(|d| d.region.clone()))
        .unwrap_or_else(|| "local".into());
    let store = args.store.open().await?;
    let handle = controller::server::start(store, &region).await?;
    let (api, notify) = (
        bind(&args.api_addr, "controller API").await?,
        bind(&args.notify_addr, "notify").await?,
    );
    let (api_addr, notify_addr) = (api.local_addr()?, notify.local_addr()?);
    tokio::spawn(controller::server::run(
        api,
        notify,
        handle.clone(),
        std::future::pending(),
    ));
    let (_crm_stop, crm_stop) = tokio::sync::watch::channel(false);
    crm::cli::spawn_fake(
        vec![notify_addr.to_string()],
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        crm_stop,
    );

    let engine = dme::subscriber::spawn_local(dme::subscriber::SubscriberConfig {
        addrs: vec![notify_addr.to_string()],
        name: "dme-local".into(),
    });
    let (g, h) = (
        bind(&args.dme_grpc_addr, "DME gRPC").await?,
        bind(&args.dme_http_addr, "DME REST").await?,
    );
    let (grpc_addr, http_addr) = (g.local_addr()?, h.local_addr()?);
    let dme_task = tokio::spawn(dme::server::run(g, h, engine, async {
        let _ = tokio::signal::ctrl_c().await;
    }));

    if let Some(doc) = &doc {
        let mut client = ControllerClient::connect(format!("http://{api_addr}")).await?;
        let report = edgectl::apply(&mut client, doc)
            .await
            .context("applying the document")?;
        tokio::time::timeout(
            Duration::from_secs(30),
            handle.acks.wait_for("dme-local", report.revision),
        )
        .await
        .context("the DME did not catch up within 30 s")?;
        println!(
            "applied {}: {} created, {} updated, {} unchanged",
            args.apply.display(),
            report.created,
            report.updated,
            report.unchanged
        );
    }
    println!(
        "Edgeplane region {region:?} is up (data in {}):",
        args.store.data_dir.display()
    );
    println!("  controller API  {api_addr}    (edgectl --addr {api_addr} show --all)");
    println!("  notify          {notify_addr}");
    println!("  DME gRPC        {grpc_addr}");
    println!("  DME REST        {http_addr}");
    println!("Try:");
    println!(
        "  cargo run --release --bin edgectl -- dme --dme-addr {grpc_addr} find \\\n    --app NimbusGames/arena-shooter/2.3 --carrier 26201 --lat 52.3906 --lon 13.0645"
    );
    println!(
        "  curl -s {http_addr}/v1/registerclient -d '{{\"org_name\":\"NimbusGames\",\"app_name\":\"arena-shooter\",\"app_vers\":\"2.3\"}}'"
    );
    println!("Ctrl-C stops the region.");
    dme_task.await??;
    Ok(())
}
