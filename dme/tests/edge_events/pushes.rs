//! Pushes reach exactly the affected clients.

use super::*;

// ---- 4. Pushes reach exactly the affected clients ----------------------------------------

/// Clients a and b at Berlin (on berlin), c at Munich (on munich).
pub(crate) async fn three_clients(live: &Live) -> PyEdge {
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

pub(crate) fn single_berlin() -> Builder {
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
