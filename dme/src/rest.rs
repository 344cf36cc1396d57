//! REST front end with grpc-gateway's conventions (POST `/v1/<rpc>`, JSON with proto field names,
//! enums by name, default values omitted, grpc-gateway's error body and HTTP status mapping),
//! served directly by the engine: no internal gRPC hop as upstream had. Also `GET /metrics`, the
//! API counters in Prometheus text format, never rate limited.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, State};
use axum::http::{HeaderValue, Method as HttpMethod, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::task::{Context, Poll};

use axum::http::Request;
use futures::future::Either;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use crate::api_stats::{self, Method};
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

/// Decodes the JSON body, runs the RPC, encodes the reply. A body that could not be read (too
/// large) or decoded counts as a refused request of the RPC.
fn call<Req, Rep>(
    dme: &Dme,
    peer: SocketAddr,
    body: Result<Body, Response>,
    method: Method,
    rpc: Rpc<Req, Rep>,
) -> Response
where
    Req: DeserializeOwned,
    Rep: Serialize,
{
    let ctx = Ctx::now(Some(peer.ip()));
    // A body too large is refused before the rate limit is consulted, as axum did when the
    // body was a plain extractor.
    let body = match body {
        Ok(Body(body)) => body,
        Err(rejection) => {
            dme.count_refused(method, ctx);
            return rejection;
        }
    };
    if let Err(e) = dme.admit(ctx, method) {
        return e.into_response();
    }
    let req: Req = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            dme.count_refused(method, ctx);
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
    ($router:ident, $($path:literal => $req:ty, $method:ident, $name:ident;)*) => {
        $(
            $router = $router.route(
                $path,
                post(|State(dme): State<Arc<Dme>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, body: Result<Body, Response>| async move {
                    call::<$req, _>(&dme, peer, body, Method::$name, Dme::$method)
                }),
            );
        )*
    };
}

/// RPCs this DME does not implement yet: the cookie is still checked first.
fn unimplemented(
    dme: &Dme,
    peer: SocketAddr,
    body: Result<Body, Response>,
    method: Method,
) -> Response {
    #[derive(serde::Deserialize)]
    struct CookieOnly {
        #[serde(default)]
        session_cookie: String,
    }
    let ctx = Ctx::now(Some(peer.ip()));
    let body = match body {
        Ok(Body(body)) => body,
        Err(rejection) => {
            dme.count_refused(method, ctx);
            return rejection;
        }
    };
    let cookie = serde_json::from_slice::<CookieOnly>(&body)
        .map(|c| c.session_cookie)
        .unwrap_or_default();
    dme.unimplemented(method, &cookie, ctx).into_response()
}

/// `GET /metrics`: the API counters for Prometheus (Shepherd scrapes them). Not rate limited,
/// so a busy or attacked DME still shows what is happening to it.
async fn metrics(State(dme): State<Arc<Dme>>) -> Response {
    match dme.metrics().await {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(api_stats::CONTENT_TYPE),
            )],
            text,
        )
            .into_response(),
        None => {
            ApiError::new(tonic::Code::Internal, "rendering the metrics failed").into_response()
        }
    }
}

/// The REST router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(dme: Arc<Dme>) -> Router {
    let mut router: Router<Arc<Dme>> = Router::new();
    routes!(router,
        "/v1/registerclient" => proto::RegisterClientRequest, register_client, RegisterClient;
        "/v1/findcloudlet" => proto::FindCloudletRequest, find_cloudlet, FindCloudlet;
        "/v1/platformfindcloudlet" => proto::PlatformFindCloudletRequest, platform_find_cloudlet, PlatformFindCloudlet;
        "/v1/verifylocation" => proto::VerifyLocationRequest, verify_location, VerifyLocation;
        "/v1/getlocation" => proto::GetLocationRequest, get_location, GetLocation;
        "/v1/getappinstlist" => proto::AppInstListRequest, get_app_inst_list, GetAppInstList;
        "/v1/getfqdnlist" => proto::FqdnListRequest, get_fqdn_list, GetFqdnList;
        "/v1/getappofficialfqdn" => proto::AppOfficialFqdnRequest, get_app_official_fqdn, GetAppOfficialFqdn;
    );
    for (path, method) in [
        (
            "/v1/qosprioritysessioncreate",
            Method::QosPrioritySessionCreate,
        ),
        (
            "/v1/qosprioritysessiondelete",
            Method::QosPrioritySessionDelete,
        ),
        ("/v1/getqospositionkpi", Method::GetQosPositionKpi),
        ("/v1/addusertogroup", Method::AddUserToGroup),
    ] {
        router = router.route(
            path,
            post(
                move |State(dme): State<Arc<Dme>>,
                      ConnectInfo(peer): ConnectInfo<SocketAddr>,
                      body: Result<Body, Response>| async move {
                    unimplemented(&dme, peer, body, method)
                },
            ),
        );
    }
    router = router.route(
        "/v1/streamedgeevent",
        post(
            |State(dme): State<Arc<Dme>>, ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                dme.count_refused(Method::StreamEdgeEvent, Ctx::now(Some(peer.ip())));
                ApiError::unimplemented("StreamEdgeEvent over REST").into_response()
            },
        ),
    );
    router = router.route("/metrics", get(metrics));
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_headers([header::CONTENT_TYPE, header::ACCEPT])
        .allow_methods([
            HttpMethod::GET,
            HttpMethod::HEAD,
            HttpMethod::POST,
            HttpMethod::PUT,
            HttpMethod::DELETE,
        ]);
    let camara = dme.camara().cloned();
    let router = router
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                ApiError::not_found("no such API path"),
            )
                .into_response()
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CorsIfOrigin(cors));
    match camara {
        Some(camara) => router
            .with_state(dme.clone())
            .merge(crate::camara_rest::router(dme, camara)),
        None => router.with_state(dme),
    }
}

/// `router` with `Alt-Svc: <alt_svc>` on every response: the HTTP/3 endpoint's advertisement.
pub fn advertise(router: Router, alt_svc: HeaderValue) -> Router {
    router.layer(axum::middleware::map_response(move |mut resp: Response| {
        let value = alt_svc.clone();
        async move {
            resp.headers_mut().insert(header::ALT_SVC, value);
            resp
        }
    }))
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
