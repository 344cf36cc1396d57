//! A region end to end over real sockets: documents applied through the controller API reach
//! the DME through the notify stream; deletes and maintenance take instances out of matching.

mod common;

use common::*;
use edge_api::pb;
use edge_model::{AppInstKey, CloudletKey, MaintenanceState, Object, ObjectKey};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_find_delete_and_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = start_controller_mtls(redb(dir.path()).await, None).await;
    let dme = ctl.dme().await;
    let mut client = ctl.client().await;
    let report = edgectl::apply(&mut client, &example())
        .await
        .expect("apply");
    assert!(report.created > 20, "{report:?}");
    ctl.wait_dme(report.revision).await;

    // A Telekom phone in Potsdam gets Berlin.
    let berlin = (52.52, 13.405);
    assert_eq!(
        dme.find(&arena(), "26201", 52.3906, 13.0645).await,
        Some(berlin)
    );

    // Applying the same document again changes nothing.
    let again = edgectl::apply(&mut client, &example()).await.unwrap();
    assert_eq!((again.created, again.updated), (0, 0), "{again:?}");

    // Delete the Berlin instance: the DME stops returning it.
    let key = ObjectKey::AppInst(AppInstKey {
        organization: "NimbusGames".into(),
        name: "arena-berlin".into(),
    });
    let rev = edgectl::delete_object(&mut client, &key)
        .await
        .expect("delete");
    ctl.wait_dme(rev).await;
    let found = dme.find(&arena(), "26201", 52.3906, 13.0645).await;
    assert!(found.is_some() && found != Some(berlin), "{found:?}");

    // Munich under maintenance: a phone in Munich is sent elsewhere.
    let munich = (48.1374, 11.5755);
    assert_eq!(
        dme.find(&arena(), "26201", 48.14, 11.58).await,
        Some(munich)
    );
    let mut cloudlet = match ctl
        .handle
        .core
        .show(
            None,
            Some(&ObjectKey::Cloudlet(CloudletKey {
                organization: "telekom".into(),
                name: "munich-1".into(),
            })),
            None,
        )
        .pop()
    {
        Some(Object::Cloudlet(c)) => c,
        other => panic!("munich-1: {other:?}"),
    };
    cloudlet.maintenance_state = MaintenanceState::UnderMaintenance;
    let req = pb::UpdateRequest {
        object: Some(pb::Object::from(&Object::Cloudlet(cloudlet))),
        fields: vec!["maintenance_state".into()],
    };
    let rev = edgectl::finish(client.update(req).await)
        .await
        .expect("update");
    ctl.wait_dme(rev).await;
    let found = dme.find(&arena(), "26201", 48.14, 11.58).await;
    assert!(found.is_some() && found != Some(munich), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = start_controller_mtls(redb(dir.path()).await, None).await;
    let mut client = ctl.client().await;
    edgectl::apply(&mut client, &example())
        .await
        .expect("apply");
    let before = ctl.handle.core.show(None, None, None);
    let doc = example();
    let create = |obj: Object| pb::CreateRequest {
        object: Some(pb::Object::from(&obj)),
    };

    // Dangling reference: an instance of an app that does not exist.
    let mut inst = doc.app_insts[0].clone();
    inst.key.name = "orphan".into();
    inst.app.name = "no-such-app".into();
    let e = edgectl::finish(client.create(create(Object::AppInst(inst))).await)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{}", e.message());
    assert!(e.message().contains("no-such-app"), "{}", e.message());

    // Duplicate create.
    let e = edgectl::finish(
        client
            .create(create(Object::App(doc.apps[0].clone())))
            .await,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{}", e.message());

    // Delete of a referenced object names a referrer.
    let key = pb::ObjectKey::from(&ObjectKey::App(doc.apps[0].key.clone()));
    let e = edgectl::finish(client.delete(pb::DeleteRequest { key: Some(key) }).await)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(
        e.message().contains("is referenced by AppInst"),
        "{}",
        e.message()
    );

    // Unknown and key fields in an update mask; an empty mask.
    for fields in [vec!["colour".to_string()], vec!["key".to_string()], vec![]] {
        let req = pb::UpdateRequest {
            object: Some(pb::Object::from(&Object::App(doc.apps[0].clone()))),
            fields,
        };
        let e = edgectl::finish(client.update(req).await).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    }

    // Invalid values on the wire: coordinates out of range, an unknown enum number.
    let mut bad = pb::Object::from(&Object::Cloudlet(doc.cloudlets[0].clone()));
    if let Some(pb::object::Obj::Cloudlet(c)) = &mut bad.obj {
        c.key.as_mut().unwrap().name = "new-one".into();
        c.location.as_mut().unwrap().latitude = 123.0;
    }
    let e = edgectl::finish(
        client
            .create(pb::CreateRequest {
                object: Some(bad.clone()),
            })
            .await,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("latitude"), "{}", e.message());
    if let Some(pb::object::Obj::Cloudlet(c)) = &mut bad.obj {
        c.location.as_mut().unwrap().latitude = 10.0;
        c.maintenance_state = 77;
    }
    let e = edgectl::finish(client.create(pb::CreateRequest { object: Some(bad) }).await)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());

    // Nothing of the above left a trace.
    assert_eq!(ctl.handle.core.show(None, None, None), before);

    // Concurrent conflicting creates of one instance: exactly one wins.
    let mut inst = doc.app_insts[0].clone();
    inst.key.name = "raced".into();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut c = ctl.client().await;
        let req = create(Object::AppInst(inst.clone()));
        tasks.push(tokio::spawn(async move {
            edgectl::finish(c.create(req).await).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), Code::AlreadyExists, "{}", e.message()),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_parent_delete_and_child_create_never_leave_an_orphan() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = start_controller_mtls(redb(dir.path()).await, None).await;
    let mut client = ctl.client().await;
    let doc = example();
    edgectl::apply(&mut client, &doc).await.expect("apply");
    // A fresh app per round: one task deletes it while another creates an instance of it.
    for round in 0..10 {
        let mut app = doc.apps[0].clone();
        app.key.name = format!("race-{round}");
        edgectl::finish(
            client
                .create(pb::CreateRequest {
                    object: Some(pb::Object::from(&Object::App(app.clone()))),
                })
                .await,
        )
        .await
        .expect("app");
        let mut inst = doc.app_insts[0].clone();
        inst.key.name = format!("race-inst-{round}");
        inst.app = app.key.clone();
        let (mut c1, mut c2) = (ctl.client().await, ctl.client().await);
        let app_key = pb::ObjectKey::from(&ObjectKey::App(app.key.clone()));
        let del = tokio::spawn(async move {
            edgectl::finish(c1.delete(pb::DeleteRequest { key: Some(app_key) }).await).await
        });
        let obj = pb::Object::from(&Object::AppInst(inst.clone()));
        let add = tokio::spawn(async move {
            edgectl::finish(c2.create(pb::CreateRequest { object: Some(obj) }).await).await
        });
        let (del, add) = (del.await.unwrap(), add.await.unwrap());
        let app_exists = !ctl
            .handle
            .core
            .show(None, Some(&ObjectKey::App(app.key.clone())), None)
            .is_empty();
        let inst_exists = !ctl
            .handle
            .core
            .show(None, Some(&ObjectKey::AppInst(inst.key.clone())), None)
            .is_empty();
        // Exactly one of the two wins, and the model stays consistent.
        assert_ne!(
            del.is_ok(),
            add.is_ok(),
            "round {round}: delete {del:?}, create {add:?}"
        );
        assert_eq!(app_exists, add.is_ok(), "round {round}");
        assert_eq!(inst_exists, add.is_ok(), "round {round}");
    }
}
