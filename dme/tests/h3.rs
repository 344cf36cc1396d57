//! HTTP/3 over real QUIC sockets with our own h3 client: REST answers equal to REST over TCP,
//! gRPC over HTTP/3 (unary, and an edge-events stream receiving a push while the client keeps
//! sending), 0-RTT resumption with its replay policy, and bad input. The independent clients
//! (aioquic, ngtcp2) are in `h3_independent.rs`.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::h3::{H3, Relay, finds, relay, start_h3};
use common::*;
use dme::edge_client::EdgeStream;
use dme::fixture;
use dme::h3_client::{H3Client, client_endpoint};
use dme::mirror::Mirror;
use dme::proto::client_edge_event::ClientEventType as In;
use dme::proto::match_engine_api_client::MatchEngineApiClient;
use dme::proto::server_edge_event::ServerEventType as Out;
use dme::{Dme, DmeConfig};
use edge_model::{HealthCheck, Object};
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

async fn post(c: &H3Client, path: &str, body: &Value) -> (u16, Value) {
    let r = c
        .post_json("localhost", path, &body.to_string())
        .await
        .expect("HTTP/3 request");
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status.as_u16(), v)
}

fn find_body(cookie: &str) -> Value {
    json!({"session_cookie": cookie, "carrier_name": "orange",
           "gps_location": {"latitude": 48.85, "longitude": 2.35}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_over_h3_answers_as_rest_over_tcp() {
    let s = start(region()).await;
    let h3 = start_h3(&s);
    let c = h3.connect(&h3.endpoint()).await;
    let reg = json!({"org_name": "devorg", "app_name": "app", "app_vers": "1.0"});
    let (status, reply) = post(&c, "/v1/registerclient", &reg).await;
    assert_eq!(status, 200, "{reply}");
    let cookie = reply["session_cookie"].as_str().unwrap().to_string();
    let (st3, over_h3) = post(&c, "/v1/findcloudlet", &find_body(&cookie)).await;
    let (st1, over_tcp) = s
        .post("/v1/findcloudlet", &find_body(&cookie).to_string())
        .await;
    assert_eq!((st3, st1), (200, 200));
    assert_eq!(over_h3["fqdn"], "paris.paris-orange.local.edge.example.net");
    // Everything but the freshly signed edge-events cookie is identical.
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("edge_events_cookie");
        v
    };
    assert_eq!(strip(over_h3), strip(over_tcp));
    // Errors too: the same gateway body and status.
    let bad = json!({"session_cookie": "garbage"});
    let (st3, e3) = post(&c, "/v1/findcloudlet", &bad).await;
    let (st1, e1) = s.post("/v1/findcloudlet", &bad.to_string()).await;
    assert_eq!((st3, &e3), (st1, &e1));
    assert_eq!(st3, 401);
    let (st, _) = post(&c, "/v1/nosuchrpc", &json!({})).await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_h3_unary_find_cloudlet() {
    let s = start(region()).await;
    let h3 = start_h3(&s);
    let c = h3.connect(&h3.endpoint()).await;
    let uri: http::Uri = "https://localhost".parse().unwrap();
    let mut grpc = MatchEngineApiClient::with_origin(c, uri);
    let session = grpc
        .register_client(register_request(&fixture::app_key()))
        .await
        .expect("RegisterClient over HTTP/3")
        .into_inner()
        .session_cookie;
    let found = grpc
        .find_cloudlet(find_request(&session, "orange", 48.85, 2.35))
        .await
        .expect("FindCloudlet over HTTP/3")
        .into_inner();
    assert_eq!(found.fqdn, "paris.paris-orange.local.edge.example.net");
    let err = grpc
        .find_cloudlet(find_request("garbage", "orange", 48.85, 2.35))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_events_over_h3_receive_a_push_while_sending() {
    let mut mirror = Mirror::from_deployment(&region().build());
    let tables = mirror.build(None, 1);
    let s = start_dme(Dme::new(tables, keys(), DmeConfig::default(), None)).await;
    let h3 = start_h3(&s);
    let c = h3.connect(&h3.endpoint()).await;
    let mut grpc = MatchEngineApiClient::with_origin(c, "https://localhost".parse().unwrap());
    let session = grpc
        .register_client(register_request(&fixture::app_key()))
        .await
        .unwrap()
        .into_inner()
        .session_cookie;
    let found = grpc
        .find_cloudlet(find_request(&session, "telekom", 48.1, 11.6))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.fqdn, "munich.munich-telekom.local.edge.example.net");
    let mut st = EdgeStream::open(&mut grpc, &session, &found.edge_events_cookie, "telekom").await;
    // The client keeps the stream busy: latency samples, each answered.
    st.send(In::EventLatencySamples, Some((48.1, 11.6))).await;
    assert_eq!(
        st.next().await.event_type,
        Out::EventLatencyProcessed as i32
    );
    // Munich fails while the client's request side is still open.
    let mut munich = mirror
        .objects()
        .app_insts()
        .find(|i| i.key.name == "munich")
        .cloned()
        .unwrap();
    munich.health = HealthCheck::ServerFail;
    mirror.apply(Object::AppInst(munich));
    s.dme.apply_mirror(&mut mirror, 2);
    let pushed = st.next().await;
    assert_eq!(pushed.event_type, Out::EventAppinstHealth as i32);
    assert!(pushed.new_cloudlet.is_some());
    // And the stream still carries the client's messages after the push.
    st.send(In::EventLatencySamples, Some((48.1, 11.6))).await;
    assert_eq!(
        st.next().await.event_type,
        Out::EventLatencyProcessed as i32
    );
}

/// Connects once to obtain a resumption ticket, then resumes in 0-RTT on the same endpoint
/// through a relay that delays the client's datagrams by 50 ms.
async fn resumed(h3: &H3, ep: &quinn::Endpoint) -> (H3Client, quinn::ZeroRttAccepted, Relay) {
    let first = h3.connect(ep).await;
    // A request completes the handshake and lets the tickets arrive.
    let _ = first
        .post_json("localhost", "/v1/nosuch", "{}")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.conn.close(0u32.into(), b"done");
    let relay = relay(h3.addr, Duration::from_millis(50)).await;
    let (c, accepted) = H3Client::connect(ep, relay.addr, "localhost", true)
        .await
        .unwrap();
    (
        c,
        accepted.expect("a resumption ticket was cached: 0-RTT attempted"),
        relay,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_rtt_lookups_run_early_and_count_once_confirmed() {
    let s = start(region()).await;
    let h3 = start_h3(&s);
    let cookie = s.register(&fixture::app_key()).await;
    let ep = h3.endpoint();
    let before = finds(&s);
    let (c, accepted, relay) = resumed(&h3, &ep).await;
    let (status, found) = post(&c, "/v1/findcloudlet", &find_body(&cookie)).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["status"], "FIND_FOUND");
    assert!(accepted.await, "the server accepted the 0-RTT data");
    // Counted once, after the handshake was confirmed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while finds(&s) != before + 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(finds(&s), before + 1);
    // An attacker replays the client's first flight (ClientHello and 0-RTT request) from
    // elsewhere: the ticket was single-use, so the early data is refused, the handshake never
    // completes, and nothing is counted again.
    // (The genuine connection is closed and drained first, so the replay is a new connection.)
    c.conn.close(0u32.into(), b"done");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let flight: Vec<Vec<u8>> = relay.sent.lock().unwrap().iter().take(3).cloned().collect();
    let attacker = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for d in &flight {
        attacker.send_to(d, h3.addr).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        finds(&s),
        before + 1,
        "a replayed 0-RTT request counted twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_rtt_state_changes_are_too_early() {
    let s = start(region()).await;
    let h3 = start_h3(&s);
    let cookie = s.register(&fixture::app_key()).await;
    let ep = h3.endpoint();
    // gRPC: the edge-events stream is refused with UNAVAILABLE, the retryable status.
    let (c, _accepted, _relay) = resumed(&h3, &ep).await;
    let mut grpc = MatchEngineApiClient::with_origin(c, "https://localhost".parse().unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(dme::proto::ClientEdgeEvent::default())
        .await
        .unwrap();
    let err = grpc
        .stream_edge_event(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().contains("Too Early"));
    // REST: 425.
    let (c, _accepted, _relay) = resumed(&h3, &ep).await;
    let qos = json!({"session_cookie": cookie});
    let r = c
        .post_json(
            "localhost",
            "/v1/qosprioritysessioncreate",
            &qos.to_string(),
        )
        .await
        .unwrap();
    assert_eq!(
        r.status.as_u16(),
        425,
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["message"].as_str().unwrap().contains("Too Early"), "{v}");
    // After the handshake the same call runs (and is refused only for what it is).
    let r = c
        .post_json(
            "localhost",
            "/v1/qosprioritysessioncreate",
            &qos.to_string(),
        )
        .await
        .unwrap();
    assert_eq!(
        r.status.as_u16(),
        501,
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_the_server_keeps_serving() {
    let s = start(region()).await;
    let h3 = start_h3(&s);
    // Garbage datagrams.
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    for n in [1usize, 20, 1200, 1500] {
        let d: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
        junk.send_to(&d, h3.addr).unwrap();
    }
    // A wrong ALPN fails the handshake cleanly.
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates({
        let mut r = rustls::RootCertStore::empty();
        r.add(h3.roots[0].clone()).unwrap();
        r
    })
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(tls)).unwrap();
    let ep = client_endpoint(
        "127.0.0.1:0".parse().unwrap(),
        quinn::ClientConfig::new(Arc::new(crypto)),
    )
    .unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        ep.connect(h3.addr, "localhost").unwrap(),
    )
    .await
    .expect("refused promptly")
    .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("alpn") || err.to_string().contains("120"),
        "{err}"
    );
    // Oversized headers: 431, and the connection still serves.
    let c = h3.connect(&h3.endpoint()).await;
    let big = "x".repeat(20 * 1024);
    let req = http::Request::post("https://localhost/v1/findcloudlet")
        .header("x-big", big)
        .body(Bytes::from_static(b"{}"))
        .unwrap();
    match c.request(req).await {
        Ok(r) => assert_eq!(r.status.as_u16(), 431),
        Err(e) => assert!(
            e.to_string().contains("Header") || e.to_string().contains("header"),
            "{e}"
        ),
    }
    let cookie = s.register(&fixture::app_key()).await;
    let c = h3.connect(&h3.endpoint()).await;
    let (status, found) = post(&c, "/v1/findcloudlet", &find_body(&cookie)).await;
    assert_eq!(
        (status, found["status"].as_str()),
        (200, Some("FIND_FOUND"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_responses_advertise_h3_with_alt_svc() {
    let tables = dme::Tables::from_deployment(&region().build(), 1).unwrap();
    let engine = Arc::new(Dme::new(tables, keys(), DmeConfig::default(), None));
    let (cert, dev) = edge_tls::ServerCert::dev_self_signed(&["localhost"]).unwrap();
    let endpoint = dme::h3::endpoint(UdpSocket::bind("127.0.0.1:0").unwrap(), cert, None).unwrap();
    let h3_addr = endpoint.local_addr().unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest_addr = rest.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let listeners = dme::server::Listeners {
        grpc,
        rest,
        tls: None,
        h3: Some(endpoint),
    };
    let server = tokio::spawn(dme::server::run(listeners, engine, async move {
        let _ = rx.await;
    }));
    let mut tcp = tokio::net::TcpStream::connect(rest_addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut head = String::new();
    tcp.read_to_string(&mut head).await.unwrap();
    let want = format!("alt-svc: h3=\":{}\"; ma=86400", h3_addr.port());
    assert!(head.to_ascii_lowercase().contains(&want), "{head}");
    // The advertised endpoint answers.
    let roots = rustls_pki_types::CertificateDer::pem_slice_iter(dev.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let ep = client_endpoint(
        "127.0.0.1:0".parse().unwrap(),
        dme::h3_client::client_config(&roots).unwrap(),
    )
    .unwrap();
    let (c, _) = H3Client::connect(&ep, h3_addr, "localhost", false)
        .await
        .unwrap();
    let r = c
        .request(
            http::Request::get("https://localhost/metrics")
                .body(Bytes::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    // Both stop on shutdown.
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}
