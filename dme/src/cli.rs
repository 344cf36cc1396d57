//! The `dme` role: flags, loading the tables, binding, TLS (or plaintext on loopback only),
//! serving.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use edge_tls::ServerCert;
use tokio::net::TcpListener;

use crate::cookie::KeyRing;
use crate::ratelimit::{Rate, RateLimiter};
use crate::server::Listeners;
use crate::service::{Dme, DmeConfig};
use crate::subscriber::SubscriberConfig;
use crate::tables::Tables;

/// Flags of `edgeplane dme`.
#[derive(clap::Args, Debug, Clone)]
pub struct DmeArgs {
    /// Serve the tables of this deployment document (YAML or JSON) without a controller.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "controller",
        conflicts_with = "controller"
    )]
    pub standalone: Option<PathBuf>,
    /// Subscribe to these controller notify addresses (comma-separated, tried in turn) instead.
    #[arg(long, env = "EDGEPLANE_NOTIFY_ADDRS", value_delimiter = ',')]
    pub controller: Vec<String>,
    /// This DME's name towards the controller (its acknowledgements are recorded under it).
    #[arg(long, env = "EDGEPLANE_DME_NAME", default_value = "dme")]
    pub name: String,
    /// gRPC listen address.
    #[arg(
        long,
        env = "EDGEPLANE_DME_GRPC_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub grpc_addr: String,
    /// REST listen address.
    #[arg(
        long,
        env = "EDGEPLANE_DME_HTTP_ADDR",
        default_value = "127.0.0.1:38001"
    )]
    pub http_addr: String,
    /// TLS certificate chain (PEM, leaf first) for both listeners; with --tls-key. Re-read
    /// when the file changes (checked every 5 s; new connections get the new one). Without
    /// TLS the DME serves plaintext, which is insecure: allowed on loopback addresses only,
    /// unless --insecure-plaintext.
    #[arg(
        long,
        env = "EDGEPLANE_DME_TLS_CERT",
        value_name = "PATH",
        requires = "tls_key",
        conflicts_with = "dev_tls"
    )]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of --tls-cert; re-read when it changes.
    #[arg(
        long,
        env = "EDGEPLANE_DME_TLS_KEY",
        value_name = "PATH",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// TLS with a self-signed certificate made at start (for localhost, 127.0.0.1, ::1 and the
    /// listen IPs unless unspecified), for development: prints its SHA-256 fingerprint and
    /// writes it (PEM) to --dev-tls-out for clients to trust. A new one every start.
    #[arg(long)]
    pub dev_tls: bool,
    /// Where --dev-tls writes its certificate (PEM; the key is never written).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "edgeplane-data/dme-dev-cert.pem",
        requires = "dev_tls"
    )]
    pub dev_tls_out: PathBuf,
    /// Serve plaintext (insecure: cookies, tokens and client locations travel unencrypted and
    /// can be read or altered on the way) even on non-loopback addresses.
    #[arg(long, conflicts_with_all = ["tls_cert", "dev_tls"])]
    pub insecure_plaintext: bool,
    /// HTTP/3 (QUIC) listen address, UDP: the REST API and gRPC over HTTP/3, advertised by
    /// `Alt-Svc` on REST responses. Needs TLS; with TLS it defaults to the REST address.
    #[arg(long, env = "EDGEPLANE_DME_H3_ADDR", conflicts_with = "no_h3")]
    pub h3_addr: Option<String>,
    /// Serve no HTTP/3 even with TLS.
    #[arg(long)]
    pub no_h3: bool,
    /// Issue QUIC connection ids carrying this server id (hex), so a root LB route in `quic`
    /// mode sends a client back here after it changes address.
    #[arg(long, env = "EDGEPLANE_DME_QUIC_SERVER_ID", value_name = "HEX")]
    pub quic_server_id: Option<String>,
    /// The connection-id layout shared with the root LB: CONFIG_ID:SERVER_ID_LEN:NONCE_LEN.
    #[arg(
        long,
        default_value = "1:2:8",
        value_name = "ID:LEN:LEN",
        requires = "quic_server_id"
    )]
    pub quic_cid_config: String,
    /// Cookie signing keys, one `KID BASE64-SECRET` per line; the first signs. Without it a
    /// random key is made and cookies do not survive a restart.
    #[arg(long, env = "EDGEPLANE_DME_COOKIE_KEYS", value_name = "FILE")]
    pub cookie_keys: Option<PathBuf>,
    /// Session cookie lifetime in seconds.
    #[arg(long, default_value_t = 24 * 3600)]
    pub session_lifetime_secs: u64,
    /// GeoIP database (.mmdb, GeoIP2-City or DB-IP city layout) for `network_location: geoip`.
    #[arg(long, env = "EDGEPLANE_GEOIP_DB", value_name = "FILE")]
    pub geoip_db: Option<PathBuf>,
    /// Per-client-IP request limit (requests/s; 0 = off). Upstream's default was 10000.
    #[arg(long, env = "EDGEPLANE_DME_RATE_PER_IP", default_value_t = 0)]
    pub rate_limit_per_ip: u32,
    /// Burst allowed above the per-IP rate.
    #[arg(long, default_value_t = 100)]
    pub rate_limit_per_ip_burst: u32,
    /// Limit over all clients (requests/s; 0 = off). Upstream's default was 25000.
    #[arg(long, env = "EDGEPLANE_DME_RATE_GLOBAL", default_value_t = 0)]
    pub rate_limit_global: u32,
    /// Burst allowed above the global rate.
    #[arg(long, default_value_t = 250)]
    pub rate_limit_global_burst: u32,
    /// Passed to clients in RegisterClientReply.token_server_uri.
    #[arg(long, default_value = "")]
    pub token_server_uri: String,
    /// Verified session cookies remembered, so repeated requests skip HMAC verification
    /// (slots, rounded up to a power of two; about 0.5 KB each when full; 0 = off).
    #[arg(long, env = "EDGEPLANE_DME_SESSION_CACHE", default_value_t = crate::session_cache::DEFAULT_CAPACITY)]
    pub session_cache: usize,
    /// Edge events: close a stream after this many seconds without a client message.
    #[arg(long, default_value_t = 1800)]
    pub edge_idle_timeout_secs: u64,
    /// Edge events: move a client off a usable instance only to one at least this many km
    /// nearer (0: upstream's behaviour, any nearer one).
    #[arg(long, default_value_t = 0.0)]
    pub edge_hysteresis_km: f64,
    /// Edge events: keep a client whose last reported average latency is below this (ms) on
    /// its usable instance (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub edge_keep_below_latency_ms: f64,
    /// Edge events: client messages per second per stream (0: unlimited); burst twice that.
    #[arg(long, default_value_t = 20)]
    pub edge_messages_per_sec: u32,
    /// Edge events: an authentic edge-events cookie is accepted on INIT this many seconds
    /// past its expiry (so an SDK reconnecting after a long stream is not refused).
    #[arg(long, default_value_t = 24 * 3600)]
    pub edge_cookie_grace_secs: u64,
    /// Mutual TLS with the controller's notify endpoint (`edgeplane pki issue --role dme`).
    #[command(flatten)]
    pub mtls: edge_tls::cli::MtlsArgs,
    /// The CAMARA APIs.
    #[command(flatten)]
    pub camara: crate::camara::config::CamaraArgs,
}

/// Loads everything, binds both listeners, and serves until Ctrl-C.
pub async fn run_dme(args: DmeArgs) -> Result<()> {
    let tables = match &args.standalone {
        Some(path) => {
            let doc = edge_model::document::load(path)
                .with_context(|| format!("loading {}", path.display()))?;
            Tables::from_deployment(&doc, 1).context("building the DME tables")?
        }
        None => Tables::empty(),
    };
    let keys = match &args.cookie_keys {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            KeyRing::parse_file(&path.display().to_string(), &text)?
        }
        None => {
            tracing::warn!("no --cookie-keys: using a random key; cookies end with this process");
            KeyRing::random()
        }
    };
    let geoip = match &args.geoip_db {
        Some(path) => Some(geodata::GeoIp::open(path)?),
        None => None,
    };
    let config = DmeConfig {
        session_cookie_lifetime: Duration::from_secs(args.session_lifetime_secs),
        token_server_uri: args.token_server_uri.clone(),
        session_cache: args.session_cache,
        edge_events: crate::edge_events::EdgeConfig {
            idle_timeout: Duration::from_secs(args.edge_idle_timeout_secs.max(1)),
            hysteresis_km: args.edge_hysteresis_km.max(0.0),
            keep_below_latency_ms: args.edge_keep_below_latency_ms.max(0.0),
            messages_per_sec: args.edge_messages_per_sec,
            burst: args.edge_messages_per_sec.saturating_mul(2),
            cookie_grace: Duration::from_secs(args.edge_cookie_grace_secs),
            ..Default::default()
        },
        ..DmeConfig::default()
    };
    let apps = tables.app_count();
    let rate = |per_second: u32, burst: u32| (per_second > 0).then_some(Rate { per_second, burst });
    let limiter = RateLimiter::new(
        rate(args.rate_limit_global, args.rate_limit_global_burst),
        rate(args.rate_limit_per_ip, args.rate_limit_per_ip_burst),
    );
    let mut dme = Dme::new(tables, keys, config, geoip).with_rate_limiter(limiter);
    if let Some(camara) = args
        .camara
        .build(dme.geoip(), args.mtls.mtls_ca.as_deref())?
    {
        dme = dme.with_camara(camara);
    }
    let dme = Arc::new(dme);
    let grpc = TcpListener::bind(&args.grpc_addr)
        .await
        .with_context(|| format!("binding gRPC address {}", args.grpc_addr))?;
    let http = TcpListener::bind(&args.http_addr)
        .await
        .with_context(|| format!("binding REST address {}", args.http_addr))?;
    let tls = tls_from_args(&args, &[grpc.local_addr()?, http.local_addr()?])?;
    if tls.is_none() && !args.insecure_plaintext {
        refuse_public_plaintext(&[("gRPC", &grpc), ("REST", &http)])?;
    }
    if args.standalone.is_none() {
        let config = SubscriberConfig {
            addrs: args.controller.clone(),
            tls: args.mtls.controller_client()?,
            name: args.name.clone(),
        };
        tokio::spawn(crate::subscriber::run(dme.clone(), config));
    }
    let secured = match &tls {
        Some(cert) => format!(" (TLS, certificate SHA-256 {})", cert.fingerprint()),
        None => String::new(),
    };
    println!(
        "DME serving {apps} apps: gRPC on {}, REST on {}{secured}",
        grpc.local_addr()?,
        http.local_addr()?
    );
    let h3 = h3_endpoint(&args, tls.as_ref(), http.local_addr()?)?;
    if let Some(endpoint) = &h3 {
        println!("DME HTTP/3 on UDP {}", endpoint.local_addr()?);
    }
    if let Some(cert) = &tls {
        cert.watch(TLS_RELOAD_POLL, std::future::pending());
    }
    let listeners = Listeners {
        grpc,
        rest: http,
        tls,
        h3,
    };
    crate::server::run(listeners, dme, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// The HTTP/3 endpoint the flags ask for: on `--h3-addr`, else on the REST address when TLS is
/// on, unless `--no-h3`.
fn h3_endpoint(
    args: &DmeArgs,
    tls: Option<&Arc<ServerCert>>,
    rest: SocketAddr,
) -> Result<Option<quinn::Endpoint>> {
    if args.no_h3 {
        return Ok(None);
    }
    let Some(cert) = tls else {
        if args.h3_addr.is_some() || args.quic_server_id.is_some() {
            bail!(
                "--h3-addr/--quic-server-id: HTTP/3 needs TLS: give --tls-cert/--tls-key (or --dev-tls)"
            );
        }
        return Ok(None);
    };
    let addr = match &args.h3_addr {
        Some(a) => a
            .parse::<SocketAddr>()
            .with_context(|| format!("--h3-addr {a}: not an IP:port"))?,
        None => rest,
    };
    let cids = match &args.quic_server_id {
        Some(id) => Some(quic_cids(id, &args.quic_cid_config)?),
        None => None,
    };
    let socket = std::net::UdpSocket::bind(addr)
        .with_context(|| format!("binding HTTP/3 address {addr} (UDP)"))?;
    Ok(Some(crate::h3::endpoint(socket, cert.clone(), cids)?))
}

/// quic-lb's connection-id generator for `--quic-server-id` and `--quic-cid-config`.
fn quic_cids(server_id: &str, layout: &str) -> Result<crate::h3::CidFactory> {
    let parts: Vec<u8> = layout
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("--quic-cid-config {layout}: expected ID:LEN:LEN"))?;
    let [config_id, sid_len, nonce_len] = parts[..] else {
        bail!("--quic-cid-config {layout}: expected three numbers ID:LEN:LEN");
    };
    let cfg = quic_lb::CidConfig::new(config_id, sid_len, nonce_len)
        .with_context(|| format!("--quic-cid-config {layout}"))?;
    let sid: quic_lb::ServerId = server_id
        .parse()
        .with_context(|| format!("--quic-server-id {server_id}"))?;
    let generator = quic_lb::QuicLbCidGenerator::new(cfg, sid)
        .with_context(|| format!("--quic-server-id {server_id} with --quic-cid-config {layout}"))?;
    Ok(Arc::new(move || Box::new(generator.clone())))
}

/// How often the TLS certificate files are checked for a change.
const TLS_RELOAD_POLL: Duration = Duration::from_secs(5);

/// The certificate of `--tls-cert/--tls-key` or `--dev-tls`, if any. `--dev-tls` also covers
/// the specific addresses listened on (`addrs`), so clients on other hosts can verify it.
fn tls_from_args(args: &DmeArgs, addrs: &[SocketAddr]) -> Result<Option<Arc<ServerCert>>> {
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        return Ok(Some(ServerCert::from_files(cert, key)?));
    }
    if !args.dev_tls {
        return Ok(None);
    }
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for addr in addrs {
        let ip = addr.ip().to_canonical();
        if !ip.is_loopback() && !ip.is_unspecified() && !names.contains(&ip.to_string()) {
            names.push(ip.to_string());
        }
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (cert, dev) = ServerCert::dev_self_signed(&names)?;
    let out = &args.dev_tls_out;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out, &dev.cert_pem).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "DME dev TLS: self-signed certificate for {}, SHA-256 {}, written to {} (trust it \
         with e.g. curl --cacert {})",
        names.join(", "),
        dev.fingerprint,
        out.display(),
        out.display()
    );
    Ok(Some(cert))
}

/// Plaintext only where nobody else can listen in: every listener on a loopback address.
fn refuse_public_plaintext(listeners: &[(&str, &TcpListener)]) -> Result<()> {
    for (what, listener) in listeners {
        let addr = listener.local_addr()?;
        if !addr.ip().to_canonical().is_loopback() {
            anyhow::bail!(
                "refusing to serve {what} in plaintext on {addr}, which is not a loopback \
                 address: give --tls-cert/--tls-key (or --dev-tls for a self-signed \
                 certificate), or --insecure-plaintext to accept plaintext anyway"
            );
        }
    }
    Ok(())
}
