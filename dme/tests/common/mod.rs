//! Shared harness: a DME serving a fixture region on 127.0.0.1 ports chosen by the OS, gRPC
//! clients for it, and a tiny REST client.
#![allow(dead_code)]

pub mod edge_py;
pub mod h3;

use std::net::SocketAddr;
use std::sync::Arc;

use dme::cookie::KeyRing;
use dme::fixture::{self, Builder};
use dme::proto::{self, match_engine_api_client::MatchEngineApiClient};
use dme::{Dme, DmeConfig, Tables};
use edge_model::{AppKey, NetworkLocation};
use geodata::LatLon;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// A running DME; dropping it shuts the server down.
pub struct Server {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub dme: Arc<Dme>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A fixed signing key so tests can forge and expire cookies deliberately.
pub fn keys() -> KeyRing {
    KeyRing::new(vec![("k1".into(), vec![7u8; 64])]).unwrap()
}

pub fn platform_key() -> AppKey {
    AppKey {
        organization: "platos".into(),
        name: "PlatosEnablingLayer".into(),
        version: "1.0".into(),
    }
}

/// The standard test region: telekom sites in Berlin and Munich, orange in Paris, an aws site in
/// Frankfurt, vodafone in Hamburg allied with telekom; network location fixed at Berlin.
pub fn region() -> Builder {
    let k = fixture::app_key();
    let mut app = fixture::app(k.clone());
    app.official_fqdn = vec!["app.devorg.example.com".into()];
    app.android_package_name = "com.devorg.app".into();
    let mut platform = fixture::app(platform_key());
    platform.platform_app = true;
    Builder::new()
        .settings(|s| {
            s.network_location = NetworkLocation::Static(LatLon::new(52.52, 13.405).unwrap())
        })
        .operator_code("26201", "telekom")
        .app(app)
        .app(platform)
        .site(&k, "telekom", "berlin", 52.52, 13.405)
        .site(&k, "telekom", "munich", 48.1351, 11.582)
        .site(&k, "orange", "paris", 48.8566, 2.3522)
        .site(&k, "aws", "frankfurt", 50.1109, 8.6821)
        .site(&k, "vodafone", "hamburg", 53.5511, 9.9937)
        .with_cloudlet(|c| c.alliance_orgs = vec!["telekom".into()])
}

pub async fn start(b: Builder) -> Server {
    start_with(b, DmeConfig::default()).await
}

pub async fn start_with(b: Builder, config: DmeConfig) -> Server {
    let tables = Tables::from_deployment(&b.build(), 1).expect("fixture region builds");
    start_dme(Dme::new(tables, keys(), config, None)).await
}

pub async fn start_dme(dme: Dme) -> Server {
    let dme = Arc::new(dme);
    let grpc_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (grpc, http) = (grpc_l.local_addr().unwrap(), http_l.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(dme::server::run(
        dme::server::Listeners::plaintext(grpc_l, http_l),
        dme.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    Server {
        grpc,
        http,
        dme,
        _stop: tx,
    }
}

impl Server {
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> MatchEngineApiClient<Channel> {
        MatchEngineApiClient::new(self.channel().await)
    }

    /// Registers `app` and returns the session cookie.
    pub async fn register(&self, app: &AppKey) -> String {
        let reply = self
            .client()
            .await
            .register_client(register_request(app))
            .await
            .expect("register")
            .into_inner();
        reply.session_cookie
    }

    /// POSTs JSON to the REST listener; returns the status and the parsed body.
    pub async fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
        let req = http::Request::post(format!("http://{}{}", self.http, path))
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(body.to_string())))
            .unwrap();
        let resp = client.request(req).await.expect("REST request");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }
}

pub fn register_request(app: &AppKey) -> proto::RegisterClientRequest {
    proto::RegisterClientRequest {
        org_name: app.organization.clone(),
        app_name: app.name.clone(),
        app_vers: app.version.clone(),
        ..Default::default()
    }
}

pub fn loc(lat: f64, lon: f64) -> Option<proto::Loc> {
    Some(proto::Loc {
        latitude: lat,
        longitude: lon,
        ..Default::default()
    })
}

pub fn find_request(cookie: &str, carrier: &str, lat: f64, lon: f64) -> proto::FindCloudletRequest {
    proto::FindCloudletRequest {
        session_cookie: cookie.into(),
        carrier_name: carrier.into(),
        gps_location: loc(lat, lon),
        ..Default::default()
    }
}
