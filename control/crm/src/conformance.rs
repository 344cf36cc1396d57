//! The one conformance suite every [`Platform`] driver runs (from its crate's tests), so the
//! drivers agree on what the CRM's state machine relies on: idempotent creates and deletes,
//! errors for what cannot work, an inventory that matches what was done, health for what runs.

use std::sync::Arc;

use edge_model::{App, AppInstKey, ClusterKey, HealthCheck, IpAccess};

use crate::platform::{ClusterSpec, InstSpec, Platform, PlatformError, Quiet};

fn cluster_spec(name: &str) -> ClusterSpec {
    ClusterSpec {
        key: ClusterKey {
            organization: "conformance".into(),
            name: name.into(),
        },
        flavor: None,
        num_masters: 1,
        num_nodes: 0,
        ip_access: IpAccess::Shared,
    }
}

fn inst_spec(app: &App, name: &str, cluster: Option<&ClusterKey>) -> InstSpec {
    InstSpec {
        key: AppInstKey {
            organization: "conformance".into(),
            name: name.into(),
        },
        app: app.clone(),
        cluster: cluster.cloned(),
        ports: app.access_ports.clone(),
    }
}

/// Runs the suite on `p`. `app` must be runnable by the driver (for `local`: a real command
/// serving its access ports).
pub async fn run(p: Arc<dyn Platform>, app: &App) {
    let info = p.info().await.expect("info");
    assert!(!info.flavors.is_empty(), "{}: offers no flavor", p.kind());
    assert!(info.resources.vcpus_max > 0, "{}: no vCPUs", p.kind());

    // Clusters: created once, the same address when created again.
    let c = cluster_spec("c1");
    let st = p.create_cluster(&c, &Quiet).await.expect("create cluster");
    let again = p
        .create_cluster(&c, &Quiet)
        .await
        .expect("create cluster again");
    assert_eq!(
        st,
        again,
        "{}: a second create changed the cluster",
        p.kind()
    );

    // An instance in a cluster that does not exist is refused, and leaves nothing.
    let orphan = inst_spec(app, "orphan", Some(&cluster_spec("missing").key));
    let e = p.create_app_inst(&orphan, &Quiet).await.unwrap_err();
    assert!(
        matches!(e, PlatformError::Missing(_) | PlatformError::Invalid(_)),
        "{e}"
    );

    // An instance runs, is listed, healthy; a second create is a no-op.
    let i = inst_spec(app, "i1", Some(&c.key));
    p.create_app_inst(&i, &Quiet)
        .await
        .expect("create instance");
    p.create_app_inst(&i, &Quiet)
        .await
        .expect("create instance again");
    let inv = p.inventory().await.expect("inventory");
    assert!(inv.insts.contains(&i.key), "{}: {inv:?}", p.kind());
    assert!(!inv.insts.contains(&orphan.key), "{}: {inv:?}", p.kind());
    assert!(inv.clusters.iter().any(|(k, s)| *k == c.key && *s == st));
    assert_eq!(p.health(&i.key), HealthCheck::Ok, "{}", p.kind());

    // Deletes: gone from the inventory, and deleting again succeeds.
    p.delete_app_inst(&i.key, &Quiet)
        .await
        .expect("delete instance");
    p.delete_app_inst(&i.key, &Quiet)
        .await
        .expect("delete instance again");
    p.delete_cluster(&c.key, &Quiet)
        .await
        .expect("delete cluster");
    p.delete_cluster(&c.key, &Quiet)
        .await
        .expect("delete cluster again");
    let inv = p.inventory().await.expect("inventory");
    assert!(
        inv.insts.is_empty() && inv.clusters.is_empty(),
        "{}: {inv:?}",
        p.kind()
    );
    assert_eq!(p.health(&i.key), HealthCheck::Unknown, "{}", p.kind());
}
