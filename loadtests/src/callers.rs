//! The requests a load test sends: RegisterClient and FindCloudlet over gRPC (tonic clients on
//! shared HTTP/2 channels) and REST (one HTTP/1.1 keep-alive connection per caller, one request
//! in flight on it, as wrk does), FindCloudlet against the transport floor, and the CAMARA
//! discovery calls (Simple Edge Discovery, Application Endpoint Discovery) over the same REST
//! stack, with a bearer access token.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use dme_api::proto::find_cloudlet_reply::FindStatus;
use dme_api::proto::match_engine_api_client::MatchEngineApiClient;
use dme_api::proto::{FindCloudletRequest, RegisterClientRequest, ReplyStatus};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpStream;
use tonic::transport::Channel;

use crate::engine::Caller;
use crate::floor::proto::floor_client::FloorClient;

/// Opens a gRPC channel (one HTTP/2 connection) to `addr`.
pub async fn channel(addr: SocketAddr) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?)
}

fn grpc_error(s: &tonic::Status) -> String {
    format!("grpc {:?}", s.code())
}

/// Which server a gRPC FindCloudlet goes to.
#[derive(Clone)]
pub enum FindTarget {
    Dme(MatchEngineApiClient<Channel>),
    Floor(FloorClient<Channel>),
}

impl FindTarget {
    pub fn dme(ch: Channel) -> Self {
        Self::Dme(MatchEngineApiClient::new(ch))
    }

    pub fn floor(ch: Channel) -> Self {
        Self::Floor(FloorClient::new(ch))
    }
}

/// FindCloudlet over gRPC for virtual clients drawn at random from `reqs`.
pub struct GrpcFind {
    target: FindTarget,
    reqs: Arc<[FindCloudletRequest]>,
    rng: SmallRng,
}

impl GrpcFind {
    pub fn new(target: FindTarget, reqs: Arc<[FindCloudletRequest]>, seed: u64) -> Self {
        Self {
            target,
            reqs,
            rng: SmallRng::seed_from_u64(seed),
        }
    }
}

impl Caller for GrpcFind {
    async fn call(&mut self) -> Result<(), String> {
        let req = self.reqs[self.rng.random_range(0..self.reqs.len())].clone();
        let reply = match &mut self.target {
            FindTarget::Dme(c) => c.find_cloudlet(req).await,
            FindTarget::Floor(c) => c.find_cloudlet(req).await,
        }
        .map_err(|s| grpc_error(&s))?;
        if reply.get_ref().status == FindStatus::FindFound as i32 {
            Ok(())
        } else {
            Err(format!("reply status {}", reply.get_ref().status))
        }
    }
}

/// RegisterClient over gRPC (a new session cookie every time).
pub struct GrpcRegister {
    client: MatchEngineApiClient<Channel>,
    req: RegisterClientRequest,
}

impl GrpcRegister {
    pub fn new(ch: Channel, req: RegisterClientRequest) -> Self {
        Self {
            client: MatchEngineApiClient::new(ch),
            req,
        }
    }
}

impl Caller for GrpcRegister {
    async fn call(&mut self) -> Result<(), String> {
        let reply = self
            .client
            .register_client(self.req.clone())
            .await
            .map_err(|s| grpc_error(&s))?;
        if reply.get_ref().status == ReplyStatus::RsSuccess as i32 {
            Ok(())
        } else {
            Err(format!("reply status {}", reply.get_ref().status))
        }
    }
}

/// What a successful reply body must hold.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// Start with these bytes (pbjson writes fields in field order, so `status` is first in
    /// both RegisterClient's and FindCloudlet's replies; the CAMARA answers are structs
    /// written in the spec's member order).
    Prefix(&'static [u8]),
}

impl Expect {
    pub fn matches(self, body: &[u8]) -> bool {
        match self {
            Expect::Prefix(p) => body.starts_with(p),
        }
    }
}

/// One REST endpoint under load: a path, request bodies (one per virtual client), extra request
/// headers, `Authorization` values (one drawn per request, when there are any) and what a
/// successful reply body holds.
#[derive(Clone)]
pub struct RestCall {
    pub path: &'static str,
    pub bodies: Arc<[Bytes]>,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub auth: Arc<[http::HeaderValue]>,
    pub expect: Expect,
}

/// One HTTP/1.1 keep-alive connection carrying one request at a time.
pub struct Rest {
    addr: SocketAddr,
    host: String,
    call: RestCall,
    sender: Option<SendRequest<Full<Bytes>>>,
    rng: SmallRng,
}

impl Rest {
    pub fn new(addr: SocketAddr, call: RestCall, seed: u64) -> Self {
        Self {
            addr,
            host: addr.to_string(),
            call,
            sender: None,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {}", e.kind()))?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|_| "http handshake".to_string())?;
        tokio::spawn(conn);
        Ok(sender)
    }
}

impl Caller for Rest {
    async fn call(&mut self) -> Result<(), String> {
        let mut sender = match self.sender.take() {
            Some(s) => s,
            None => self.connect().await?,
        };
        sender
            .ready()
            .await
            .map_err(|_| "http connection closed".to_string())?;
        let body = self.call.bodies[self.rng.random_range(0..self.call.bodies.len())].clone();
        let mut req = http::Request::post(self.call.path)
            .header(http::header::HOST, &self.host)
            .header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in &self.call.headers {
            req = req.header(name, value);
        }
        match self.call.auth.len() {
            0 => {}
            1 => req = req.header(http::header::AUTHORIZATION, &self.call.auth[0]),
            n => {
                let v = &self.call.auth[self.rng.random_range(0..n)];
                req = req.header(http::header::AUTHORIZATION, v);
            }
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|_| "http send".to_string())?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|_| "http body".to_string())?
            .to_bytes();
        // Keep the connection only once the whole reply has been read.
        self.sender = Some(sender);
        if !status.is_success() {
            return Err(format!("http {}", status.as_u16()));
        }
        if self.call.expect.matches(&body) {
            Ok(())
        } else {
            Err("http 200 with unexpected body".into())
        }
    }
}

/// JSON prefix of a FindCloudlet reply that found an instance.
pub const FIND_FOUND_PREFIX: &[u8] = br#"{"status":"FIND_FOUND""#;
/// JSON prefix of a successful RegisterClient reply.
pub const RS_SUCCESS_PREFIX: &[u8] = br#"{"status":"RS_SUCCESS""#;
/// JSON prefix of a Simple Edge Discovery answer (a 200 that names a zone).
pub const SED_ZONE: &[u8] = br#"{"edgeCloudZoneId":""#;
/// JSON prefix of an Application Endpoint Discovery answer (a 200 with at least one endpoint).
pub const AED_ENDPOINTS: &[u8] = br#"{"applicationEndpoints":[{"#;
