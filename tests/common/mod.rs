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
    let engine = dme::subscriber::spawn_local(dme::subscriber::SubscriberConfig {
        addrs: notify.iter().map(ToString::to_string).collect(),
        tls: None,
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
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A controller on `store`, its notify listener on `notify` (or an OS-chosen port).
pub async fn start_controller(
    store: Arc<dyn edge_store::Store>,
    notify: Option<SocketAddr>,
) -> Controller {
    start_controller_with(store, notify, |_| {}).await
}

/// As [`start_controller`], with `configure` applied to the handle before it serves.
pub async fn start_controller_with(
    store: Arc<dyn edge_store::Store>,
    notify: Option<SocketAddr>,
    configure: impl FnOnce(&mut controller::server::Handle),
) -> Controller {
    let mut handle = controller::server::start(store, "eu")
        .await
        .expect("controller starts");
    // Tests stop root LBs on purpose; their instances go RootlbOffline after this long.
    handle.rootlb_grace = Duration::from_millis(500);
    configure(&mut handle);
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
        None,
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        crm_rx,
    );
    Controller {
        api,
        notify,
        handle,
        _stop: tx,
    }
}

impl Controller {
    pub async fn client(&self) -> ControllerClient<Channel> {
        ControllerClient::connect(format!("http://{}", self.api))
            .await
            .unwrap()
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
