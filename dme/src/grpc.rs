//! gRPC front end: the same RPCs served under MobiledgeX's single `MatchEngineApi` service and
//! under EdgeXR's split service names (`Session`, `Location`, `PlatformOS`, `QualityOfService`,
//! `QosPositionKpi`), plus `grpc.health.v1` and server reflection.

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

fn ctx<T>(req: &Request<T>) -> Ctx {
    Ctx::now(req.remote_addr().map(|a| a.ip()))
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
    async fn stream_edge_event(
        &self,
        req: Request<Streaming<ClientEdgeEvent>>,
    ) -> Result<Response<Self::StreamEdgeEventStream>, Status> {
        self.0.count_refused(Method::StreamEdgeEvent, ctx(&req));
        Err(Status::unimplemented(
            "StreamEdgeEvent is not implemented by this DME",
        ))
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
        .add_service(svc!(match_engine_api_server::MatchEngineApiServer<Grpc>))
        .add_service(svc!(session_server::SessionServer<Grpc>))
        .add_service(svc!(location_server::LocationServer<Grpc>))
        .add_service(svc!(platform_os_server::PlatformOsServer<Grpc>))
        .add_service(svc!(
            quality_of_service_server::QualityOfServiceServer<Grpc>
        ))
        .add_service(svc!(qos_position_kpi_server::QosPositionKpiServer<Grpc>));
    Ok(routes)
}
