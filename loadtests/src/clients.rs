//! The load's targets and virtual clients: where requests go, and clients at world cities, each
//! with a carrier and its own session cookie from a RegisterClient call. For the CAMARA
//! discovery calls each virtual client is also a device the network knows: an IPv4 address
//! (or a phone number) that the operator feed (`dme::camara::feed`) places at the client's
//! location.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use dme_api::proto::{FindCloudletRequest, Loc, RegisterClientRequest};
use edge_model::AppKey;
use edgeplane_benches::World;
use geodata::LatLon;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::callers;

/// Where the load goes.
pub struct Target {
    pub grpc: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub floor_grpc: Option<SocketAddr>,
    pub floor_http: Option<SocketAddr>,
    pub app: AppKey,
    pub carriers: Vec<String>,
    /// In-process servers: stops them when dropped (`None` for an external DME).
    pub stop: Option<tokio::sync::watch::Sender<bool>>,
    /// CAMARA access tokens to send (none: the CAMARA scenarios cannot run).
    pub camara_tokens: Vec<String>,
    /// The in-process DME's device feed, removed when dropped.
    pub feed_file: Option<tempfile::TempPath>,
}

pub fn register_request(app: &AppKey) -> RegisterClientRequest {
    RegisterClientRequest {
        org_name: app.organization.clone(),
        app_name: app.name.clone(),
        app_vers: app.version.clone(),
        ..Default::default()
    }
}

pub fn find_request(cookie: String, carrier: &str, lat: f64, lon: f64) -> FindCloudletRequest {
    FindCloudletRequest {
        session_cookie: cookie,
        carrier_name: carrier.into(),
        gps_location: Some(Loc {
            latitude: lat,
            longitude: lon,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The virtual clients' carriers and locations (at least one client), drawn from `seed`.
pub fn people(
    carriers: &[String],
    world: &World,
    clients: usize,
    seed: u64,
) -> Vec<(String, LatLon)> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..clients.max(1))
        .map(|_| {
            let carrier = carriers[rng.random_range(0..carriers.len())].clone();
            (carrier, world.client_point(&mut rng))
        })
        .collect()
}

/// How a CAMARA request names the virtual client's device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CamaraDevice {
    /// `ipv4Address` {publicAddress, publicPort}: one address per client, 10.0.0.1 upwards.
    Ipv4,
    /// `phoneNumber`: one number per client, +491500000000 upwards.
    Phone,
}

/// The public address of virtual client `i` (10.0.0.1, 10.0.0.2, ...: up to 16M clients).
pub fn device_ipv4(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + 1 + (i as u32 % 0x00ff_fffe))
}

/// The phone number of virtual client `i`.
pub fn device_phone(i: usize) -> String {
    format!("+4915{:09}", i % 1_000_000_000)
}

/// The radius the feed gives each client's location, metres.
pub const FEED_RADIUS_M: u32 = 1000;

/// The operator feed placing each virtual client's device at the client's location: one `/32`
/// (or phone) entry per client, in `dme::camara::feed`'s format.
pub fn feed_text(people: &[(String, LatLon)], device: CamaraDevice) -> String {
    let mut s = String::from("# dme-load: one entry per virtual client\n");
    for (i, (_, at)) in people.iter().enumerate() {
        let _ = match device {
            CamaraDevice::Ipv4 => writeln!(
                s,
                "ip {}/32 {:.6} {:.6} {FEED_RADIUS_M}",
                device_ipv4(i),
                at.lat(),
                at.lon()
            ),
            CamaraDevice::Phone => writeln!(
                s,
                "phone {} {:.6} {:.6} {FEED_RADIUS_M}",
                device_phone(i),
                at.lat(),
                at.lon()
            ),
        };
    }
    s
}

/// The CAMARA `device` object of virtual client `i`.
pub fn device_json(i: usize, device: CamaraDevice) -> serde_json::Value {
    match device {
        CamaraDevice::Ipv4 => serde_json::json!({
            "ipv4Address": {"publicAddress": device_ipv4(i).to_string(), "publicPort": 5000}
        }),
        CamaraDevice::Phone => serde_json::json!({ "phoneNumber": device_phone(i) }),
    }
}

/// Request bodies, one per virtual client: Simple Edge Discovery's (`app_id` None) or
/// Application Endpoint Discovery's for the app `app_id` (its CAMARA id).
pub fn camara_bodies(
    clients: usize,
    device: CamaraDevice,
    app_id: Option<&str>,
) -> anyhow::Result<Vec<Bytes>> {
    (0..clients.max(1))
        .map(|i| {
            let mut body = serde_json::json!({ "device": device_json(i, device) });
            if let Some(id) = app_id {
                body["appId"] = serde_json::json!(id);
            }
            Ok(Bytes::from(serde_json::to_vec(&body)?))
        })
        .collect()
}

/// Registers every virtual client of `people` (over gRPC if there is a gRPC target, else REST)
/// and returns their FindCloudlet requests.
pub async fn virtual_clients(
    target: &Target,
    people: &[(String, LatLon)],
) -> anyhow::Result<Vec<FindCloudletRequest>> {
    let reg = register_request(&target.app);
    let chunk = people.len().div_ceil(64);
    let mut tasks = Vec::new();
    for part in people.chunks(chunk) {
        let part = part.to_vec();
        let reg = reg.clone();
        let grpc = match target.grpc {
            Some(a) => Some(callers::channel(a).await?),
            None => None,
        };
        let http = target.http;
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(part.len());
            for (carrier, at) in part {
                let cookie = match (&grpc, http) {
                    (Some(ch), _) => {
                        let mut c =
                            dme_api::proto::match_engine_api_client::MatchEngineApiClient::new(
                                ch.clone(),
                            );
                        c.register_client(reg.clone())
                            .await?
                            .into_inner()
                            .session_cookie
                    }
                    (None, Some(addr)) => register_rest(addr, &reg).await?,
                    (None, None) => anyhow::bail!("no target"),
                };
                out.push(find_request(cookie, &carrier, at.lat(), at.lon()));
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::with_capacity(people.len());
    for t in tasks {
        all.extend(t.await??);
    }
    anyhow::ensure!(
        all.iter().all(|r| !r.session_cookie.is_empty()),
        "a registration returned no cookie"
    );
    Ok(all)
}

async fn register_rest(addr: SocketAddr, reg: &RegisterClientRequest) -> anyhow::Result<String> {
    use http_body_util::{BodyExt, Full};
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let req = http::Request::post("/v1/registerclient")
        .header(http::header::HOST, addr.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(reg)?)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "RegisterClient over REST: HTTP {status}"
    );
    let reply: dme_api::proto::RegisterClientReply = serde_json::from_slice(&body)?;
    Ok(reply.session_cookie)
}
