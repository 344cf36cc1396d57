//! REST front end with grpc-gateway's conventions (POST `/v1/<rpc>`, JSON with proto field names,
//! enums by name, default values omitted, grpc-gateway's error body and HTTP status mapping),
//! served directly by the engine: no internal gRPC hop as upstream had.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::task::{Context, Poll};

use axum::http::Request;
use futures::future::Either;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use crate::error::ApiError;
use crate::proto;
use crate::service::{Ctx, Dme};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request body of at most [`MAX_BODY_BYTES`], read as axum's `Bytes` extractor reads it (no
/// extra buffering). A larger one is refused with grpc-gateway's error body like every other
/// error: HTTP 413, code `RESOURCE_EXHAUSTED` (what gRPC's status-code table gives for a request
/// larger than the server's limit), instead of axum's plain-text rejection.
struct Body(Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e| body_rejection(&e))
    }
}

fn body_rejection(e: &BytesRejection) -> Response {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let message = format!("request body too large: the limit is {MAX_BODY_BYTES} bytes");
        let error = ApiError::new(tonic::Code::ResourceExhausted, message);
        return (StatusCode::PAYLOAD_TOO_LARGE, error).into_response();
    }
    ApiError::invalid(format!("cannot read the request body: {}", e.body_text())).into_response()
}

type Rpc<Req, Rep> = fn(&Dme, &Req, Ctx) -> Result<Rep, ApiError>;

/// Decodes the JSON body, runs the RPC, encodes the reply.
fn call<Req, Rep>(
    dme: &Dme,
    peer: SocketAddr,
    body: &[u8],
    name: &str,
    rpc: Rpc<Req, Rep>,
) -> Response
where
    Req: DeserializeOwned,
    Rep: Serialize,
{
    let ctx = Ctx::now(Some(peer.ip()));
    if let Err(e) = dme.admit(ctx, name) {
        return e.into_response();
    }
    let req: Req = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::invalid(format!("invalid JSON request body: {e}")).into_response();
        }
    };
    match rpc(dme, &req, ctx) {
        Ok(rep) => json(&rep),
        Err(e) => e.into_response(),
    }
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => ApiError::new(tonic::Code::Internal, e.to_string()).into_response(),
    }
}

/// Declares one POST route per RPC.
macro_rules! routes {
    ($router:ident, $($path:literal => $req:ty, $method:ident;)*) => {
        $(
            $router = $router.route(
                $path,
                post(|State(dme): State<Arc<Dme>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, Body(body): Body| async move {
                    call::<$req, _>(&dme, peer, &body, stringify!($method), Dme::$method)
                }),
            );
        )*
    };
}

/// RPCs this DME does not implement yet: the cookie is still checked first.
fn unimplemented(dme: &Dme, peer: SocketAddr, body: &[u8], what: &str) -> Response {
    #[derive(serde::Deserialize)]
    struct CookieOnly {
        #[serde(default)]
        session_cookie: String,
    }
    let cookie = serde_json::from_slice::<CookieOnly>(body)
        .map(|c| c.session_cookie)
        .unwrap_or_default();
    dme.unimplemented(&cookie, Ctx::now(Some(peer.ip())), what)
        .into_response()
}

/// The REST router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(dme: Arc<Dme>) -> Router {
    let mut router: Router<Arc<Dme>> = Router::new();
    routes!(router,
        "/v1/registerclient" => proto::RegisterClientRequest, register_client;
        "/v1/findcloudlet" => proto::FindCloudletRequest, find_cloudlet;
        "/v1/platformfindcloudlet" => proto::PlatformFindCloudletRequest, platform_find_cloudlet;
        "/v1/verifylocation" => proto::VerifyLocationRequest, verify_location;
        "/v1/getlocation" => proto::GetLocationRequest, get_location;
        "/v1/getappinstlist" => proto::AppInstListRequest, get_app_inst_list;
        "/v1/getfqdnlist" => proto::FqdnListRequest, get_fqdn_list;
        "/v1/getappofficialfqdn" => proto::AppOfficialFqdnRequest, get_app_official_fqdn;
    );
    for (path, what) in [
        ("/v1/qosprioritysessioncreate", "QosPrioritySessionCreate"),
        ("/v1/qosprioritysessiondelete", "QosPrioritySessionDelete"),
        ("/v1/getqospositionkpi", "GetQosPositionKpi"),
        ("/v1/addusertogroup", "AddUserToGroup"),
    ] {
        router = router.route(
            path,
            post(
                move |State(dme): State<Arc<Dme>>,
                      ConnectInfo(peer): ConnectInfo<SocketAddr>,
                      Body(body): Body| async move {
                    unimplemented(&dme, peer, &body, what)
                },
            ),
        );
    }
    router = router.route(
        "/v1/streamedgeevent",
        post(|| async { ApiError::unimplemented("StreamEdgeEvent over REST").into_response() }),
    );
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_headers([header::CONTENT_TYPE, header::ACCEPT])
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
        ]);
    router
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                ApiError::not_found("no such API path"),
            )
                .into_response()
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CorsIfOrigin(cors))
        .with_state(dme)
}

/// CORS for browsers: requests that carry `Origin` (every browser request, preflights included)
/// go through tower-http's CORS handling; the rest (SDKs, servers) skip it, so they do not pay
/// for the header checks and `Vary` headers meant for browsers (about 0.9 µs a request, a
/// twelfth of a REST FindCloudlet's server time in the load test).
#[derive(Clone)]
struct CorsIfOrigin(CorsLayer);

impl<S: Clone> Layer<S> for CorsIfOrigin {
    type Service = CorsIfOriginService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorsIfOriginService {
            cors: self.0.layer(inner.clone()),
            plain: inner,
        }
    }
}

#[derive(Clone)]
struct CorsIfOriginService<S> {
    plain: S,
    cors: Cors<S>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CorsIfOriginService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<<Cors<S> as Service<Request<ReqBody>>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Both wrap the same inner service; it must be ready whichever one is called.
        match self.plain.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.cors.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if req.headers().contains_key(header::ORIGIN) {
            Either::Left(self.cors.call(req))
        } else {
            Either::Right(self.plain.call(req))
        }
    }
}
