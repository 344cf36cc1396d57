//! The transport floor of an edge-events stream: `StreamEdgeEvent` on the same server stack as
//! the DME's (tonic over hyper's HTTP/2, TCP_NODELAY, HTTP/2 keep-alive, prost coding with
//! 512-byte buffers, one task per stream writing through a bounded channel), answered with no
//! state: INIT gets INIT, latency samples get an empty EVENT_LATENCY_PROCESSED, everything else
//! nothing, TERMINATE ends the stream. Its outbox holds boxed events (as the DME's does): a tokio
//! channel allocates its first block of 32 slots up front, so slots of whole events would cost
//! some 13 KiB per stream by themselves. `edge-load --floor` runs it as a child process (itself,
//! `--serve-floor`) and opens as many streams on it as on the DME: the memory an open stream
//! costs before the DME keeps anything for it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use dme_api::proto::client_edge_event::ClientEventType as In;
use dme_api::proto::server_edge_event::ServerEventType as Out;
use dme_api::proto::{ClientEdgeEvent, ServerEdgeEvent};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tonic::codec::{BufferSettings, Codec};
use tonic::codegen::tokio_stream::Stream;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

/// Serves the floor on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(30)))
        .add_routes(tonic::service::Routes::new(FloorService))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

#[derive(Clone)]
struct FloorService;

impl NamedService for FloorService {
    const NAME: &'static str = "distributed_match_engine.MatchEngineApi";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<B> tonic::codegen::Service<http::Request<B>> for FloorService
where
    B: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(SmallCodec);
            Ok(grpc.streaming(Method, req).await)
        })
    }
}

struct Method;

impl tonic::server::StreamingService<ClientEdgeEvent> for Method {
    type Response = ServerEdgeEvent;
    type ResponseStream = Outbox;
    type Future = BoxFuture<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, req: Request<Streaming<ClientEdgeEvent>>) -> Self::Future {
        Box::pin(async move {
            let mut inbound = req.into_inner();
            match inbound.message().await? {
                Some(m) if m.event_type == In::EventInitConnection as i32 => {}
                _ => return Err(Status::invalid_argument("first message must be INIT")),
            }
            let (tx, rx) = mpsc::channel(33);
            let _ = tx.try_send(event(Out::EventInitConnection));
            tokio::spawn(async move {
                while let Ok(Some(m)) = inbound.message().await {
                    match In::try_from(m.event_type) {
                        Ok(In::EventTerminateConnection) => break,
                        Ok(In::EventLatencySamples)
                            if tx.try_send(event(Out::EventLatencyProcessed)).is_err() =>
                        {
                            break;
                        }
                        _ => {}
                    }
                }
            });
            Ok(Response::new(Outbox(rx)))
        })
    }
}

/// A stream's events, as the transport reads them.
pub struct Outbox(mpsc::Receiver<Box<ServerEdgeEvent>>);

impl Stream for Outbox {
    type Item = Result<ServerEdgeEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|e| e.map(|e| Ok(*e)))
    }
}

fn event(kind: Out) -> Box<ServerEdgeEvent> {
    Box::new(ServerEdgeEvent {
        event_type: kind as i32,
        ..Default::default()
    })
}

/// Prost coding with buffers that start at 512 bytes (as the DME's edge-events route).
#[derive(Clone, Copy, Default)]
struct SmallCodec;

fn small_buffers() -> BufferSettings {
    BufferSettings::new(512, 32 * 1024)
}

impl Codec for SmallCodec {
    type Encode = ServerEdgeEvent;
    type Decode = ClientEdgeEvent;
    type Encoder = <ProstCodec<ServerEdgeEvent, ClientEdgeEvent> as Codec>::Encoder;
    type Decoder = <ProstCodec<ServerEdgeEvent, ClientEdgeEvent> as Codec>::Decoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<ServerEdgeEvent, ClientEdgeEvent>::raw_encoder(small_buffers())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<ServerEdgeEvent, ClientEdgeEvent>::raw_decoder(small_buffers())
    }
}
