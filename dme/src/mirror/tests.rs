//! Incremental builds and the upstream defects the mirror fixes.

use std::sync::Arc;

use edge_model::{CloudletState, HealthCheck, MaintenanceState};
use geodata::LatLon;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::fixture::{self, Builder};
use crate::matcher::find;
use crate::mirror::Mirror;
use crate::tables::{AppKeyRef, Tables};

fn two_apps() -> Builder {
    let a = fixture::app_key();
    let mut b_key = fixture::app_key();
    b_key.name = "other".into();
    Builder::new()
        .app(fixture::app(a.clone()))
        .app(fixture::app(b_key.clone()))
        .site(&a, "telekom", "berlin", 52.52, 13.405)
        .cloudlet("telekom", "paris", 48.85, 2.35)
        .inst(&b_key, "other-paris", "telekom", "paris")
}

fn found(t: &Tables, app: &str) -> Vec<String> {
    let key = AppKeyRef {
        organization: "devorg",
        name: app,
        version: "1.0",
    };
    let Some(table) = t.app(&key) else {
        return Vec::new();
    };
    let at = LatLon::new(50.0, 8.0).unwrap();
    find(
        table,
        &t.settings,
        "telekom",
        at,
        5,
        &mut StdRng::seed_from_u64(1),
    )
    .iter()
    .map(|f| f.name.to_string())
    .collect()
}

#[test]
fn only_touched_apps_are_rebuilt() {
    let doc = two_apps().build();
    let mut m = Mirror::from_deployment(&doc);
    let t1 = m.build(None, 1);
    assert!(!m.is_dirty());
    let mut inst = doc.app_insts[0].clone();
    inst.health = HealthCheck::ServerFail;
    m.upsert_inst(inst);
    let t2 = m.build(Some(&t1), 2);
    let other = AppKeyRef {
        organization: "devorg",
        name: "other",
        version: "1.0",
    };
    assert!(Arc::ptr_eq(
        t1.app(&other).unwrap(),
        t2.app(&other).unwrap()
    ));
    assert!(found(&t2, "app").is_empty());
    // A cloudlet change rebuilds exactly the apps with instances there.
    let mut paris = doc.cloudlets[1].clone();
    paris.maintenance_state = MaintenanceState::UnderMaintenance;
    m.upsert_cloudlet(paris);
    let t3 = m.build(Some(&t2), 3);
    let app = AppKeyRef {
        organization: "devorg",
        name: "app",
        version: "1.0",
    };
    assert!(Arc::ptr_eq(t2.app(&app).unwrap(), t3.app(&app).unwrap()));
    assert!(found(&t3, "other").is_empty());
    assert_eq!(found(&t2, "other"), ["other-paris"]);
}

#[test]
fn cloudlet_info_sets_online_state_without_clobbering_maintenance() {
    let doc = two_apps().build();
    let mut m = Mirror::from_deployment(&doc);
    let key = doc.cloudlets[0].key.clone();
    let mut berlin = doc.cloudlets[0].clone();
    berlin.maintenance_state = MaintenanceState::UnderMaintenance;
    m.upsert_cloudlet(berlin.clone());
    // The CRM reports READY: the cloudlet stays under maintenance.
    m.set_cloudlet_state(&key, CloudletState::Ready);
    assert!(found(&m.build(None, 1), "app").is_empty());
    berlin.maintenance_state = MaintenanceState::NormalOperation;
    m.upsert_cloudlet(berlin);
    assert_eq!(found(&m.build(None, 2), "app"), ["berlin"]);
    // CloudletInfo says offline, then disappears: unusable both times.
    m.set_cloudlet_state(&key, CloudletState::Offline);
    assert!(found(&m.build(None, 3), "app").is_empty());
    m.remove_cloudlet_state(&key);
    assert!(found(&m.build(None, 4), "app").is_empty());
}

#[test]
fn objects_may_arrive_in_any_order() {
    let doc = two_apps().build();
    let mut m = Mirror::new();
    // Instance and CloudletInfo before the app and the cloudlet.
    m.upsert_inst(doc.app_insts[0].clone());
    m.set_cloudlet_state(&doc.cloudlets[0].key, CloudletState::Ready);
    assert!(found(&m.build(None, 1), "app").is_empty());
    m.upsert_app(doc.apps[0].clone());
    let mut berlin = doc.cloudlets[0].clone();
    berlin.state = CloudletState::Unknown;
    m.upsert_cloudlet(berlin);
    assert_eq!(found(&m.build(None, 2), "app"), ["berlin"]);
}

#[test]
fn a_newly_learned_failing_instance_is_not_served() {
    let mut doc = two_apps().build();
    doc.app_insts[0].health = HealthCheck::ServerFail;
    let mut m = Mirror::new();
    m.upsert_app(doc.apps[0].clone());
    m.upsert_cloudlet(doc.cloudlets[0].clone());
    m.upsert_inst(doc.app_insts[0].clone());
    assert!(found(&m.build(None, 1), "app").is_empty());
}

#[test]
fn removals_and_moves_keep_indexes_consistent() {
    let doc = two_apps().build();
    let mut m = Mirror::from_deployment(&doc);
    let t = m.build(None, 1);
    // Move the Berlin instance to Paris, then delete it.
    let mut inst = doc.app_insts[0].clone();
    inst.cloudlet = doc.cloudlets[1].key.clone();
    m.upsert_inst(inst.clone());
    let t2 = m.build(Some(&t), 2);
    let key = AppKeyRef {
        organization: "devorg",
        name: "app",
        version: "1.0",
    };
    assert_eq!(t2.app(&key).unwrap().insts[0].cloudlet.key.name, "paris");
    m.remove_inst(&inst.key);
    m.remove_cloudlet(&doc.cloudlets[0].key);
    let t3 = m.build(Some(&t2), 3);
    assert!(found(&t3, "app").is_empty());
    assert_eq!(m.inst_count(), 1);
    m.remove_app(&doc.apps[0].key);
    assert!(m.build(Some(&t3), 4).app(&key).is_none());
}

#[test]
fn health_changes_patch_the_published_table_without_a_rebuild() {
    let doc = two_apps().build();
    let mut m = Mirror::from_deployment(&doc);
    let t1 = m.build(None, 1);
    let mut inst = doc.app_insts[0].clone();
    inst.health = HealthCheck::ServerFail;
    m.upsert_inst(inst.clone());
    assert!(m.is_dirty());
    let t2 = m.build(Some(&t1), 2);
    let app = AppKeyRef {
        organization: "devorg",
        name: "app",
        version: "1.0",
    };
    // Same table (no rebuild), and both snapshots see the change: it was patched in place.
    assert!(Arc::ptr_eq(t1.app(&app).unwrap(), t2.app(&app).unwrap()));
    assert!(found(&t1, "app").is_empty());
    assert!(found(&t2, "app").is_empty());
    inst.health = HealthCheck::Ok;
    m.upsert_inst(inst);
    let t3 = m.build(Some(&t2), 3);
    assert_eq!(found(&t3, "app"), ["berlin"]);
}

#[test]
fn rebuilt_apps_keep_their_counters() {
    use crate::api_stats::{Method, Outcome};
    use std::time::Duration;
    let doc = two_apps().build();
    let mut m = Mirror::from_deployment(&doc);
    let t1 = m.build(None, 1);
    let key = AppKeyRef {
        organization: "devorg",
        name: "app",
        version: "1.0",
    };
    let stats = t1.app(&key).unwrap().stats.clone();
    stats.record(Method::FindCloudlet, Outcome::Found, Duration::ZERO);
    let mut inst = doc
        .app_insts
        .iter()
        .find(|i| i.app.name == "app")
        .unwrap()
        .clone();
    inst.uri = "moved.example.net".into();
    m.upsert_inst(inst);
    let t2 = m.build(Some(&t1), 2);
    let rebuilt = t2.app(&key).unwrap();
    assert!(
        !Arc::ptr_eq(t1.app(&key).unwrap(), rebuilt),
        "the app was rebuilt"
    );
    assert!(
        Arc::ptr_eq(&stats, &rebuilt.stats),
        "with the same counters"
    );
    // A snapshot built without the previous one takes them over when it replaces it.
    let mut t3 = Mirror::from_deployment(&doc).build(None, 3);
    assert!(!Arc::ptr_eq(&stats, &t3.app(&key).unwrap().stats));
    t3.take_stats_from(&t2);
    assert_eq!(
        t3.app(&key)
            .unwrap()
            .stats
            .totals(Method::FindCloudlet)
            .found,
        1
    );
}
