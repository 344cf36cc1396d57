//! Edge events through the generated Rust client over real sockets: the handshake, a move
//! that is announced once, and a push driven through the mirror (the controller's path).
//! The wire-independent checks (Python grpcio) are in `edge_events.rs`.

mod common;

use std::time::Duration;

use common::*;
use dme::edge_client::EdgeStream;
use dme::fixture;
use dme::mirror::Mirror;
use dme::proto::client_edge_event::ClientEventType as In;
use dme::proto::server_edge_event::ServerEventType as Out;
use dme::proto::{self, ClientEdgeEvent};
use dme::{Dme, DmeConfig};
use edge_model::{HealthCheck, Object};

async fn open(s: &Server, lat: f64, lon: f64) -> EdgeStream {
    let session = s.register(&fixture::app_key()).await;
    let mut c = s.client().await;
    let found = c
        .find_cloudlet(find_request(&session, "telekom", lat, lon))
        .await
        .unwrap()
        .into_inner();
    EdgeStream::open(&mut c, &session, &found.edge_events_cookie, "telekom").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_is_announced_once_and_pushes_reach_only_their_streams() {
    let mut mirror = Mirror::from_deployment(&region().build());
    let tables = mirror.build(None, 1);
    let s = start_dme(Dme::new(tables, keys(), DmeConfig::default(), None)).await;

    let mut a = open(&s, 52.5, 13.4).await;
    let mut c = open(&s, 48.1, 11.6).await;
    // A moves near Munich: one update, then none for the next position nearby.
    a.send(In::EventLocationUpdate, Some((48.14, 11.57))).await;
    let e = a.next().await;
    assert_eq!(e.event_type, Out::EventCloudletUpdate as i32);
    let nc = e.new_cloudlet.unwrap();
    assert_eq!(nc.fqdn, "munich.munich-telekom.local.edge.example.net");
    assert!(!nc.edge_events_cookie.is_empty());
    a.send(In::EventLocationUpdate, Some((48.15, 11.58))).await;
    a.quiet(300).await;

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
    a.quiet(300).await;
    c.quiet(300).await;
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
