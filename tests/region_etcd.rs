//! The same region flow with the controller on a real etcd (endpoint from
//! `EDGEPLANE_ETCD_ENDPOINTS`, which `scripts/test.sh` starts; under CI a missing etcd fails).
#![cfg(feature = "etcd")]

mod common;

use std::sync::Arc;

use common::*;
use edge_model::{AppInstKey, ObjectKey};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_find_and_delete_on_etcd() {
    let Ok(endpoints) = std::env::var("EDGEPLANE_ETCD_ENDPOINTS") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide EDGEPLANE_ETCD_ENDPOINTS"
        );
        eprintln!("skipped: EDGEPLANE_ETCD_ENDPOINTS is not set");
        return;
    };
    let namespace = format!("/e2e-{}-{}/", std::process::id(), dme::ksuid::new(0));
    let opts =
        edge_store::EtcdOptions::new(endpoints.split(',').map(String::from).collect(), namespace);
    let store: Arc<dyn edge_store::Store> =
        Arc::new(edge_store::EtcdStore::connect(opts).await.expect("etcd"));
    let ctl = start_controller(store, None).await;
    let dme = start_dme(&[ctl.notify]).await;
    let mut client = ctl.client().await;
    let report = edgectl::apply(&mut client, &example())
        .await
        .expect("apply");
    ctl.wait_dme(report.revision).await;
    let berlin = Some((52.52, 13.405));
    assert_eq!(dme.find(&arena(), "26201", 52.3906, 13.0645).await, berlin);
    let key = ObjectKey::AppInst(AppInstKey {
        organization: "NimbusGames".into(),
        name: "arena-berlin".into(),
    });
    let rev = edgectl::delete_object(&mut client, &key)
        .await
        .expect("delete");
    ctl.wait_dme(rev).await;
    let found = dme.find(&arena(), "26201", 52.3906, 13.0645).await;
    assert!(found.is_some() && found != berlin, "{found:?}");
}
