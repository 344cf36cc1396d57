//! A nearer or recovered instance; hysteresis and good-enough latency.

use super::*;
use crate::pushes::single_berlin;

// ---- 5. A closer instance appears --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closer_instance_moves_only_clients_it_serves() {
    let k = fixture::app_key();
    // Every instance that will exist; the DME starts with berlin's only.
    let full = single_berlin()
        .site(&k, "telekom", "hamburg-t", 53.55, 9.99)
        .site(&k, "orange", "munich-o", 48.14, 11.58)
        .site(&k, "telekom", "munich", 48.1351, 11.582)
        .build();
    let later: Vec<AppInst> = full.app_insts[1..].to_vec();
    let mut start_doc = full.clone();
    start_doc.app_insts.truncate(1);
    let mut mirror = Mirror::from_deployment(&start_doc);
    let tables = mirror.build(None, 1);
    let server = start_dme(Dme::new(tables, keys(), config(), None)).await;
    let mut live = Live {
        server,
        mirror,
        version: 1,
    };
    let mut py = live.py().await;
    let near_munich = client(&mut py, "m", MUNICH).await;
    assert_eq!(near_munich.fqdn, BERLIN_FQDN);
    let near_berlin = client(&mut py, "b", BERLIN).await;
    assert_eq!(near_berlin.fqdn, BERLIN_FQDN);
    // Farther than berlin for the Munich client (612 km against 504): nothing.
    live.mirror.apply(Object::AppInst(later[0].clone()));
    live.publish();
    py.expect_quiet("m", 1.0).await;
    // On orange, not allied with telekom: nothing for a telekom client.
    live.mirror.apply(Object::AppInst(later[1].clone()));
    live.publish();
    py.expect_quiet("m", 1.0).await;
    // Telekom at Munich: the Munich client moves, the Berlin client does not.
    live.mirror.apply(Object::AppInst(later[2].clone()));
    live.publish();
    let ev = py.expect_event("m", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, MUNICH_FQDN);
    py.expect_quiet("b", 0.5).await;
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovered_instance_wins_its_clients_back() {
    let mut live = Live::start(region(), config()).await;
    let mut py = live.py().await;
    let f = client(&mut py, "a", BERLIN).await;
    live.set_health("berlin", HealthCheck::ServerFail);
    let ev = py.expect_event("a", "EVENT_APPINST_HEALTH").await;
    assert_new_cloudlet(&ev, HAMBURG_FQDN);
    // As the SDK does: reconnect with the new cookie.
    let edge = ev["new_cloudlet"]["edge_events_cookie"]
        .as_str()
        .unwrap()
        .to_string();
    py.close("a").await;
    py.open("a2", &f.session, &edge, "telekom").await;
    py.expect_event("a2", "EVENT_INIT_CONNECTION").await;
    py.expect_quiet("a2", 0.5).await;
    live.set_health("berlin", HealthCheck::Ok);
    let ev = py.expect_event("a2", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, BERLIN_FQDN);
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovered_instance_wins_back_clients_still_connected() {
    let mut live = Live::start(region(), config()).await;
    let mut py = live.py().await;
    client(&mut py, "a", BERLIN).await;
    live.set_health("berlin", HealthCheck::ServerFail);
    let ev = py.expect_event("a", "EVENT_APPINST_HEALTH").await;
    assert_new_cloudlet(&ev, HAMBURG_FQDN);
    live.set_health("berlin", HealthCheck::Ok);
    let ev = py.expect_event("a", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, BERLIN_FQDN);
    py.exit().await;
}

// ---- 6. Hysteresis and good-enough latency ------------------------------------------------

/// On the way from Berlin to Munich: munich 242 km, berlin 262 km (19 km nearer).
const SLIGHTLY_NEARER_MUNICH: (f64, f64) = (50.24, 12.457);
/// Munich 103 km, berlin 402 km.
const MUCH_NEARER_MUNICH: (f64, f64) = (49.012, 12.04);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_hysteresis_any_nearer_instance_moves() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    client(&mut py, "a", BERLIN).await;
    py.send_location("a", SLIGHTLY_NEARER_MUNICH.0, SLIGHTLY_NEARER_MUNICH.1)
        .await;
    let ev = py.expect_event("a", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, MUNICH_FQDN);
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hysteresis_keeps_clients_until_clearly_nearer() {
    let mut cfg = config();
    cfg.edge_events.hysteresis_km = 50.0;
    let s = start_with(region(), cfg).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    client(&mut py, "a", BERLIN).await;
    py.send_location("a", SLIGHTLY_NEARER_MUNICH.0, SLIGHTLY_NEARER_MUNICH.1)
        .await;
    py.expect_quiet("a", 1.0).await;
    py.send_location("a", MUCH_NEARER_MUNICH.0, MUCH_NEARER_MUNICH.1)
        .await;
    let ev = py.expect_event("a", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, MUNICH_FQDN);
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_latency_keeps_clients_in_place() {
    let mut cfg = config();
    cfg.edge_events.keep_below_latency_ms = 50.0;
    let s = start_with(region(), cfg).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    client(&mut py, "a", BERLIN).await;
    py.send_samples("a", &[10.0, 12.0, 14.0], BERLIN.0, BERLIN.1)
        .await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 12.0, 10.0, 14.0, 4.0, 3);
    py.send_location("a", MUNICH.0, MUNICH.1).await;
    py.expect_quiet("a", 1.0).await;
    // Latency got bad: the next location update moves the client.
    py.send_samples("a", &[100.0, 120.0], BERLIN.0, BERLIN.1)
        .await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 110.0, 100.0, 120.0, 200.0, 2);
    py.send_location("a", MUNICH.0, MUNICH.1).await;
    let ev = py.expect_event("a", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, MUNICH_FQDN);
    py.exit().await;
}
