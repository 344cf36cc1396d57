//! INIT handshake and its rejections.

use super::*;

// ---- 1. INIT handshake and its rejections --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_handshake_with_telekom_and_operator_code() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    for (id, carrier) in [("a", "telekom"), ("b", "26201")] {
        let f = py
            .register_and_find(&fixture::app_key(), carrier, BERLIN.0, BERLIN.1)
            .await;
        assert_eq!(f.fqdn, BERLIN_FQDN);
        py.open(id, &f.session, &f.edge, carrier).await;
        let ev = py.recv(id, 10.0).await;
        assert_eq!(ev["event_type"], "EVENT_INIT_CONNECTION", "{ev}");
        assert_eq!(ev["error_msg"], "", "{ev}");
        // Nothing else follows an INIT by itself.
        py.expect_quiet(id, 0.5).await;
    }
    py.exit().await;
}

/// Opens stream `id` with these INIT cookies and expects it closed with `code`, without an
/// INIT reply.
async fn expect_rejected(py: &mut PyEdge, id: &str, session: &str, edge: &str, code: &str) {
    py.open(id, session, edge, "telekom").await;
    let v = py.recv(id, 10.0).await;
    assert_closed(&v, code);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_rejects_bad_cookies() {
    let other_key = AppKey {
        name: "other".into(),
        ..fixture::app_key()
    };
    let b = region()
        .app(fixture::app(other_key.clone()))
        .cloudlet("telekom", "leipzig", 51.34, 12.37)
        .inst(&other_key, "other-leipzig", "telekom", "leipzig");
    let s = start(b).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    let f = py
        .register_and_find(&fixture::app_key(), "telekom", BERLIN.0, BERLIN.1)
        .await;
    let other = py
        .register_and_find(&other_key, "telekom", BERLIN.0, BERLIN.1)
        .await;
    let u = "UNAUTHENTICATED";
    expect_rejected(&mut py, "no-session", "", &f.edge, u).await;
    expect_rejected(&mut py, "garbage-session", "garbage", &f.edge, u).await;
    expect_rejected(&mut py, "garbage-edge", &f.session, "garbage", u).await;
    expect_rejected(&mut py, "no-edge", &f.session, "", u).await;
    expect_rejected(&mut py, "swapped", &f.edge, &f.session, u).await;
    expect_rejected(&mut py, "other-app-edge", &f.session, &other.edge, u).await;
    // A forged edge cookie: a valid one with its last character changed.
    let mut forged = f.edge.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    expect_rejected(&mut py, "forged-edge", &f.session, &forged, u).await;
    // An expired session cookie (the default lifetime is 24 h).
    let past = unix_now() - 3 * 24 * 3600;
    let old = s
        .dme
        .register_client(&register_request(&fixture::app_key()), Ctx::at(None, past))
        .expect("register in the past")
        .session_cookie;
    expect_rejected(&mut py, "expired-session", &old, &f.edge, u).await;
    // The genuine cookies are accepted.
    py.connect("good", &f, "telekom").await;
    let c = s.dme.edge_counters();
    assert!(c.refused >= 8, "{c:?}");
    assert_eq!(c.open, 1, "{c:?}");
    py.exit().await;
}

/// An edge-events cookie signed `age` seconds ago, with a session cookie that is still valid.
fn old_cookies(s: &Server, age: i64) -> (String, String) {
    let past = unix_now() - age;
    let session = s
        .dme
        .register_client(&register_request(&fixture::app_key()), Ctx::at(None, past))
        .expect("register in the past")
        .session_cookie;
    let found = s
        .dme
        .find_cloudlet(
            &find_request(&session, "telekom", BERLIN.0, BERLIN.1),
            Ctx::at(None, past),
        )
        .expect("find in the past");
    assert!(!found.edge_events_cookie.is_empty());
    (session, found.edge_events_cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_accepts_expired_edge_cookie_within_grace_only() {
    let mut cfg = config();
    cfg.edge_events_cookie_lifetime = Duration::from_secs(60);
    cfg.edge_events.cookie_grace = Duration::from_secs(60);
    let s = start_with(region(), cfg).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    // Expired 30 s ago, grace 60 s: renewed, accepted.
    let (session, edge) = old_cookies(&s, 90);
    py.open("within", &session, &edge, "telekom").await;
    py.expect_event("within", "EVENT_INIT_CONNECTION").await;
    // Expired 540 s ago: beyond the grace.
    let (session, edge) = old_cookies(&s, 600);
    expect_rejected(&mut py, "beyond", &session, &edge, "UNAUTHENTICATED").await;
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_message_must_be_init() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    let f = py
        .register_and_find(&fixture::app_key(), "telekom", BERLIN.0, BERLIN.1)
        .await;
    for (id, event) in [("loc", "LOCATION_UPDATE"), ("lat", "LATENCY_SAMPLES")] {
        py.open_with(
            id,
            json!({"session": f.session, "edge": f.edge, "init": false}),
        )
        .await;
        py.send(
            id,
            event,
            json!({"session": f.session, "edge": f.edge, "lat": BERLIN.0, "lon": BERLIN.1,
                "samples": [1.0]}),
        )
        .await;
        let v = py.recv(id, 10.0).await;
        assert_closed(&v, "INVALID_ARGUMENT");
        let details = v["details"].as_str().unwrap_or_default();
        assert!(
            details.contains("First message should have event type EVENT_INIT_CONNECTION"),
            "{v}"
        );
    }
    py.exit().await;
}
