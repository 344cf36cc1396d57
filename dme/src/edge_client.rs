//! A minimal edge-events client over the generated gRPC client, for tests and load tests:
//! opens a stream with INIT and reads events with timeouts. (Wire compatibility is checked
//! with an independent stack, Python grpcio, in `dme/tests/edge_events`.)

use std::time::Duration;

use tokio::sync::mpsc;
use tonic::Streaming;

use crate::proto::client_edge_event::ClientEventType as In;
use crate::proto::match_engine_api_client::MatchEngineApiClient;
use crate::proto::server_edge_event::ServerEventType as Out;
use crate::proto::{ClientEdgeEvent, DeviceInfoDynamic, Loc, ServerEdgeEvent};

/// One open stream.
pub struct EdgeStream {
    pub tx: mpsc::Sender<ClientEdgeEvent>,
    pub rx: Streaming<ServerEdgeEvent>,
}

impl EdgeStream {
    /// Opens a stream with INIT and waits for the INIT reply (panics otherwise: test code).
    pub async fn open<T>(
        client: &mut MatchEngineApiClient<T>,
        session: &str,
        edge_cookie: &str,
        carrier: &str,
    ) -> Self
    where
        T: tonic::client::GrpcService<tonic::body::Body>,
        T::Error: Into<tonic::codegen::StdError>,
        T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
    {
        let (tx, rx) = mpsc::channel(8);
        let init = ClientEdgeEvent {
            event_type: In::EventInitConnection as i32,
            session_cookie: session.into(),
            edge_events_cookie: edge_cookie.into(),
            device_info_dynamic: Some(DeviceInfoDynamic {
                carrier_name: carrier.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        tx.send(init).await.expect("queue INIT");
        let rx = client
            .stream_edge_event(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("stream opens")
            .into_inner();
        let mut s = Self { tx, rx };
        let first = s.next().await;
        assert_eq!(
            first.event_type,
            Out::EventInitConnection as i32,
            "{first:?}"
        );
        s
    }

    /// The next event, within 10 s.
    pub async fn next(&mut self) -> ServerEdgeEvent {
        tokio::time::timeout(Duration::from_secs(10), self.rx.message())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .expect("not ended")
    }

    /// Asserts nothing arrives for `ms` milliseconds.
    pub async fn quiet(&mut self, ms: u64) {
        let r = tokio::time::timeout(Duration::from_millis(ms), self.rx.message()).await;
        assert!(r.is_err(), "expected nothing, got {r:?}");
    }

    pub async fn send(&self, event_type: In, at: Option<(f64, f64)>) {
        let e = ClientEdgeEvent {
            event_type: event_type as i32,
            gps_location: at.map(|(latitude, longitude)| Loc {
                latitude,
                longitude,
                ..Default::default()
            }),
            ..Default::default()
        };
        self.tx.send(e).await.expect("stream open");
    }
}
