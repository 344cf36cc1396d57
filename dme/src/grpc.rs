//! gRPC front end: the same RPCs served under MobiledgeX's single `MatchEngineApi` service and
//! under EdgeXR's split service names (`Session`, `Location`, `PlatformOS`, `QualityOfService`,
//! `QosPositionKpi`), plus `grpc.health.v1` and server reflection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::api_stats::Method;
use crate::proto::*;
use crate::service::{Ctx, Dme};

/// Largest accepted request message; DME requests are a few hundred bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The descriptor set of the DME protos, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = crate::proto::FILE_DESCRIPTOR_SET;

/// The transport handle shared by every service: cheap to clone.
#[derive(Clone)]
pub struct Grpc(pub Arc<Dme>);

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The client's address: tonic's own for plaintext, the TLS accept loop's otherwise.
fn ctx<T>(req: &Request<T>) -> Ctx {
    Ctx::now(edge_tls::serve::remote_addr(req).map(|a| a.ip()))
}

/// Runs one unary RPC: decode context, call the engine, map the error.
macro_rules! unary {
    ($self:ident, $req:ident, $method:ident, $name:ident) => {{
        let ctx = ctx(&$req);
        $self.0.admit(ctx, Method::$name)?;
        $self
            .0
            .$method($req.get_ref(), ctx)
            .map(Response::new)
            .map_err(Status::from)
    }};
}

impl Grpc {
    fn unimplemented<T>(&self, cookie: &str, req: &Request<T>, method: Method) -> Status {
        self.0.unimplemented(method, cookie, ctx(req)).into()
    }
}

#[tonic::async_trait]
impl match_engine_api_server::MatchEngineApi for Grpc {
    type GetQosPositionKpiStream = BoxStream<QosPositionKpiReply>;
    type StreamEdgeEventStream = BoxStream<ServerEdgeEvent>;

    async fn register_client(
        &self,
        req: Request<RegisterClientRequest>,
    ) -> Result<Response<RegisterClientReply>, Status> {
        unary!(self, req, register_client, RegisterClient)
    }
    async fn find_cloudlet(
        &self,
        req: Request<FindCloudletRequest>,
    ) -> Result<Response<FindCloudletReply>, Status> {
        unary!(self, req, find_cloudlet, FindCloudlet)
    }
    async fn platform_find_cloudlet(
        &self,
        req: Request<PlatformFindCloudletRequest>,
    ) -> Result<Response<FindCloudletReply>, Status> {
        unary!(self, req, platform_find_cloudlet, PlatformFindCloudlet)
    }
    async fn qos_priority_session_create(
        &self,
        req: Request<QosPrioritySessionCreateRequest>,
    ) -> Result<Response<QosPrioritySessionReply>, Status> {
        Err(self.unimplemented(
            &req.get_ref().session_cookie,
            &req,
            Method::QosPrioritySessionCreate,
        ))
    }
    async fn qos_priority_session_delete(
        &self,
        req: Request<QosPrioritySessionDeleteRequest>,
    ) -> Result<Response<QosPrioritySessionDeleteReply>, Status> {
        Err(self.unimplemented(
            &req.get_ref().session_cookie,
            &req,
            Method::QosPrioritySessionDelete,
        ))
    }
    async fn verify_location(
        &self,
        req: Request<VerifyLocationRequest>,
    ) -> Result<Response<VerifyLocationReply>, Status> {
        unary!(self, req, verify_location, VerifyLocation)
    }
    async fn get_location(
        &self,
        req: Request<GetLocationRequest>,
    ) -> Result<Response<GetLocationReply>, Status> {
        unary!(self, req, get_location, GetLocation)
    }
    async fn add_user_to_group(
        &self,
        req: Request<DynamicLocGroupRequest>,
    ) -> Result<Response<DynamicLocGroupReply>, Status> {
        Err(self.unimplemented(&req.get_ref().session_cookie, &req, Method::AddUserToGroup))
    }
    async fn get_app_inst_list(
        &self,
        req: Request<AppInstListRequest>,
    ) -> Result<Response<AppInstListReply>, Status> {
        unary!(self, req, get_app_inst_list, GetAppInstList)
    }
    async fn get_fqdn_list(
        &self,
        req: Request<FqdnListRequest>,
    ) -> Result<Response<FqdnListReply>, Status> {
        unary!(self, req, get_fqdn_list, GetFqdnList)
    }
    async fn get_app_official_fqdn(
        &self,
        req: Request<AppOfficialFqdnRequest>,
    ) -> Result<Response<AppOfficialFqdnReply>, Status> {
        unary!(self, req, get_app_official_fqdn, GetAppOfficialFqdn)
    }
    async fn get_qos_position_kpi(
        &self,
        req: Request<QosPositionRequest>,
    ) -> Result<Response<Self::GetQosPositionKpiStream>, Status> {
        Err(self.unimplemented(
            &req.get_ref().session_cookie,
            &req,
            Method::GetQosPositionKpi,
        ))
    }
    /// Served by [`MatchEngine`]'s own route (small stream buffers); this is the same stream
    /// for anyone serving the generated service directly.
    async fn stream_edge_event(
        &self,
        req: Request<Streaming<ClientEdgeEvent>>,
    ) -> Result<Response<Self::StreamEdgeEventStream>, Status> {
        let r = crate::edge_stream::open(self.0.clone(), req).await?;
        Ok(r.map(|o| Box::pin(o) as Self::StreamEdgeEventStream))
    }
}

#[tonic::async_trait]
impl session_server::Session for Grpc {
    async fn register_client(
        &self,
        req: Request<RegisterClientRequest>,
    ) -> Result<Response<RegisterClientReply>, Status> {
        unary!(self, req, register_client, RegisterClient)
    }
}

#[tonic::async_trait]
impl location_server::Location for Grpc {
    async fn verify_location(
        &self,
        req: Request<VerifyLocationRequest>,
    ) -> Result<Response<VerifyLocationReply>, Status> {
        unary!(self, req, verify_location, VerifyLocation)
    }
    async fn get_location(
        &self,
        req: Request<GetLocationRequest>,
    ) -> Result<Response<GetLocationReply>, Status> {
        unary!(self, req, get_location, GetLocation)
    }
}

#[tonic::async_trait]
impl platform_os_server::PlatformOs for Grpc {
    async fn platform_find_cloudlet(
        &self,
        req: Request<PlatformFindCloudletRequest>,
    ) -> Result<Response<FindCloudletReply>, Status> {
        unary!(self, req, platform_find_cloudlet, PlatformFindCloudlet)
    }
    async fn get_fqdn_list(
        &self,
        req: Request<FqdnListRequest>,
    ) -> Result<Response<FqdnListReply>, Status> {
        unary!(self, req, get_fqdn_list, GetFqdnList)
    }
}

#[tonic::async_trait]
impl quality_of_service_server::QualityOfService for Grpc {
    async fn qos_priority_session_create(
        &self,
        req: Request<QosPrioritySessionCreateRequest>,
    ) -> Result<Response<QosPrioritySessionReply>, Status> {
        Err(self.unimplemented(
            &req.get_ref().session_cookie,
            &req,
            Method::QosPrioritySessionCreate,
        ))
    }
    async fn qos_priority_session_delete(
        &self,
        req: Request<QosPrioritySessionDeleteRequest>,
    ) -> Result<Response<QosPrioritySessionDeleteReply>, Status> {
        Err(self.unimplemented(
            &req.get_ref().session_cookie,
            &req,
            Method::QosPrioritySessionDelete,
        ))
    }
}

#[tonic::async_trait]
impl qos_position_kpi_server::QosPositionKpi for Grpc {
    type GetQosPositionKpiStream = BoxStream<QosPositionKpiReply>;
    async fn get_qos_position_kpi(
        &self,
        req: Request<QosPositionRequest>,
    ) -> Result<Response<Self::GetQosPositionKpiStream>, Status> {
        Err(self.unimplemented(
            &req.get_ref().session_cookie,
            &req,
            Method::GetQosPositionKpi,
        ))
    }
}

/// Every DME service name, for health reporting.
pub const SERVICE_NAMES: [&str; 6] = [
    "distributed_match_engine.MatchEngineApi",
    "distributed_match_engine.Session",
    "distributed_match_engine.Location",
    "distributed_match_engine.PlatformOS",
    "distributed_match_engine.QualityOfService",
    "distributed_match_engine.QosPositionKpi",
];

/// Builds the router with every service, health and reflection.
pub async fn routes(
    dme: Arc<Dme>,
) -> Result<tonic::service::Routes, tonic_reflection::server::Error> {
    let g = Grpc(dme);
    let (health, health_svc) = tonic_health::server::health_reporter();
    for name in SERVICE_NAMES {
        health
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1()?;
    macro_rules! svc {
        ($server:path) => {
            <$server>::new(g.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
        };
    }
    let mut routes = tonic::service::Routes::new(health_svc);
    routes = routes
        .add_service(reflection)
        .add_service(MatchEngine {
            inner: svc!(match_engine_api_server::MatchEngineApiServer<Grpc>),
            dme: g.0.clone(),
        })
        .add_service(svc!(session_server::SessionServer<Grpc>))
        .add_service(svc!(location_server::LocationServer<Grpc>))
        .add_service(svc!(platform_os_server::PlatformOsServer<Grpc>))
        .add_service(svc!(
            quality_of_service_server::QualityOfServiceServer<Grpc>
        ))
        .add_service(svc!(qos_position_kpi_server::QosPositionKpiServer<Grpc>));
    Ok(routes)
}

/// Largest accepted edge-events client message: a LATENCY_SAMPLES event may carry some 10 000
/// samples (about 110 kB without timestamps, 300 kB with).
pub const MAX_STREAM_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Path of the edge-events stream (MobiledgeX and EdgeXR both serve it under `MatchEngineApi`).
const STREAM_EDGE_EVENT: &str = "/distributed_match_engine.MatchEngineApi/StreamEdgeEvent";

/// `MatchEngineApi` with `StreamEdgeEvent` on a route of its own, whose codec starts each
/// stream with small buffers: tonic's default allocates 8 KiB for decoding and 8 KiB for
/// encoding per stream up front, several times what an idle stream needs (buffers grow on
/// demand for a big message).
#[derive(Clone)]
pub struct MatchEngine {
    inner: match_engine_api_server::MatchEngineApiServer<Grpc>,
    dme: Arc<Dme>,
}

impl tonic::server::NamedService for MatchEngine {
    const NAME: &'static str = "distributed_match_engine.MatchEngineApi";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<B> tower::Service<http::Request<B>> for MatchEngine
where
    B: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != STREAM_EDGE_EVENT {
            return Box::pin(self.inner.call(req));
        }
        let dme = self.dme.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(SmallCodec)
                .apply_max_message_size_config(Some(MAX_STREAM_MESSAGE_BYTES), None);
            Ok(grpc.streaming(EdgeEventsMethod(dme), req).await)
        })
    }
}

struct EdgeEventsMethod(Arc<Dme>);

impl tonic::server::StreamingService<ClientEdgeEvent> for EdgeEventsMethod {
    type Response = ServerEdgeEvent;
    type ResponseStream = crate::edge_events::Outbox;
    type Future = BoxFuture<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, req: Request<Streaming<ClientEdgeEvent>>) -> Self::Future {
        Box::pin(crate::edge_stream::open(self.0.clone(), req))
    }
}

/// Prost coding with buffers that start at 512 bytes.
#[derive(Clone, Copy, Default)]
struct SmallCodec;

fn small_buffers() -> tonic::codec::BufferSettings {
    tonic::codec::BufferSettings::new(512, 32 * 1024)
}

impl tonic::codec::Codec for SmallCodec {
    type Encode = ServerEdgeEvent;
    type Decode = ClientEdgeEvent;
    type Encoder =
        <tonic_prost::ProstCodec<ServerEdgeEvent, ClientEdgeEvent> as tonic::codec::Codec>::Encoder;
    type Decoder =
        <tonic_prost::ProstCodec<ServerEdgeEvent, ClientEdgeEvent> as tonic::codec::Codec>::Decoder;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstCodec::<ServerEdgeEvent, ClientEdgeEvent>::raw_encoder(small_buffers())
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstCodec::<ServerEdgeEvent, ClientEdgeEvent>::raw_decoder(small_buffers())
    }
}
