//! Idle streams, a client that does not read, latency requests, termination, rate limit.

use super::*;
use crate::pushes::three_clients;

// ---- 7. Idle streams ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_are_closed_active_ones_kept() {
    let mut cfg = config();
    cfg.edge_events.idle_timeout = Duration::from_secs(1);
    let s = start_with(region(), cfg).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    let f = client(&mut py, "idle", BERLIN).await;
    client(&mut py, "busy", BERLIN).await;
    // A stream that never sends its INIT is not held forever either.
    py.open_with(
        "mute",
        json!({"session": f.session, "edge": f.edge, "init": false}),
    )
    .await;
    let started = Instant::now();
    // The busy client says something every 0.4 s for 2.4 s.
    for _ in 0..6 {
        py.send("busy", "CUSTOM_EVENT", json!({"custom": "ping"}))
            .await;
        let events = py.quiet("busy", 0.4).await;
        assert!(
            events.iter().all(|e| e["closed"] != true),
            "busy stream closed: {events:?}"
        );
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
    let v = py.expect_closed("idle", 3.0).await;
    assert_ne!(v["code"], "OK", "{v}");
    let details = v["details"].as_str().unwrap_or_default().to_lowercase();
    assert!(details.contains("idle"), "{v}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "closed late: {v}"
    );
    assert!(s.dme.edge_counters().idle_closed >= 1);
    let v = py.expect_closed("mute", 3.0).await;
    assert_ne!(v["code"], "OK", "{v}");
    // Still open: it answers.
    py.send_samples("busy", &[1.0], BERLIN.0, BERLIN.1).await;
    let ev = py.recv("busy", 10.0).await;
    assert_stats(&ev, 1.0, 1.0, 1.0, 0.0, 1);
    py.exit().await;
}

// ---- 8. A client that does not read ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_is_dropped_without_delaying_others() {
    let mut cfg = config();
    cfg.edge_events.outbox = 4;
    let s = start_with(region(), cfg).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    let slow = py
        .register_and_find(&fixture::app_key(), "telekom", BERLIN.0, BERLIN.1)
        .await;
    py.open_with(
        "slow",
        json!({"session": slow.session, "edge": slow.edge, "carrier": "telekom", "read": false}),
    )
    .await;
    client(&mut py, "fast", BERLIN).await;
    let berlin = inst_key("berlin");
    let mut overflowed = None;
    let mut slowest = Duration::ZERO;
    // Pushes two at a time (within the outbox of a client that keeps up), each pair read by
    // the fast client before the next, until the slow one is dropped (its transport buffers
    // some events first) and a few rounds more.
    for round in 0..5000 {
        let started = Instant::now();
        for _ in 0..2 {
            assert!(s.dme.request_latency(&berlin) >= 1, "round {round}");
        }
        let events = py.drain("fast", 2, 5.0).await;
        assert_eq!(events.len(), 2, "round {round}: {:?}", events.last());
        for ev in &events {
            assert_eq!(
                ev["event_type"], "EVENT_LATENCY_REQUEST",
                "round {round}: {ev}"
            );
        }
        slowest = slowest.max(started.elapsed());
        match overflowed {
            Some(at) if round >= at + 20 => break,
            Some(_) => {}
            None if s.dme.edge_counters().overflow_closed >= 1 => overflowed = Some(round),
            None => {}
        }
    }
    assert!(
        slowest < Duration::from_secs(3),
        "the fast client waited {slowest:?} for a pair of events"
    );
    let at = overflowed.expect("the slow client was never dropped");
    eprintln!(
        "slow client dropped after {} pushes; slowest pair {slowest:?}",
        2 * at
    );
    // The slow client reads at last: what its transport held, then the end.
    py.start_reading("slow").await;
    let v = py.expect_closed("slow", 10.0).await;
    assert_ne!(v["code"], "OK", "{v}");
    eprintln!("slow client closed with {v}");
    // The fast one is still served.
    assert_eq!(s.dme.request_latency(&berlin), 1);
    py.expect_event("fast", "EVENT_LATENCY_REQUEST").await;
    py.exit().await;
}

// ---- 9. Latency requests -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_request_reaches_the_instance_clients() {
    let live = Live::start(region(), config()).await;
    let mut py = three_clients(&live).await;
    assert_eq!(live.server.dme.request_latency(&inst_key("berlin")), 2);
    py.expect_event("a", "EVENT_LATENCY_REQUEST").await;
    py.expect_event("b", "EVENT_LATENCY_REQUEST").await;
    py.expect_quiet("c", 0.7).await;
    assert_eq!(live.server.dme.request_latency(&inst_key("paris")), 0);
    py.expect_quiet("a", 0.5).await;
    py.exit().await;
}

// ---- 10. Terminate -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_ends_the_stream_cleanly() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    client(&mut py, "a", BERLIN).await;
    client(&mut py, "b", BERLIN).await;
    py.send("a", "TERMINATE", Value::Null).await;
    let v = py.expect_closed("a", 5.0).await;
    assert_closed(&v, "OK");
    // The other stream is untouched.
    py.send_samples("b", &[2.0], BERLIN.0, BERLIN.1).await;
    let ev = py.recv("b", 10.0).await;
    assert_stats(&ev, 2.0, 2.0, 2.0, 0.0, 1);
    py.exit().await;
}

// ---- Stream lifecycle ---------------------------------------------------------------------

/// Waits until the DME counts `n` open streams.
async fn wait_open(s: &Server, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = s.dme.edge_counters();
        if c.open == n {
            return;
        }
        assert!(Instant::now() < deadline, "open streams: {c:?}, want {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_streams_are_forgotten() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    for id in ["terminate", "half-close", "cancel", "kept"] {
        client(&mut py, id, BERLIN).await;
    }
    wait_open(&s, 4).await;
    py.send("terminate", "TERMINATE", Value::Null).await;
    assert_closed(&py.expect_closed("terminate", 5.0).await, "OK");
    // A client that closes its side without TERMINATE ends the stream as well.
    py.end("half-close").await;
    assert_closed(&py.expect_closed("half-close", 5.0).await, "OK");
    py.close("cancel").await;
    wait_open(&s, 1).await;
    assert_eq!(s.dme.request_latency(&inst_key("berlin")), 1);
    py.expect_event("kept", "EVENT_LATENCY_REQUEST").await;
    py.close("kept").await;
    wait_open(&s, 0).await;
    assert_eq!(s.dme.request_latency(&inst_key("berlin")), 0);
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_client_hears_of_its_new_instance_only() {
    let mut live = Live::start(region(), config()).await;
    let mut py = live.py().await;
    client(&mut py, "a", BERLIN).await;
    py.send_location("a", MUNICH.0, MUNICH.1).await;
    let ev = py.expect_event("a", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, MUNICH_FQDN);
    assert_eq!(live.server.dme.request_latency(&inst_key("berlin")), 0);
    assert_eq!(live.server.dme.request_latency(&inst_key("munich")), 1);
    py.expect_event("a", "EVENT_LATENCY_REQUEST").await;
    live.set_health("berlin", HealthCheck::ServerFail);
    py.expect_quiet("a", 0.7).await;
    live.set_health("munich", HealthCheck::ServerFail);
    let ev = py.expect_event("a", "EVENT_APPINST_HEALTH").await;
    assert_eq!(ev["health_check"], "HEALTH_CHECK_SERVER_FAIL", "{ev}");
    // From Munich with berlin and munich down: frankfurt (404 km padded) before hamburg (612).
    assert_new_cloudlet(&ev, FRANKFURT_FQDN);
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_unknown_and_repeated_init_keep_the_stream() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    let f = client(&mut py, "a", BERLIN).await;
    py.send(
        "a",
        "CUSTOM_EVENT",
        json!({"custom": "fps", "samples": [30.0, 60.0], "lat": BERLIN.0, "lon": BERLIN.1}),
    )
    .await;
    py.expect_quiet("a", 0.5).await;
    py.send("a", "UNKNOWN", Value::Null).await;
    let ev = py.expect_event("a", "EVENT_ERROR").await;
    assert_ne!(ev["error_msg"], "", "{ev}");
    py.send("a", "INIT", json!({"session": f.session, "edge": f.edge}))
        .await;
    let ev = py.expect_event("a", "EVENT_ERROR").await;
    assert_ne!(ev["error_msg"], "", "{ev}");
    py.send_samples("a", &[5.0], BERLIN.0, BERLIN.1).await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 5.0, 5.0, 5.0, 0.0, 1);
    py.exit().await;
}

// ---- 11. Rate limit ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_messages_are_rate_limited() {
    let mut cfg = config();
    cfg.edge_events.messages_per_sec = 1;
    cfg.edge_events.burst = 2;
    let s = start_with(region(), cfg).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    client(&mut py, "a", BERLIN).await;
    for i in 0..5 {
        py.send_samples("a", &[f64::from(i)], BERLIN.0, BERLIN.1)
            .await;
    }
    let events = py.quiet("a", 2.0).await;
    let limited = events
        .iter()
        .filter(|e| {
            e["event_type"] == "EVENT_ERROR"
                && e["error_msg"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("Limiting client messages")
        })
        .count();
    assert!(limited >= 1, "no limiting: {events:?}");
    let processed = events
        .iter()
        .filter(|e| e["event_type"] == "EVENT_LATENCY_PROCESSED")
        .count();
    assert!((1..5).contains(&processed), "{events:?}");
    // The bucket refills: a message a second later is processed again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    py.send_samples("a", &[7.0], BERLIN.0, BERLIN.1).await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 7.0, 7.0, 7.0, 0.0, 1);
    py.exit().await;
}
