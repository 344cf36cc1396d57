//! The transport floor: a gRPC service and a REST route that take FindCloudlet's request and
//! answer a constant FindCloudlet reply (captured from the real DME, so it has the same size),
//! served the way the DME serves (tonic with `TCP_NODELAY`, axum with connect info and
//! `TCP_NODELAY`, the same body limits). The request is decoded, the reply is encoded, nothing
//! else happens: FindCloudlet's throughput divided by this one's is what the DME's own work
//! costs.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use dme_api::proto::{FindCloudletReply, FindCloudletRequest};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Status};

/// Generated client and server of `floor.Floor`.
pub mod proto {
    #![allow(clippy::all, unused_qualifications, rust_2018_idioms)]
    tonic::include_proto!("floor");
}

/// The floor's gRPC handler: returns a clone of a fixed reply.
#[derive(Clone)]
struct Floor(Arc<FindCloudletReply>);

#[tonic::async_trait]
impl proto::floor_server::Floor for Floor {
    async fn find_cloudlet(
        &self,
        req: Request<FindCloudletRequest>,
    ) -> Result<tonic::Response<FindCloudletReply>, Status> {
        // Touch the request as the DME does (peer address, decoded message).
        let _peer = req.remote_addr();
        std::hint::black_box(req.get_ref());
        Ok(tonic::Response::new((*self.0).clone()))
    }
}

/// Accepted gRPC connections with `TCP_NODELAY` set. (`Server::tcp_nodelay` only applies to
/// listeners tonic binds itself; with `serve_with_incoming*` the incoming stream must set it.)
pub fn nodelay_incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Serves the gRPC floor on `listener` until `shutdown`.
pub async fn serve_grpc(
    listener: TcpListener,
    reply: Arc<FindCloudletReply>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let svc = proto::floor_server::FloorServer::new(Floor(reply))
        .max_decoding_message_size(dme::grpc::MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(svc)
        .serve_with_incoming_shutdown(nodelay_incoming(listener), shutdown)
        .await
}

/// Serves the DME the way `dme::server::run` does (the same gRPC routes and REST router, the
/// same limits), except that accepted gRPC sockets get `TCP_NODELAY`, which `run` (as of this
/// writing) does not set: its `tcp_nodelay(true)` is ignored with `serve_with_incoming_shutdown`,
/// and Nagle's algorithm against delayed ACKs then holds each reply for about 40 ms.
pub async fn serve_dme(
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    dme: Arc<dme::Dme>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let until = move || {
        let mut rx = shutdown.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let routes = dme::grpc::routes(dme.clone()).await?;
    let grpc = tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(nodelay_incoming(grpc_listener), until());
    let app = dme::rest::router(dme).into_make_service_with_connect_info::<SocketAddr>();
    let http_listener = http_listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let http = axum::serve(http_listener, app).with_graceful_shutdown(until());
    let (g, h) = tokio::join!(grpc, http);
    g?;
    h?;
    Ok(())
}

/// Serves the REST floor (`POST /v1/findcloudlet`) on `listener` until `shutdown`.
pub async fn serve_rest(
    listener: TcpListener,
    reply: Arc<FindCloudletReply>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route(
            "/v1/findcloudlet",
            post(
                move |ConnectInfo(_peer): ConnectInfo<SocketAddr>, body: Bytes| async move {
                    rest_floor(&body, &reply)
                },
            ),
        )
        .layer(DefaultBodyLimit::max(dme::rest::MAX_BODY_BYTES));
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Decodes the JSON request and encodes the constant reply, as the DME's REST front end would.
fn rest_floor(body: &[u8], reply: &FindCloudletReply) -> Response {
    if let Err(e) = serde_json::from_slice::<FindCloudletRequest>(body) {
        return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
    }
    match serde_json::to_vec(reply) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
