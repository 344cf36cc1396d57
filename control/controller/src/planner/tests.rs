//! The planner without a store: plans and errors from a model built in memory.

use edge_model::{
    AppInst, AppInstKey, ClusterInst, ClusterKey, IpAccess, Object, ObjectKey, TrackedState,
    document,
};

use crate::error::ControlError;
use crate::model::Model;
use crate::planner::{self, Guard, Region};

fn model() -> Model {
    let doc = document::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/region.yaml"),
    )
    .expect("example");
    let mut m = Model::default();
    let mut rev = 0;
    let mut put = |m: &mut Model, o: Object| {
        rev += 1;
        m.put(o, rev);
    };
    for o in doc.cloudlets.iter().cloned().map(Object::Cloudlet) {
        put(&mut m, o);
    }
    for o in doc.flavors.iter().cloned().map(Object::Flavor) {
        put(&mut m, o);
    }
    for o in doc.apps.iter().cloned().map(Object::App) {
        put(&mut m, o);
    }
    for o in doc.cluster_insts.iter().cloned().map(Object::ClusterInst) {
        put(&mut m, o);
    }
    m
}

fn region() -> Region {
    Region { name: "eu".into() }
}

fn inst(m: &Model, name: &str, cluster: Option<&str>) -> AppInst {
    let app = m
        .of_kind(edge_model::ObjectKind::App)
        .find_map(|s| match &s.object {
            Object::App(a) if a.key.name == "road-analytics" => Some(a.key.clone()),
            _ => None,
        });
    AppInst {
        key: AppInstKey {
            organization: "VisionWorks".into(),
            name: name.into(),
        },
        app: app.expect("road-analytics"),
        cloudlet: edge_model::CloudletKey {
            organization: "vodafone".into(),
            name: "london-1".into(),
        },
        cluster: cluster.map(String::from),
        uri: String::new(),
        mapped_ports: Vec::new(),
        state: TrackedState::Ready,
        health: edge_model::HealthCheck::Ok,
        platform_health: edge_model::HealthCheck::Unknown,
    }
}

#[test]
fn shared_lb_instances_get_distinct_public_ports_and_guard_their_parents() {
    let mut m = model();
    let a = planner::create(
        &m,
        Object::AppInst(inst(&m, "a", Some("analytics-london"))),
        &region(),
    )
    .unwrap();
    let Object::AppInst(first) = &a.puts[0] else {
        panic!()
    };
    assert_eq!(first.uri, "shared.london-1-vodafone.eu.edge.example.net");
    assert_eq!(first.state, TrackedState::CreateRequested);
    let publics: Vec<i32> = first.mapped_ports.iter().map(|p| p.public_port).collect();
    assert_eq!(publics, [8080, 9000]);
    // Guards: absent self, each parent at its revision and its counter; counters bumped.
    assert!(
        a.guards
            .contains(&Guard::Absent(ObjectKey::AppInst(first.key.clone())))
    );
    assert_eq!(a.bump_refs.len(), 3, "app, cloudlet, cluster");
    m.put(Object::AppInst(first.clone()), 1000);
    // A second cluster on the same cloudlet's shared LB: 8080 is taken.
    let mut c2 = match m.get(&ObjectKey::ClusterInst(ClusterKey {
        organization: "VisionWorks".into(),
        name: "analytics-london".into(),
    })) {
        Some(s) => match &s.object {
            Object::ClusterInst(c) => c.clone(),
            _ => panic!(),
        },
        None => panic!(),
    };
    c2.key.name = "second".into();
    c2.ip_access = IpAccess::Shared;
    m.put(Object::ClusterInst(ClusterInst { ..c2 }), 1001);
    let b = planner::create(
        &m,
        Object::AppInst(inst(&m, "b", Some("second"))),
        &region(),
    )
    .unwrap();
    let Object::AppInst(second) = &b.puts[0] else {
        panic!()
    };
    let publics: Vec<i32> = second.mapped_ports.iter().map(|p| p.public_port).collect();
    // tcp:8080 is taken -> first free from 10000; udp:9000 is taken in the UDP space too.
    assert_eq!(publics, [10000, 10000]);
}

#[test]
fn updates_that_would_break_instances_are_refused() {
    let mut m = model();
    let i = planner::create(&m, Object::AppInst(inst(&m, "a", None)), &region()).unwrap();
    let Object::AppInst(created) = &i.puts[0] else {
        panic!()
    };
    m.put(Object::AppInst(created.clone()), 500);
    let Some(Object::App(mut app)) = m
        .get(&ObjectKey::App(created.app.clone()))
        .map(|s| s.object.clone())
    else {
        panic!()
    };
    app.access_ports.truncate(1);
    let e = planner::update(&m, &Object::App(app.clone()), &["access_ports".into()]).unwrap_err();
    assert!(matches!(e, ControlError::FailedPrecondition(_)), "{e}");
    // Other fields may change; an unchanged object plans nothing.
    app.access_ports = match m
        .get(&ObjectKey::App(created.app.clone()))
        .map(|s| &s.object)
    {
        Some(Object::App(a)) => a.access_ports.clone(),
        _ => panic!(),
    };
    app.image_path = "registry.example.net/new:2".into();
    assert_eq!(
        planner::update(&m, &Object::App(app.clone()), &["image_path".into()])
            .unwrap()
            .puts
            .len(),
        1
    );
    assert!(
        planner::update(&m, &Object::App(app), &["official_fqdn".into()])
            .unwrap()
            .is_empty()
    );
    // Deleting the cloudlet under an instance is refused and names it.
    let e = planner::delete(&m, &ObjectKey::Cloudlet(created.cloudlet.clone())).unwrap_err();
    assert!(e.to_string().contains("is referenced by"), "{e}");
}

#[test]
fn deletes_of_instances_go_through_the_crm() {
    let mut m = model();
    let i = planner::create(&m, Object::AppInst(inst(&m, "a", None)), &region()).unwrap();
    let Object::AppInst(created) = &i.puts[0] else {
        panic!()
    };
    m.put(
        Object::AppInst(AppInst {
            state: TrackedState::Ready,
            ..created.clone()
        }),
        600,
    );
    let key = ObjectKey::AppInst(created.key.clone());
    let d = planner::delete(&m, &key).unwrap();
    let Object::AppInst(requested) = &d.puts[0] else {
        panic!()
    };
    assert_eq!(requested.state, TrackedState::DeleteRequested);
    assert!(d.deletes.is_empty());
    m.put(Object::AppInst(requested.clone()), 601);
    // A repeated delete is idempotent; finishing removes the object.
    assert!(planner::delete(&m, &key).unwrap().is_empty());
    assert_eq!(planner::finish_delete(&m, &key).unwrap().deletes, [key]);
}
