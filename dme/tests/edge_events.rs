//! StreamEdgeEvent over real sockets, driven by an independent client stack: Python grpcio with
//! stubs generated from `tests/python/mex_subset.proto` (written from the reference's field
//! numbers), through `tests/python/edge_client.py`. Controller-like changes go through a
//! [`Mirror`] published into the running DME, as the notify stream would.
//!
//! Geography of [`region`] (telekom client, public clouds padded by 100 km): from Berlin the
//! nearest usable instances are berlin (2 km), hamburg (vodafone, allied with telekom, 256 km),
//! munich (502 km), frankfurt (aws, 422 + 100 km); from Munich: munich, frankfurt (304 + 100),
//! berlin (504), hamburg (612).

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::edge_py::{Found, PyEdge};
use common::*;
use dme::fixture::{self, Builder};
use dme::mirror::Mirror;
use dme::{Ctx, Dme, DmeConfig};
use edge_model::{AppInst, AppInstKey, AppKey, CloudletKey, HealthCheck, MaintenanceState};
use edge_model::{CloudletState, Object, ObjectKey};
use serde_json::{Value, json};

const BERLIN: (f64, f64) = (52.5, 13.4);
const MUNICH: (f64, f64) = (48.14, 11.58);
const BERLIN_FQDN: &str = "berlin.berlin-telekom.local.edge.example.net";
const MUNICH_FQDN: &str = "munich.munich-telekom.local.edge.example.net";
const HAMBURG_FQDN: &str = "hamburg.hamburg-vodafone.local.edge.example.net";
const FRANKFURT_FQDN: &str = "frankfurt.frankfurt-aws.local.edge.example.net";

/// A DME fed from a mirror, so tests can change objects the way the controller would.
struct Live {
    server: Server,
    mirror: Mirror,
    version: u64,
}

impl Live {
    async fn start(b: Builder, config: DmeConfig) -> Self {
        let doc = b.build();
        let mut mirror = Mirror::from_deployment(&doc);
        let tables = mirror.build(None, 1);
        let server = start_dme(Dme::new(tables, keys(), config, None)).await;
        Self {
            server,
            mirror,
            version: 1,
        }
    }

    async fn py(&self) -> PyEdge {
        PyEdge::spawn(self.server.grpc).await
    }

    /// Publishes the mirror's changes and pushes the resulting events.
    fn publish(&mut self) {
        self.version += 1;
        self.server.dme.apply_mirror(&mut self.mirror, self.version);
    }

    fn inst(&self, name: &str) -> AppInst {
        self.mirror
            .objects()
            .app_inst(&inst_key(name))
            .unwrap_or_else(|| panic!("no instance {name}"))
            .clone()
    }

    fn set_health(&mut self, name: &str, health: HealthCheck) {
        let mut inst = self.inst(name);
        inst.health = health;
        self.mirror.apply(Object::AppInst(inst));
        self.publish();
    }

    fn set_maintenance(&mut self, org: &str, name: &str, state: MaintenanceState) {
        let key = fixture::cloudlet_key(org, name);
        let mut c = self
            .mirror
            .objects()
            .cloudlet(&key)
            .expect("cloudlet")
            .clone();
        c.maintenance_state = state;
        self.mirror.apply(Object::Cloudlet(c));
        self.publish();
    }
}

fn inst_key(name: &str) -> AppInstKey {
    AppInstKey {
        organization: fixture::app_key().organization,
        name: name.into(),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn config() -> DmeConfig {
    DmeConfig::default()
}

/// A client of the default app registered and found at `at` on telekom, with its stream
/// `id` open and initialised.
async fn client(py: &mut PyEdge, id: &str, at: (f64, f64)) -> Found {
    let found = py
        .register_and_find(&fixture::app_key(), "telekom", at.0, at.1)
        .await;
    py.connect(id, &found, "telekom").await;
    found
}

fn close_to(got: &Value, want: f64, what: &str) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {got}"));
    let ok = if want == 0.0 {
        got.abs() < 1e-12
    } else {
        ((got - want) / want).abs() < 1e-9
    };
    assert!(ok, "{what}: got {got}, want {want}");
}

/// Checks an EVENT_LATENCY_PROCESSED's statistics: (avg, min, max, variance, n).
fn assert_stats(ev: &Value, avg: f64, min: f64, max: f64, variance: f64, n: u64) {
    assert_eq!(ev["event_type"], "EVENT_LATENCY_PROCESSED", "{ev}");
    let s = &ev["statistics"];
    assert!(s.is_object(), "no statistics: {ev}");
    close_to(&s["avg"], avg, "avg");
    close_to(&s["min"], min, "min");
    close_to(&s["max"], max, "max");
    close_to(&s["variance"], variance, "variance");
    close_to(&s["std_dev"], variance.sqrt(), "std_dev");
    assert_eq!(s["num_samples"], n, "{ev}");
}

fn assert_new_cloudlet(ev: &Value, fqdn: &str) {
    let nc = &ev["new_cloudlet"];
    assert!(nc.is_object(), "no new_cloudlet: {ev}");
    assert_eq!(nc["status"], "FIND_FOUND", "{ev}");
    assert_eq!(nc["fqdn"], fqdn, "{ev}");
    assert!(
        !nc["edge_events_cookie"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "no new edge events cookie: {ev}"
    );
}

fn assert_closed(v: &Value, code: &str) {
    assert_eq!(v["closed"], true, "expected a close with {code}, got {v}");
    assert_eq!(v["code"], code, "{v}");
}

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

// ---- 2. Latency statistics ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_samples_statistics() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    client(&mut py, "a", BERLIN).await;
    let (lat, lon) = BERLIN;
    // No samples: all zeros.
    py.send_samples("a", &[], lat, lon).await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 0.0, 0.0, 0.0, 0.0, 0);
    // A single 0 counts.
    py.send_samples("a", &[0.0], lat, lon).await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 0.0, 0.0, 0.0, 0.0, 1);
    // Negatives are dropped.
    py.send_samples("a", &[-1.0, -2.5, -100.0], lat, lon).await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 0.0, 0.0, 0.0, 0.0, 0);
    py.send_samples("a", &[-1.0, 2.0, -3.0, 4.0], lat, lon)
        .await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 3.0, 2.0, 4.0, 2.0, 2);
    // 1..=9999 in one message: unbiased variance of 1..n is n(n+1)/12.
    let many: Vec<f64> = (1..=9999).map(f64::from).collect();
    py.send_samples("a", &many, lat, lon).await;
    let ev = py.recv("a", 20.0).await;
    assert_stats(&ev, 5000.0, 1.0, 9999.0, 9999.0 * 10000.0 / 12.0, 9999);
    py.expect_quiet("a", 0.3).await;
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_samples_need_a_location() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    client(&mut py, "a", BERLIN).await;
    py.send("a", "LATENCY_SAMPLES", json!({"samples": [1.0, 2.0]}))
        .await;
    let ev = py.expect_event("a", "EVENT_ERROR").await;
    let msg = ev["error_msg"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("Invalid EVENT_LATENCY_SAMPLES, invalid location:"),
        "{ev}"
    );
    // Still usable.
    py.send_samples("a", &[1.0, 3.0], BERLIN.0, BERLIN.1).await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 2.0, 1.0, 3.0, 2.0, 2);
    py.exit().await;
}

// ---- 3. Location updates -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_update_moves_client_once() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    let f = client(&mut py, "a", BERLIN).await;
    assert_eq!(f.fqdn, BERLIN_FQDN);
    // Nothing changes while the client stays near its instance.
    py.send_location("a", 52.51, 13.41).await;
    py.expect_quiet("a", 0.7).await;
    py.send_location("a", MUNICH.0, MUNICH.1).await;
    let ev = py.expect_event("a", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, MUNICH_FQDN);
    assert_ne!(ev["new_cloudlet"]["edge_events_cookie"], json!(f.edge));
    // Already told: a second update near Munich brings nothing.
    py.send_location("a", 48.2, 11.6).await;
    py.expect_quiet("a", 1.0).await;
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_update_needs_a_valid_location() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    client(&mut py, "a", BERLIN).await;
    for bad in [json!({}), json!({"lat": 91.0, "lon": 13.0})] {
        py.send("a", "LOCATION_UPDATE", bad.clone()).await;
        let ev = py.expect_event("a", "EVENT_ERROR").await;
        let msg = ev["error_msg"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("Invalid EVENT_LOCATION_UPDATE, invalid location:"),
            "{bad}: {ev}"
        );
    }
    // Still usable.
    py.send_location("a", MUNICH.0, MUNICH.1).await;
    let ev = py.expect_event("a", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, MUNICH_FQDN);
    py.exit().await;
}

// ---- 4. Pushes reach exactly the affected clients ----------------------------------------

/// Clients a and b at Berlin (on berlin), c at Munich (on munich).
async fn three_clients(live: &Live) -> PyEdge {
    let mut py = live.py().await;
    assert_eq!(client(&mut py, "a", BERLIN).await.fqdn, BERLIN_FQDN);
    assert_eq!(client(&mut py, "b", (52.53, 13.39)).await.fqdn, BERLIN_FQDN);
    assert_eq!(client(&mut py, "c", MUNICH).await.fqdn, MUNICH_FQDN);
    py
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_failure_and_maintenance_reach_only_their_clients() {
    let mut live = Live::start(region(), config()).await;
    let mut py = three_clients(&live).await;
    live.set_health("berlin", HealthCheck::ServerFail);
    for id in ["a", "b"] {
        let ev = py.expect_event(id, "EVENT_APPINST_HEALTH").await;
        assert_eq!(ev["health_check"], "HEALTH_CHECK_SERVER_FAIL", "{ev}");
        // Nearest usable from Berlin: hamburg (vodafone, allied with telekom).
        assert_new_cloudlet(&ev, HAMBURG_FQDN);
    }
    py.expect_quiet("c", 0.7).await;
    live.set_maintenance("telekom", "munich", MaintenanceState::UnderMaintenance);
    let ev = py.expect_event("c", "EVENT_CLOUDLET_MAINTENANCE").await;
    assert_eq!(ev["maintenance_state"], "UNDER_MAINTENANCE", "{ev}");
    // Nearest usable from Munich: frankfurt (aws, 304 km + 100 km padding) before berlin.
    assert_new_cloudlet(&ev, FRANKFURT_FQDN);
    py.expect_quiet("a", 0.5).await;
    py.expect_quiet("b", 0.2).await;
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudlet_offline_reaches_its_clients() {
    let mut live = Live::start(region(), config()).await;
    let mut py = three_clients(&live).await;
    let key = CloudletKey {
        organization: "telekom".into(),
        name: "munich".into(),
    };
    live.mirror.set_cloudlet_state(&key, CloudletState::Offline);
    live.publish();
    let ev = py.expect_event("c", "EVENT_CLOUDLET_STATE").await;
    assert_eq!(ev["cloudlet_state"], "CLOUDLET_STATE_OFFLINE", "{ev}");
    assert_new_cloudlet(&ev, FRANKFURT_FQDN);
    py.expect_quiet("a", 0.5).await;
    py.expect_quiet("b", 0.2).await;
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_instance_reports_server_fail() {
    let mut live = Live::start(region(), config()).await;
    let mut py = three_clients(&live).await;
    live.mirror.remove(&ObjectKey::AppInst(inst_key("munich")));
    live.publish();
    let ev = py.expect_event("c", "EVENT_APPINST_HEALTH").await;
    assert_eq!(ev["health_check"], "HEALTH_CHECK_SERVER_FAIL", "{ev}");
    assert_new_cloudlet(&ev, FRANKFURT_FQDN);
    py.expect_quiet("a", 0.5).await;
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_match_for_an_operator_code_carrier() {
    let mut live = Live::start(region(), config()).await;
    let mut py = live.py().await;
    // The carrier as a handset reports it: MCC+MNC, translated to telekom by the DME.
    let f = py
        .register_and_find(&fixture::app_key(), "26201", BERLIN.0, BERLIN.1)
        .await;
    assert_eq!(f.fqdn, BERLIN_FQDN);
    py.connect("a", &f, "26201").await;
    live.set_health("berlin", HealthCheck::ServerFail);
    let ev = py.expect_event("a", "EVENT_APPINST_HEALTH").await;
    // Hamburg (allied with telekom), not only the public cloud an unknown carrier would get.
    assert_new_cloudlet(&ev, HAMBURG_FQDN);
    py.send_location("a", MUNICH.0, MUNICH.1).await;
    let ev = py.expect_event("a", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, MUNICH_FQDN);
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_all_hear_a_change() {
    const N: usize = 40;
    let mut live = Live::start(region(), config()).await;
    let mut py = live.py().await;
    let f = py
        .register_and_find(&fixture::app_key(), "telekom", BERLIN.0, BERLIN.1)
        .await;
    // Streams of one session are separate streams.
    for i in 0..N {
        py.connect(&format!("s{i}"), &f, "telekom").await;
    }
    assert_eq!(live.server.dme.edge_counters().open, N as u64);
    live.set_health("berlin", HealthCheck::ServerFail);
    for i in 0..N {
        let ev = py
            .expect_event(&format!("s{i}"), "EVENT_APPINST_HEALTH")
            .await;
        assert_new_cloudlet(&ev, HAMBURG_FQDN);
    }
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudlet_back_from_maintenance_or_offline_wins_clients_back() {
    let mut live = Live::start(region(), config()).await;
    let mut py = live.py().await;
    client(&mut py, "c", MUNICH).await;
    live.set_maintenance("telekom", "munich", MaintenanceState::UnderMaintenance);
    let ev = py.expect_event("c", "EVENT_CLOUDLET_MAINTENANCE").await;
    assert_new_cloudlet(&ev, FRANKFURT_FQDN);
    live.set_maintenance("telekom", "munich", MaintenanceState::NormalOperation);
    let ev = py.expect_event("c", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, MUNICH_FQDN);
    let key = fixture::cloudlet_key("telekom", "munich");
    live.mirror.set_cloudlet_state(&key, CloudletState::Offline);
    live.publish();
    let ev = py.expect_event("c", "EVENT_CLOUDLET_STATE").await;
    assert_eq!(ev["cloudlet_state"], "CLOUDLET_STATE_OFFLINE", "{ev}");
    assert_new_cloudlet(&ev, FRANKFURT_FQDN);
    live.mirror.set_cloudlet_state(&key, CloudletState::Ready);
    live.publish();
    let ev = py.expect_event("c", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, MUNICH_FQDN);
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_on_an_unusable_instance_is_told_at_once() {
    let mut live = Live::start(region(), config()).await;
    let mut py = live.py().await;
    let f = py
        .register_and_find(&fixture::app_key(), "telekom", BERLIN.0, BERLIN.1)
        .await;
    assert_eq!(f.fqdn, BERLIN_FQDN);
    // The instance failed between FindCloudlet and the stream's INIT.
    live.set_health("berlin", HealthCheck::ServerFail);
    py.connect("failed", &f, "telekom").await;
    let ev = py.expect_event("failed", "EVENT_APPINST_HEALTH").await;
    assert_eq!(ev["health_check"], "HEALTH_CHECK_SERVER_FAIL", "{ev}");
    assert_new_cloudlet(&ev, HAMBURG_FQDN);
    // Or was deleted.
    live.mirror.remove(&ObjectKey::AppInst(inst_key("berlin")));
    live.publish();
    py.connect("deleted", &f, "telekom").await;
    let ev = py.expect_event("deleted", "EVENT_APPINST_HEALTH").await;
    assert_eq!(ev["health_check"], "HEALTH_CHECK_SERVER_FAIL", "{ev}");
    assert_new_cloudlet(&ev, HAMBURG_FQDN);
    // The first stream was moved to hamburg already: the deletion is not news to it.
    py.expect_quiet("failed", 0.5).await;
    py.exit().await;
}

fn single_berlin() -> Builder {
    let k = fixture::app_key();
    Builder::new()
        .operator_code("26201", "telekom")
        .app(fixture::app(k.clone()))
        .site(&k, "telekom", "berlin", 52.52, 13.405)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_failure_without_alternative() {
    let mut live = Live::start(single_berlin(), config()).await;
    let mut py = live.py().await;
    client(&mut py, "a", BERLIN).await;
    live.set_health("berlin", HealthCheck::ServerFail);
    let ev = py.expect_event("a", "EVENT_APPINST_HEALTH").await;
    assert_eq!(ev["health_check"], "HEALTH_CHECK_SERVER_FAIL", "{ev}");
    let nc = &ev["new_cloudlet"];
    assert!(
        nc.is_null() || nc["status"] != "FIND_FOUND",
        "an alternative where there is none: {ev}"
    );
    let msg = ev["error_msg"].as_str().unwrap_or_default();
    assert!(msg.starts_with("Current appinst is unusable"), "{ev}");
    // Deleting it is the same to the client.
    live.mirror.remove(&ObjectKey::AppInst(inst_key("berlin")));
    live.publish();
    let events = py.quiet("a", 1.0).await;
    for ev in &events {
        assert_eq!(ev["event_type"], "EVENT_APPINST_HEALTH", "{events:?}");
        assert_eq!(ev["health_check"], "HEALTH_CHECK_SERVER_FAIL", "{events:?}");
    }
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_only_instance_reports_server_fail() {
    let mut live = Live::start(single_berlin(), config()).await;
    let mut py = live.py().await;
    client(&mut py, "a", BERLIN).await;
    live.mirror.remove(&ObjectKey::AppInst(inst_key("berlin")));
    live.publish();
    let ev = py.expect_event("a", "EVENT_APPINST_HEALTH").await;
    assert_eq!(ev["health_check"], "HEALTH_CHECK_SERVER_FAIL", "{ev}");
    py.exit().await;
}

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
