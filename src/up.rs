//! `edgeplane up`: a whole local region in one process — controller on the embedded store, the
//! CRM of the `fake` platform, a DME, the region DNS, and for every cloudlet on the `local`
//! platform its CRM (real processes), shared root LB and Shepherd — with the deployment
//! documents applied through the controller's own API, and the master controller (MC) in
//! front of it for users.
//!
//! Every connection between components is mutual TLS on the region PKI kept in
//! `DATA_DIR/pki` (made at the first start, kept after): the controller admits only the MC
//! and `edgectl` certificates on its API and only subscribers on notify. The MC serves HTTPS
//! with its certificate, on the embedded store in `DATA_DIR/mc`; its `admin` user's
//! generated password is written to `DATA_DIR/mc-admin-password` (0600) and printed once.
//! The DME's client endpoints stay plaintext on loopback, for the SDKs and `curl` examples.

mod local_dme;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use edge_api::pb::controller_client::ControllerClient;
use edge_model::{Cloudlet, Deployment};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Flags of `edgeplane up`.
#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Deployment documents applied at start, in order (a default one that does not exist is
    /// skipped).
    #[arg(
        long,
        value_name = "FILE",
        default_values = ["examples/region.yaml", "examples/local.yaml"]
    )]
    pub apply: Vec<PathBuf>,
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
    /// Region DNS (UDP and TCP).
    #[arg(long, default_value = "127.0.0.1:5353")]
    pub dns_addr: String,
    /// Region name used in generated FQDNs (default: the first document's, else "local").
    #[arg(long)]
    pub region: Option<String>,
    /// How local cloudlets isolate their clusters.
    #[arg(long, value_enum, default_value_t = crm::platform::local::net::Isolation::Auto)]
    pub isolation: crm::platform::local::net::Isolation,
    /// InfluxDB the local cloudlets' Shepherds write to (e.g. http://127.0.0.1:8086).
    #[arg(long)]
    pub influx_url: Option<String>,
    /// The master controller's API (HTTPS).
    #[arg(long, default_value = "127.0.0.1:9900")]
    pub mc_addr: String,
}

/// The region PKI of a one-host region: a certificate per role, all named `local`.
struct Pki {
    dir: PathBuf,
}

/// Name of every component certificate `up` issues.
const CERT_NAME: &str = "local";

impl Pki {
    fn ensure(data_dir: &std::path::Path, region: &str) -> Result<Pki> {
        use edge_tls::Role::*;
        let dir = data_dir.join("pki");
        let leaves: Vec<_> = [Controller, Dme, Rootlb, Crm, Dns, Shepherd, Mc, Edgectl]
            .into_iter()
            .map(|r| edge_tls::LeafRequest::new(r, CERT_NAME))
            .collect();
        edge_tls::pki::ensure(&dir, region, &leaves)
            .with_context(|| format!("the region PKI in {}", dir.display()))?;
        Ok(Pki { dir })
    }

    fn args(&self, role: edge_tls::Role) -> edge_tls::cli::MtlsArgs {
        edge_tls::cli::MtlsArgs::from_pki_dir(&self.dir, role, CERT_NAME)
    }

    fn mtls(&self, role: edge_tls::Role) -> Result<edge_tls::cli::Mtls> {
        let m = self.args(role).load()?.context("certificate files")?;
        m.watch();
        Ok(m)
    }

    /// A client of `role` dialling the controller.
    fn client(&self, role: edge_tls::Role) -> Result<edge_tls::MtlsClient> {
        self.args(role)
            .controller_client()?
            .context("certificate files")
    }

    /// The same as command-line words.
    fn flags(&self, role: edge_tls::Role) -> Vec<String> {
        self.args(role).flags()
    }
}

async fn bind(addr: &str, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {what} address {addr}"))
}

/// The documents to apply (explicitly named ones must exist).
fn documents(args: &UpArgs) -> Result<Vec<(PathBuf, Deployment)>> {
    if args.no_apply {
        return Ok(Vec::new());
    }
    let defaults = UpArgs::parse_defaults_apply();
    let mut out = Vec::new();
    for path in &args.apply {
        if !path.exists() && defaults.contains(path) {
            continue;
        }
        let doc = edge_model::document::load(path)
            .with_context(|| format!("loading {}", path.display()))?;
        out.push((path.clone(), doc));
    }
    Ok(out)
}

impl UpArgs {
    fn parse_defaults_apply() -> Vec<PathBuf> {
        vec!["examples/region.yaml".into(), "examples/local.yaml".into()]
    }
}

/// What runs for the local cloudlets, so Ctrl-C can stop their workloads.
type Platforms = Arc<Mutex<Vec<Arc<dyn crm::platform::Platform>>>>;

/// Resolves on Ctrl-C or SIGTERM (registered at once, so a signal during start-up is not lost).
fn interrupted() -> Result<impl Future<Output = ()>> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let int = tokio::spawn(tokio::signal::ctrl_c());
    Ok(async move {
        tokio::select! {
            _ = int => {}
            _ = term.recv() => {}
        }
    })
}

pub async fn run(args: UpArgs) -> Result<()> {
    let signal = interrupted()?;
    tokio::pin!(signal);
    let docs = documents(&args)?;
    let region = args
        .region
        .clone()
        .or_else(|| docs.first().map(|(_, d)| d.region.clone()))
        .unwrap_or_else(|| "local".into());
    let pki = Pki::ensure(&args.store.data_dir, &region)?;
    let store = args.store.open().await?;
    let mut handle = controller::server::start(store, &region).await?;
    handle.tls = Some(controller::server::ControllerTls::new(
        &pki.mtls(edge_tls::Role::Controller)?,
    )?);
    let (api, notify) = (
        bind(&args.api_addr, "controller API").await?,
        bind(&args.notify_addr, "notify").await?,
    );
    let (api_addr, notify_addr) = (api.local_addr()?, notify.local_addr()?);
    let notify_addrs = vec![notify_addr.to_string()];
    let (stop_tx, stop) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(controller::server::run(
        api,
        notify,
        handle.clone(),
        stopped(stop.clone()),
    ));
    crm::cli::spawn_fake(
        notify_addrs.clone(),
        Some(pki.client(edge_tls::Role::Crm)?),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        stop.clone(),
    );

    let (g, h) = (
        bind(&args.dme_grpc_addr, "DME gRPC").await?,
        bind(&args.dme_http_addr, "DME REST").await?,
    );
    let (grpc_addr, http_addr) = (g.local_addr()?, h.local_addr()?);

    let dns_addr: SocketAddr = args
        .dns_addr
        .parse()
        .with_context(|| format!("--dns-addr {:?} is not IP:PORT", args.dns_addr))?;
    let (udp, tcp) = edge_dns::cli::bind(dns_addr)
        .await
        .with_context(|| format!("binding the region DNS on {dns_addr}"))?;
    let dns_addr = udp.local_addr()?;
    let mut dns = edge_dns::cli::DnsConfig::new(notify_addrs.clone(), region.clone());
    dns.tls = Some(pki.client(edge_tls::Role::Dns)?);
    tokio::spawn(edge_dns::cli::run(dns, udp, tcp, stopped(stop.clone())));

    let mc = start_mc(
        &args,
        &pki,
        &region,
        &docs,
        (api_addr, notify_addr),
        stopped(stop.clone()),
    )
    .await?;
    let engine = local_dme::start(
        &args.store.data_dir,
        &pki.dir.join(edge_tls::pki::CA_CERT_FILE),
        pki.client(edge_tls::Role::Dme)?,
        notify_addrs.clone(),
        mc.addr,
    )?;
    let dme_task = tokio::spawn(dme::server::run(
        dme::server::Listeners::plaintext(g, h),
        engine,
        stopped(stop.clone()),
    ));

    let platforms: Platforms = Arc::default();
    let started = async {
        let endpoint = edge_tls::grpc::endpoint(&api_addr.to_string(), Duration::from_secs(5))?;
        let edgectl_tls = pki.client(edge_tls::Role::Edgectl)?;
        let channel = edge_tls::grpc::channel(endpoint, Some(&edgectl_tls)).await?;
        let mut client = ControllerClient::new(channel);
        let mut local = Vec::new();
        for (path, doc) in &docs {
            // Local cloudlets first without their clusters and instances: their CRM needs the
            // cloudlet to exist, and a create waits for the CRM.
            let mine: Vec<&Cloudlet> = doc
                .cloudlets
                .iter()
                .filter(|c| c.platform_type == "local")
                .collect();
            if !mine.is_empty() {
                let mut first = doc.clone();
                first.cluster_insts.clear();
                first.app_insts.clear();
                edgectl::apply(&mut client, &first)
                    .await
                    .with_context(|| format!("applying {}", path.display()))?;
                for c in mine {
                    let lb_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + local.len() as u8));
                    let cloudlet = LocalCloudlet {
                        key: c.key.clone(),
                        lb_ip,
                    };
                    cloudlet
                        .start(&args, &pki, &notify_addrs, http_addr, &platforms, &stop)
                        .await?;
                    local.push(cloudlet);
                }
            }
            let report = edgectl::apply(&mut client, doc)
                .await
                .with_context(|| format!("applying {}", path.display()))?;
            tokio::time::timeout(
                Duration::from_secs(30),
                handle.acks.wait_for("dme-local", report.revision),
            )
            .await
            .context("the DME did not catch up within 30 s")?;
            println!(
                "applied {}: {} created, {} updated, {} unchanged",
                path.display(),
                report.created,
                report.updated,
                report.unchanged
            );
        }
        banner(
            &region,
            &args,
            &pki,
            &mc,
            api_addr,
            notify_addr,
            grpc_addr,
            http_addr,
            dns_addr,
            &local,
        );
        anyhow::Ok(())
    };
    let result = tokio::select! {
        r = started => match r {
            Ok(()) => {
                signal.await;
                Ok(())
            }
            Err(e) => Err(e),
        },
        () = &mut signal => Ok(()),
    };
    let _ = stop_tx.send(true);
    println!("stopping the local cloudlets' workloads");
    let running: Vec<_> = platforms.lock().map(|p| p.clone()).unwrap_or_default();
    for p in running {
        p.stop_all().await;
    }
    result?;
    dme_task.await??;
    Ok(())
}

/// A cloudlet of the `local` platform and the public address of its root LB.
struct LocalCloudlet {
    key: edge_model::CloudletKey,
    lb_ip: IpAddr,
}

#[derive(Parser)]
struct RootLbCli {
    #[command(flatten)]
    args: dataplane::RootLbArgs,
}

impl LocalCloudlet {
    /// Its CRM, its root LB and its Shepherd.
    async fn start(
        &self,
        args: &UpArgs,
        pki: &Pki,
        controller: &[String],
        dme_http: SocketAddr,
        platforms: &Platforms,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        let opts = crm::cli::PlatformOptions {
            state_dir: args.store.data_dir.join("crm"),
            isolation: args.isolation,
            ..Default::default()
        };
        let made = platforms.clone();
        let config = crm::CrmConfig {
            addrs: controller.to_vec(),
            tls: Some(pki.client(edge_tls::Role::Crm)?),
            name: format!("crm-{}-{}", self.key.organization, self.key.name),
            scope: crm::Scope::Cloudlet(self.key.clone()),
            platforms: Box::new(move |c| {
                let p = crm::cli::make_platform(&opts, c)?;
                if let Ok(mut all) = made.lock() {
                    all.push(p.clone());
                }
                Ok(p)
            }),
            rootlb_address: Some(self.lb_ip),
        };
        let (key, rx) = (self.key.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = crm::run(config, rx).await {
                tracing::error!(cloudlet = %key, "CRM stopped: {e}");
            }
        });
        // The root LB's metrics on a free port, for Shepherd.
        let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let cloudlet = format!("{}/{}", self.key.organization, self.key.name);
        let mut words: Vec<String> = [
            "rootlb",
            "--controller",
            &controller.join(","),
            "--cloudlet",
            &cloudlet,
            "--listen-ip",
            &self.lb_ip.to_string(),
            "--metrics-addr",
            &metrics.to_string(),
        ]
        .map(String::from)
        .to_vec();
        words.extend(pki.flags(edge_tls::Role::Rootlb));
        let lb = RootLbCli::try_parse_from(words)?.args;
        let mut rx = stop.clone();
        tokio::spawn(dataplane::run_rootlb_until(lb, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        let mut shepherd = shepherd::ShepherdConfig::new(controller.to_vec(), self.key.clone());
        shepherd.tls = Some(pki.client(edge_tls::Role::Shepherd)?);
        shepherd.sources = shepherd::Sources {
            rootlb_metrics: Some(format!("http://{metrics}/metrics")),
            dme_metrics: vec![format!("http://{dme_http}/metrics")],
            processes: Some(Arc::new(shepherd::StateDirSource::new(
                args.store
                    .data_dir
                    .join("crm")
                    .join(format!("{}-{}", self.key.organization, self.key.name)),
            ))),
        };
        shepherd.influx = args
            .influx_url
            .as_ref()
            .map(|u| shepherd::InfluxConfig::new(u.clone(), "metrics"));
        let mut rx = stop.clone();
        tokio::spawn(async move {
            let done = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = shepherd::run(shepherd, done).await {
                tracing::error!("Shepherd stopped: {e}");
            }
        });
        Ok(())
    }
}

/// The MC as `up` runs it.
struct McUp {
    addr: SocketAddr,
    password_file: PathBuf,
    /// The admin password when this start created it (printed once).
    new_password: Option<String>,
}

#[derive(Parser)]
struct McCli {
    #[command(flatten)]
    args: mc::cli::McArgs,
}

/// The MC on its embedded store, serving HTTPS with its certificate, dialling the controller
/// over mutual TLS, with this region's controller registered.
async fn start_mc(
    args: &UpArgs,
    pki: &Pki,
    region: &str,
    docs: &[(PathBuf, Deployment)],
    (api, notify): (SocketAddr, SocketAddr),
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<McUp> {
    let data = &args.store.data_dir;
    let password_file = data.join("mc-admin-password");
    let existed = password_file.exists();
    let mut words: Vec<String> = vec![
        "mc".into(),
        "--listen".into(),
        args.mc_addr.clone(),
        "--data-dir".into(),
        data.join("mc").display().to_string(),
        "--admin-password-file".into(),
        password_file.display().to_string(),
    ];
    words.extend(pki.flags(edge_tls::Role::Mc));
    let mc_args = McCli::try_parse_from(words)?.args;
    let p = mc::cli::prepare(&mc_args)
        .await
        .context("starting the MC")?;
    let want = mc::model::Controller {
        region: region.to_owned(),
        address: api.to_string(),
        notify_addr: notify.to_string(),
    };
    let store = p.state.store.clone();
    if store.controller(region).await? != Some(want.clone()) {
        store.delete_controller(region).await?;
        store.create_controller(&want).await?;
    }
    register_orgs(store.as_ref(), docs).await?;
    let addr = p.listener.local_addr()?;
    tokio::spawn(mc::server::run(p.listener, p.tls, p.state, stop));
    let new_password = if existed {
        None
    } else {
        Some(std::fs::read_to_string(&password_file)?.trim().to_owned())
    };
    Ok(McUp {
        addr,
        password_file,
        new_password,
    })
}

/// The organisations owning the documents' objects, made known to the MC (operators own
/// cloudlets and operator codes, developers apps and instances), so that the region `up`
/// applied can be managed through the MC. Existing ones are left as they are.
async fn register_orgs(
    store: &dyn mc::store::McStore,
    docs: &[(PathBuf, Deployment)],
) -> Result<()> {
    use mc::model::{Org, OrgType};
    let mut orgs = std::collections::BTreeMap::new();
    for (_, d) in docs {
        let operators = d.cloudlets.iter().map(|c| &c.key.organization);
        let operators = operators.chain(d.operator_codes.iter().map(|c| &c.organization));
        for o in operators {
            orgs.insert(o.clone(), OrgType::Operator);
        }
        let developers = d.apps.iter().map(|a| &a.key.organization);
        let developers = developers
            .chain(d.cluster_insts.iter().map(|c| &c.key.organization))
            .chain(d.app_insts.iter().map(|i| &i.key.organization));
        for o in developers {
            orgs.entry(o.clone()).or_insert(OrgType::Developer);
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    for (name, org_type) in orgs {
        if store.org(&name).await?.is_some() {
            continue;
        }
        let org = Org {
            name: name.clone(),
            org_type,
            delete_in_progress: false,
            created_at: now,
        };
        store
            .create_org(&org)
            .await
            .with_context(|| format!("registering organisation {name} with the MC"))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn banner(
    region: &str,
    args: &UpArgs,
    pki: &Pki,
    mc: &McUp,
    api: SocketAddr,
    notify: SocketAddr,
    grpc: SocketAddr,
    http: SocketAddr,
    dns: SocketAddr,
    local: &[LocalCloudlet],
) {
    println!(
        "Edgeplane region {region:?} is up (data in {}):",
        args.store.data_dir.display()
    );
    println!("  MC (users)      https://{}", mc.addr);
    println!("  controller API  {api}    (mutual TLS: MC and edgectl certificates only)");
    println!("  notify          {notify}");
    println!("  DME gRPC        {grpc}");
    println!("  DME REST        {http}");
    println!("  region DNS      {dns}");
    for c in local {
        println!("  root LB of {}  {}", c.key, c.lb_ip);
    }
    let ca = pki.dir.join(edge_tls::pki::CA_CERT_FILE);
    match &mc.new_password {
        Some(p) => println!(
            "Created MC user admin, password {p} (shown once; also in {}, mode 0600)",
            mc.password_file.display()
        ),
        None => println!("MC user admin: password in {}", mc.password_file.display()),
    }
    println!("Log in, then work through the MC:");
    println!(
        "  cargo run --release --bin edgectl -- login --mc https://{} --ca {} \\\n    --username admin --password-file {}",
        mc.addr,
        ca.display(),
        mc.password_file.display()
    );
    println!("  cargo run --release --bin edgectl -- show");
    println!("Try:");
    println!(
        "  cargo run --release --bin edgectl -- dme --dme-addr {grpc} find \\\n    --app NimbusGames/arena-shooter/2.3 --carrier 26201 --lat 52.3906 --lon 13.0645"
    );
    println!(
        "  curl -s {http}/v1/registerclient -d '{{\"org_name\":\"NimbusGames\",\"app_name\":\"arena-shooter\",\"app_vers\":\"2.3\"}}'"
    );
    if !local.is_empty() {
        println!(
            "  cargo run --release --bin edgectl -- dme --dme-addr {grpc} find \\\n    --app NimbusGames/echo/1 --carrier 26201 --lat 52.3906 --lon 13.0645 --connect --dns {dns}"
        );
        println!(
            "  dig @{} -p {} shared.berlin-local-telekom.{region}.edge.example.net",
            dns.ip(),
            dns.port()
        );
    }
    println!("Ctrl-C stops the region.");
}
