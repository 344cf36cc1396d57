//! Edge events driven by the controller, end to end over real sockets: a change applied
//! through the controller's API reaches the DME over notify and is pushed to the one stream
//! it concerns; `edgectl request-latency` reaches the instance's clients through the
//! controller's relay.

mod common;

use std::time::Instant;

use common::*;
use dme::edge_client::EdgeStream;
use dme::proto;
use dme::proto::server_edge_event::ServerEventType as Out;
use edge_api::pb;
use edge_model::{CloudletKey, MaintenanceState, Object, ObjectKey};

async fn open(dme: &Dme, lat: f64, lon: f64) -> (EdgeStream, String) {
    let (session, found) = dme.register_and_find(&arena(), "26201", lat, lon).await;
    let mut c = dme.client().await;
    let s = EdgeStream::open(&mut c, &session, &found.edge_events_cookie, "26201").await;
    (s, found.fqdn)
}

async fn set_maintenance(ctl: &Controller, m: MaintenanceState) {
    let key = ObjectKey::Cloudlet(CloudletKey {
        organization: "telekom".into(),
        name: "munich-1".into(),
    });
    let Some(Object::Cloudlet(mut c)) = ctl.handle.core.show(None, Some(&key), None).pop() else {
        panic!("munich-1 missing");
    };
    c.maintenance_state = m;
    let req = pb::UpdateRequest {
        object: Some(pb::Object::from(&Object::Cloudlet(c))),
        fields: vec!["maintenance_state".into()],
    };
    let mut client = ctl.client().await;
    edgectl::finish(client.update(req).await)
        .await
        .expect("update");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_changes_and_operator_requests_reach_exactly_their_streams() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = start_controller_mtls(redb(dir.path()).await, None).await;
    let dme = ctl.dme().await;
    let report = edgectl::apply(&mut ctl.client().await, &example())
        .await
        .expect("apply");
    ctl.wait_dme(report.revision).await;

    let (mut munich, munich_fqdn) = open(&dme, 48.14, 11.58).await;
    let (mut berlin, berlin_fqdn) = open(&dme, 52.39, 13.06).await;
    assert_ne!(munich_fqdn, berlin_fqdn);

    // Maintenance on munich-1, through the controller: only the Munich stream is told, with
    // another instance to go to.
    let started = Instant::now();
    set_maintenance(&ctl, MaintenanceState::UnderMaintenance).await;
    let e = munich.next().await;
    let took = started.elapsed();
    assert_eq!(e.event_type, Out::EventCloudletMaintenance as i32, "{e:?}");
    assert_eq!(
        e.maintenance_state,
        proto::MaintenanceState::UnderMaintenance as i32
    );
    let moved_to = e.new_cloudlet.expect("another instance").fqdn;
    assert_ne!(moved_to, munich_fqdn);
    eprintln!("controller update -> pushed event: {took:?}");
    berlin.quiet(500).await;

    // Back to normal: the Munich client is sent back to munich-1.
    set_maintenance(&ctl, MaintenanceState::NormalOperation).await;
    let e = munich.next().await;
    assert_eq!(e.event_type, Out::EventCloudletUpdate as i32, "{e:?}");
    assert_eq!(e.new_cloudlet.unwrap().fqdn, munich_fqdn);
    berlin.quiet(500).await;

    // edgectl request-latency for the Berlin instance: its stream is asked, Munich's is not.
    let Some(Object::AppInst(inst)) = ctl
        .handle
        .core
        .show(Some(edge_model::ObjectKind::AppInst), None, None)
        .into_iter()
        .find(|o| matches!(o, Object::AppInst(i) if i.uri == berlin_fqdn))
    else {
        panic!("no instance at {berlin_fqdn}");
    };
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgectl"))
        .args(["--addr", &ctl.api.to_string()])
        .args(pki().flags(edge_tls::Role::Edgectl))
        .args(["request-latency", "--appinst"])
        .arg(format!("{}/{}", inst.key.organization, inst.key.name))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("through 1 DME"), "{stdout}");
    let e = berlin.next().await;
    assert_eq!(e.event_type, Out::EventLatencyRequest as i32, "{e:?}");
    munich.quiet(500).await;

    // A request for an instance that does not exist is refused by name.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgectl"))
        .args(["--addr", &ctl.api.to_string()])
        .args(pki().flags(edge_tls::Role::Edgectl))
        .args(["request-latency", "--appinst", "NimbusGames/nope"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("nope"), "{stderr}");
}
