//! The load's targets and virtual clients: where requests go, and clients at world cities, each
//! with a carrier and its own session cookie from a RegisterClient call.

use std::net::SocketAddr;

use bytes::Bytes;
use dme_api::proto::{FindCloudletRequest, Loc, RegisterClientRequest};
use edge_model::AppKey;
use edgeplane_benches::World;
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

/// Registers every virtual client (over gRPC if there is a gRPC target, else REST) and returns
/// their FindCloudlet requests.
pub async fn virtual_clients(
    target: &Target,
    world: &World,
    clients: usize,
    seed: u64,
) -> anyhow::Result<Vec<FindCloudletRequest>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let people: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let carrier = target.carriers[rng.random_range(0..target.carriers.len())].clone();
            (carrier, world.client_point(&mut rng))
        })
        .collect();
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
