//! Edge events through the generated Rust client over real sockets: the handshake, a move
//! that is announced once, and a push driven through the mirror (the controller's path).
//! The wire-independent checks (Python grpcio) are in `edge_events.rs`.

mod common;

use std::time::Duration;

use common::*;
use dme::fixture;
use dme::mirror::Mirror;
use dme::proto::client_edge_event::ClientEventType as In;
use dme::proto::server_edge_event::ServerEventType as Out;
use dme::proto::{self, ClientEdgeEvent, ServerEdgeEvent};
use dme::{Dme, DmeConfig};
use edge_model::{HealthCheck, Object};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

struct Stream {
    tx: mpsc::Sender<ClientEdgeEvent>,
    rx: Streaming<ServerEdgeEvent>,
}

impl Stream {
    async fn next(&mut self) -> ServerEdgeEvent {
        tokio::time::timeout(Duration::from_secs(5), self.rx.message())
            .await
            .expect("an event within 5 s")
            .expect("stream open")
            .expect("not ended")
    }

    async fn quiet(&mut self) {
        let r = tokio::time::timeout(Duration::from_millis(300), self.rx.message()).await;
        assert!(r.is_err(), "expected nothing, got {r:?}");
    }

    async fn location(&self, lat: f64, lon: f64) {
        self.tx
            .send(ClientEdgeEvent {
                event_type: In::EventLocationUpdate as i32,
                gps_location: loc(lat, lon),
                ..Default::default()
            })
            .await
            .unwrap();
    }
}

async fn open(s: &Server, lat: f64, lon: f64) -> Stream {
    let session = s.register(&fixture::app_key()).await;
    let mut c = s.client().await;
    let found = c
        .find_cloudlet(find_request(&session, "telekom", lat, lon))
        .await
        .unwrap()
        .into_inner();
    let (tx, rx) = mpsc::channel(8);
    tx.send(ClientEdgeEvent {
        event_type: In::EventInitConnection as i32,
        session_cookie: session,
        edge_events_cookie: found.edge_events_cookie,
        device_info_dynamic: Some(proto::DeviceInfoDynamic {
            carrier_name: "telekom".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let rx = c
        .stream_edge_event(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut st = Stream { tx, rx };
    assert_eq!(st.next().await.event_type, Out::EventInitConnection as i32);
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_is_announced_once_and_pushes_reach_only_their_streams() {
    let mut mirror = Mirror::from_deployment(&region().build());
    let tables = mirror.build(None, 1);
    let s = start_dme(Dme::new(tables, keys(), DmeConfig::default(), None)).await;

    let mut a = open(&s, 52.5, 13.4).await;
    let mut c = open(&s, 48.1, 11.6).await;
    // A moves near Munich: one update, then none for the next position nearby.
    a.location(48.14, 11.57).await;
    let e = a.next().await;
    assert_eq!(e.event_type, Out::EventCloudletUpdate as i32);
    let nc = e.new_cloudlet.unwrap();
    assert_eq!(nc.fqdn, "munich.munich-telekom.local.edge.example.net");
    assert!(!nc.edge_events_cookie.is_empty());
    a.location(48.15, 11.58).await;
    a.quiet().await;

    // Berlin fails: nobody is on it any more.
    let mut berlin = mirror
        .objects()
        .app_insts()
        .find(|i| i.key.name == "berlin")
        .cloned()
        .unwrap();
    berlin.health = HealthCheck::ServerFail;
    mirror.apply(Object::AppInst(berlin));
    s.dme.apply_mirror(&mut mirror, 2);
    a.quiet().await;
    c.quiet().await;
    // Munich fails: both streams on it hear of it, with somewhere else to go.
    let mut munich = mirror
        .objects()
        .app_insts()
        .find(|i| i.key.name == "munich")
        .cloned()
        .unwrap();
    munich.health = HealthCheck::ServerFail;
    mirror.apply(Object::AppInst(munich));
    s.dme.apply_mirror(&mut mirror, 3);
    for st in [&mut a, &mut c] {
        let e = st.next().await;
        assert_eq!(e.event_type, Out::EventAppinstHealth as i32);
        assert_eq!(e.health_check, proto::HealthCheck::ServerFail as i32);
        let nc = e.new_cloudlet.expect("another instance");
        assert_ne!(nc.fqdn, "munich.munich-telekom.local.edge.example.net");
    }
    assert_eq!(s.dme.edge_counters().open, 2);
    // TERMINATE ends the stream with OK.
    a.tx.send(ClientEdgeEvent {
        event_type: In::EventTerminateConnection as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), a.rx.message())
        .await
        .unwrap();
    assert!(matches!(end, Ok(None)), "{end:?}");
}
