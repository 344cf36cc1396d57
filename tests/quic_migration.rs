//! A client that changes its address mid-connection (Wi-Fi → cellular) keeps its HTTP/3
//! connection to the DME, with an edge-events stream open on it: directly, and through the
//! shared root LB in `quic` mode (it routes by the server id in the DME's connection ids). In
//! plain UDP mode the LB sends the migrated client's packets to the other DME, and the
//! connection is lost. Real sockets on 127.0.0.1; the LB and both DME endpoints in process.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use dataplane::{RouteTable, Server as Lb, ServerOptions};
use dme::cookie::KeyRing;
use dme::edge_client::EdgeStream;
use dme::fixture::{self, Builder};
use dme::h3::CidFactory;
use dme::h3_client::{H3Client, client_config, client_endpoint};
use dme::proto::client_edge_event::ClientEventType as In;
use dme::proto::match_engine_api_client::MatchEngineApiClient;
use dme::proto::server_edge_event::ServerEventType as Out;
use dme::proto::{FindCloudletRequest, Loc, RegisterClientRequest};
use dme::{Dme, DmeConfig, Tables};
use quic_lb::{CidConfig, QuicLbCidGenerator};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

const SERVER_IDS: [&str; 2] = ["0a01", "0a02"];

fn cids(server_id: &str) -> CidFactory {
    let cfg = CidConfig::new(1, 2, 8).unwrap();
    let generator = QuicLbCidGenerator::new(cfg, server_id.parse().unwrap()).unwrap();
    Arc::new(move || Box::new(generator.clone()))
}

struct Region {
    dme: Arc<Dme>,
    roots: Vec<CertificateDer<'static>>,
    /// The two HTTP/3 endpoints (server ids 0a01, 0a02) serving the same engine.
    endpoints: [SocketAddr; 2],
    _stop: Vec<tokio::sync::oneshot::Sender<()>>,
}

fn start_region() -> Region {
    let k = fixture::app_key();
    let deployment = Builder::new()
        .app(fixture::app(k.clone()))
        .site(&k, "telekom", "berlin", 52.52, 13.405)
        .site(&k, "telekom", "munich", 48.1351, 11.582)
        .build();
    let tables = Tables::from_deployment(&deployment, 1).unwrap();
    let keys = KeyRing::new(vec![("k1".into(), vec![7u8; 64])]).unwrap();
    let dme = Arc::new(Dme::new(tables, keys, DmeConfig::default(), None));
    let (cert, dev) = edge_tls::ServerCert::dev_self_signed(&["localhost"]).unwrap();
    let roots = CertificateDer::pem_slice_iter(dev.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let mut endpoints = [SocketAddr::from(([0, 0, 0, 0], 0)); 2];
    let mut stop = Vec::new();
    for (i, sid) in SERVER_IDS.iter().enumerate() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let ep = dme::h3::endpoint(socket, cert.clone(), Some(cids(sid))).unwrap();
        endpoints[i] = ep.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(dme::h3::run(ep, dme.clone(), async move {
            let _ = rx.await;
        }));
        stop.push(tx);
    }
    Region {
        dme,
        roots,
        endpoints,
        _stop: stop,
    }
}

/// A root LB with one UDP route to both endpoints, in `quic` mode or plain; its address.
async fn start_lb(r: &Region, quic: bool) -> (Lb, SocketAddr) {
    let mut lb = Lb::new(ServerOptions::default());
    let public = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = public.local_addr().unwrap();
    lb.adopt_udp(public).unwrap();
    let [a, b] = r.endpoints;
    let mode = if quic {
        format!(
            r#", quic: {{config_id: 1, server_id_len: 2, nonce_len: 8,
                 server_ids: {{"{a}": "{}", "{b}": "{}"}}}}"#,
            SERVER_IDS[0], SERVER_IDS[1]
        )
    } else {
        String::new()
    };
    // No health checks: round robin alone picks a new flow's backend, so the migrated
    // client's new flow goes to the other endpoint unless the route reads connection ids.
    let yaml = format!(
        r#"listeners: [{{proto: udp, port: {}, bind: 127.0.0.1, backends: ["{a}", "{b}"]{mode}}}]"#,
        addr.port()
    );
    let report = lb
        .apply(Arc::new(RouteTable::from_yaml(&yaml).unwrap()))
        .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    (lb, addr)
}

/// Connects to `to`, registers, finds (near Munich) and opens an edge-events stream.
async fn open_stream(
    r: &Region,
    to: SocketAddr,
) -> (quinn::Endpoint, EdgeStream, MatchEngineApiClient<H3Client>) {
    let ep = client_endpoint(
        "127.0.0.1:0".parse().unwrap(),
        client_config(&r.roots).unwrap(),
    )
    .unwrap();
    let (c, _) = H3Client::connect(&ep, to, "localhost", false)
        .await
        .unwrap();
    let mut grpc = MatchEngineApiClient::with_origin(c, "https://localhost".parse().unwrap());
    let k = fixture::app_key();
    let session = grpc
        .register_client(RegisterClientRequest {
            org_name: k.organization.clone(),
            app_name: k.name.clone(),
            app_vers: k.version.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .session_cookie;
    let found = grpc
        .find_cloudlet(FindCloudletRequest {
            session_cookie: session.clone(),
            carrier_name: "telekom".into(),
            gps_location: Some(Loc {
                latitude: 48.1,
                longitude: 11.6,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let st = EdgeStream::open(&mut grpc, &session, &found.edge_events_cookie, "telekom").await;
    (ep, st, grpc)
}

/// The client moves to a new local address (a new UDP socket).
fn migrate(ep: &quinn::Endpoint) -> SocketAddr {
    let before = ep.local_addr().unwrap();
    ep.rebind(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    let after = ep.local_addr().unwrap();
    assert_ne!(before, after);
    after
}

/// A latency report and its answer, both ways over the stream.
async fn round_trip(st: &mut EdgeStream) -> Result<(), String> {
    st.send(In::EventLatencySamples, Some((48.1, 11.6))).await;
    match tokio::time::timeout(Duration::from_secs(5), st.rx.message()).await {
        Ok(Ok(Some(e))) if e.event_type == Out::EventLatencyProcessed as i32 => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_keeps_the_connection_directly() {
    let r = start_region();
    let (ep, mut st, mut grpc) = open_stream(&r, r.endpoints[0]).await;
    round_trip(&mut st).await.unwrap();
    migrate(&ep);
    round_trip(&mut st)
        .await
        .expect("the stream survives the move");
    // And new requests on the same connection too.
    grpc.register_client(RegisterClientRequest::default())
        .await
        .expect_err("an empty RegisterClient is refused, over the same connection");
    assert_eq!(r.dme.edge_counters().open, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_through_the_root_lb_in_quic_mode_keeps_the_connection() {
    let r = start_region();
    let (_lb, lb_addr) = start_lb(&r, true).await;
    let (ep, mut st, _grpc) = open_stream(&r, lb_addr).await;
    round_trip(&mut st).await.unwrap();
    for _ in 0..3 {
        migrate(&ep);
        round_trip(&mut st)
            .await
            .expect("the LB routes the moved client by connection id");
    }
    assert_eq!(r.dme.edge_counters().open, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_through_the_root_lb_in_plain_udp_mode_loses_the_connection() {
    let r = start_region();
    let (_lb, lb_addr) = start_lb(&r, false).await;
    let (ep, mut st, _grpc) = open_stream(&r, lb_addr).await;
    round_trip(&mut st).await.unwrap();
    migrate(&ep);
    let lost = round_trip(&mut st).await;
    assert!(
        lost.is_err(),
        "the other DME endpoint cannot know the connection"
    );
}
