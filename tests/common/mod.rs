//! A local region over real sockets: controller (embedded store in a temp dir) and DME wired by
//! the notify stream, plus clients.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dme::proto::{self, match_engine_api_client::MatchEngineApiClient};
use edge_api::pb::controller_client::ControllerClient;
use edge_model::AppKey;
use tokio::net::TcpListener;
use tonic::transport::Channel;

pub const DME_NAME: &str = "dme-test";

pub struct Dme {
    pub grpc: SocketAddr,
    pub engine: Option<Arc<dme::Dme>>,
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Dme {
    /// A client-side handle for a DME running elsewhere.
    pub fn connect(grpc: SocketAddr) -> Self {
        Self {
            grpc,
            engine: None,
            _stop: None,
        }
    }
}

/// A DME subscribed to `notify`, serving gRPC on an OS-chosen port.
pub async fn start_dme(notify: &[SocketAddr]) -> Dme {
    start_dme_tls(notify, None).await
}

/// As [`start_dme`], subscribing over mutual TLS with `tls`.
pub async fn start_dme_tls(notify: &[SocketAddr], tls: Option<edge_tls::MtlsClient>) -> Dme {
    let engine = dme::subscriber::spawn_local(dme::subscriber::SubscriberConfig {
        addrs: notify.iter().map(ToString::to_string).collect(),
        tls,
        name: DME_NAME.into(),
    });
    let g = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let h = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = g.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(dme::server::run(
        dme::server::Listeners::plaintext(g, h),
        engine.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    Dme {
        grpc,
        engine: Some(engine),
        _stop: Some(tx),
    }
}

pub struct Controller {
    pub api: SocketAddr,
    pub notify: SocketAddr,
    pub handle: controller::server::Handle,
    /// The region PKI when the controller requires mutual TLS.
    pub pki: Option<&'static TestPki>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Region "eu"'s PKI for the tests of this binary: a CA and one certificate per role, in
/// the target's temporary directory, made once.
pub struct TestPki {
    pub dir: std::path::PathBuf,
}

/// The roles tests issue certificates for (named `test`).
const PKI_ROLES: [edge_tls::Role; 6] = [
    edge_tls::Role::Controller,
    edge_tls::Role::Dme,
    edge_tls::Role::Rootlb,
    edge_tls::Role::Crm,
    edge_tls::Role::Edgectl,
    edge_tls::Role::Mc,
];

pub fn pki() -> &'static TestPki {
    static PKI: std::sync::OnceLock<TestPki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        // One directory per test process (nextest runs each test in a process of its own),
        // and those of processes that are gone removed (no ':' in the path: curl reads
        // `--cert FILE:PASSWORD`).
        let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let stem = format!("pki-{}-", module_path!().replace("::", "-"));
        for old in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = old.file_name().to_string_lossy().into_owned();
            let pid = name.strip_prefix(&stem).and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        let dir = tmp.join(format!("{stem}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let leaves: Vec<_> = PKI_ROLES
            .iter()
            .map(|r| edge_tls::LeafRequest::new(*r, "test"))
            .collect();
        edge_tls::pki::ensure(&dir, "eu", &leaves).expect("region PKI");
        TestPki { dir }
    })
}

impl TestPki {
    /// The `--mtls-*` flags of a component of this role.
    pub fn args(&self, role: edge_tls::Role) -> edge_tls::cli::MtlsArgs {
        edge_tls::cli::MtlsArgs::from_pki_dir(&self.dir, role, "test")
    }

    /// The same as command-line words.
    pub fn flags(&self, role: edge_tls::Role) -> Vec<String> {
        self.args(role).flags()
    }

    pub fn mtls(&self, role: edge_tls::Role) -> edge_tls::cli::Mtls {
        self.args(role).load().unwrap().expect("all three files")
    }

    /// A client of this role that accepts only a controller.
    pub fn client(&self, role: edge_tls::Role) -> edge_tls::MtlsClient {
        self.mtls(role)
            .client(
                edge_tls::PeerPolicy::roles(&[edge_tls::Role::Controller]),
                &[b"h2"],
            )
            .unwrap()
    }
}

/// A controller on `store`, its notify listener on `notify` (or an OS-chosen port).
pub async fn start_controller(
    store: Arc<dyn edge_store::Store>,
    notify: Option<SocketAddr>,
) -> Controller {
    start_controller_with(store, notify, |_| {}).await
}

/// As [`start_controller`], with mutual TLS on the API and notify ([`pki`]).
pub async fn start_controller_mtls(
    store: Arc<dyn edge_store::Store>,
    notify: Option<SocketAddr>,
) -> Controller {
    start_controller_mtls_with(store, notify, |_| {}).await
}

/// As [`start_controller_with`], with mutual TLS on the API and notify ([`pki`]).
pub async fn start_controller_mtls_with(
    store: Arc<dyn edge_store::Store>,
    notify: Option<SocketAddr>,
    configure: impl FnOnce(&mut controller::server::Handle),
) -> Controller {
    let pki = pki();
    let tls = controller::server::ControllerTls::new(&pki.mtls(edge_tls::Role::Controller))
        .expect("controller TLS");
    let mut ctl = start_controller_tls(store, notify, configure, Some(pki), Some(tls)).await;
    ctl.pki = Some(pki);
    ctl
}

/// As [`start_controller`], with `configure` applied to the handle before it serves.
pub async fn start_controller_with(
    store: Arc<dyn edge_store::Store>,
    notify: Option<SocketAddr>,
    configure: impl FnOnce(&mut controller::server::Handle),
) -> Controller {
    start_controller_tls(store, notify, configure, None, None).await
}

async fn start_controller_tls(
    store: Arc<dyn edge_store::Store>,
    notify: Option<SocketAddr>,
    configure: impl FnOnce(&mut controller::server::Handle),
    pki: Option<&'static TestPki>,
    tls: Option<controller::server::ControllerTls>,
) -> Controller {
    let mut handle = controller::server::start(store, "eu")
        .await
        .expect("controller starts");
    // Tests stop root LBs on purpose; their instances go RootlbOffline after this long.
    handle.rootlb_grace = Duration::from_millis(500);
    configure(&mut handle);
    handle.tls = tls;
    let api_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_l = TcpListener::bind(notify.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let (api, notify) = (api_l.local_addr().unwrap(), notify_l.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (crm_stop, crm_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(controller::server::run(
        api_l,
        notify_l,
        handle.clone(),
        async move {
            let _ = rx.await;
            let _ = crm_stop.send(true);
        },
    ));
    // The fake platform's cloudlets get their CRM, as `edgeplane controller` runs it.
    crm::cli::spawn_fake(
        vec![notify.to_string()],
        pki.map(|p| p.client(edge_tls::Role::Crm)),
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        crm_rx,
    );
    Controller {
        api,
        notify,
        handle,
        pki,
        _stop: tx,
    }
}

impl Controller {
    /// An API client: over mutual TLS with an `edgectl` certificate when the controller
    /// requires it.
    pub async fn client(&self) -> ControllerClient<Channel> {
        let tls = self.pki.map(|p| p.client(edge_tls::Role::Edgectl));
        let endpoint =
            edge_tls::grpc::endpoint(&self.api.to_string(), Duration::from_secs(5)).unwrap();
        ControllerClient::new(
            edge_tls::grpc::channel(endpoint, tls.as_ref())
                .await
                .unwrap(),
        )
    }

    /// A DME subscribed to this controller (with a `dme` certificate under mutual TLS).
    pub async fn dme(&self) -> Dme {
        let tls = self.pki.map(|p| p.client(edge_tls::Role::Dme));
        start_dme_tls(&[self.notify], tls).await
    }

    /// Waits (bounded) until the DME acknowledged `revision`.
    pub async fn wait_dme(&self, revision: u64) {
        tokio::time::timeout(
            Duration::from_secs(10),
            self.handle.acks.wait_for(DME_NAME, revision),
        )
        .await
        .expect("the DME acknowledges the change within 10 s");
    }
}

pub fn example() -> edge_model::Deployment {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/region.yaml");
    edge_model::document::load(&path).expect("example parses")
}

pub fn arena() -> AppKey {
    AppKey {
        organization: "NimbusGames".into(),
        name: "arena-shooter".into(),
        version: "2.3".into(),
    }
}

impl Dme {
    pub async fn client(&self) -> MatchEngineApiClient<Channel> {
        MatchEngineApiClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap()
    }

    /// Registers for `app` and finds from (lat, lon) on `carrier`; returns the cloudlet location
    /// found, or None.
    pub async fn find(
        &self,
        app: &AppKey,
        carrier: &str,
        lat: f64,
        lon: f64,
    ) -> Option<(f64, f64)> {
        let (_, r) = self.register_and_find(app, carrier, lat, lon).await;
        (r.status == proto::find_cloudlet_reply::FindStatus::FindFound as i32).then(|| {
            r.cloudlet_location
                .map(|l| (l.latitude, l.longitude))
                .unwrap_or_default()
        })
    }

    /// Registers for `app` and finds from (lat, lon) on `carrier`: the session cookie and the
    /// reply.
    pub async fn register_and_find(
        &self,
        app: &AppKey,
        carrier: &str,
        lat: f64,
        lon: f64,
    ) -> (String, proto::FindCloudletReply) {
        let mut c = self.client().await;
        let reg = c
            .register_client(proto::RegisterClientRequest {
                org_name: app.organization.clone(),
                app_name: app.name.clone(),
                app_vers: app.version.clone(),
                ..Default::default()
            })
            .await
            .expect("register")
            .into_inner();
        let r = c
            .find_cloudlet(proto::FindCloudletRequest {
                session_cookie: reg.session_cookie.clone(),
                carrier_name: carrier.into(),
                gps_location: Some(proto::Loc {
                    latitude: lat,
                    longitude: lon,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("find")
            .into_inner();
        (reg.session_cookie, r)
    }
}

pub async fn redb(dir: &std::path::Path) -> Arc<dyn edge_store::Store> {
    Arc::new(edge_store::RedbStore::open(dir).await.expect("store opens"))
}

/// A region of `n` cloudlets of operator `telekom` (MCC-MNC 26201) on a 0.1° × 0.5° grid, each
/// with one instance of [`arena`]: the shape of a real operator's region, about 320 bytes of
/// YAML per cloudlet and instance. Cloudlet `i` is at [`large_region_site`]`(i)`.
pub fn large_region_yaml(n: usize) -> String {
    let mut s = String::with_capacity(n * 330 + 512);
    s.push_str(
        "version: 1\nregion: eu\noperator_codes:\n  - {code: \"26201\", organization: telekom}\n",
    );
    s.push_str("apps:\n  - key: {organization: NimbusGames, name: arena-shooter, version: \"2.3\"}\n    access_ports: \"tcp:443,udp:7777\"\ncloudlets:\n");
    for i in 0..n {
        let (lat, lon) = large_region_site(i);
        s.push_str(&format!(
            "  - key: {{organization: telekom, name: site-{i}}}\n    location: {{latitude: {lat:.4}, longitude: {lon:.4}}}\n"
        ));
    }
    s.push_str("app_insts:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - key: {{organization: NimbusGames, name: arena-{i}}}\n    app: {{organization: NimbusGames, name: arena-shooter, version: \"2.3\"}}\n    cloudlet: {{organization: telekom, name: site-{i}}}\n"
        ));
    }
    s
}

/// [`large_region_yaml`] as JSON.
pub fn large_region_json(n: usize) -> String {
    let app = r#"{"organization": "NimbusGames", "name": "arena-shooter", "version": "2.3"}"#;
    let cloudlets: Vec<String> = (0..n)
        .map(|i| {
            let (lat, lon) = large_region_site(i);
            format!(
                r#"    {{"key": {{"organization": "telekom", "name": "site-{i}"}}, "location": {{"latitude": {lat:.4}, "longitude": {lon:.4}}}}}"#
            )
        })
        .collect();
    let insts: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"    {{"key": {{"organization": "NimbusGames", "name": "arena-{i}"}}, "app": {app}, "cloudlet": {{"organization": "telekom", "name": "site-{i}"}}}}"#
            )
        })
        .collect();
    format!(
        "{{\n  \"version\": 1,\n  \"region\": \"eu\",\n  \"operator_codes\": [{{\"code\": \"26201\", \"organization\": \"telekom\"}}],\n  \"apps\": [{{\"key\": {app}, \"access_ports\": \"tcp:443,udp:7777\"}}],\n  \"cloudlets\": [\n{}\n  ],\n  \"app_insts\": [\n{}\n  ]\n}}\n",
        cloudlets.join(",\n"),
        insts.join(",\n")
    )
}

/// Where cloudlet `i` of [`large_region_yaml`] is.
pub fn large_region_site(i: usize) -> (f64, f64) {
    (
        -60.0 + (i % 1200) as f64 * 0.1,
        -170.0 + (i / 1200) as f64 * 0.5,
    )
}
