//! CRM reports without a store: which transitions are taken, and what each does.

use edge_model::{
    AppInst, AppInstKey, AppKey, CloudletKey, ClusterInst, ClusterKey, HealthCheck, IpAccess,
    Object, TrackedState,
};

use super::*;

fn inst(state: TrackedState, health: HealthCheck, platform: HealthCheck) -> AppInst {
    AppInst {
        key: AppInstKey {
            organization: "acme".into(),
            name: "game-1".into(),
        },
        app: AppKey {
            organization: "acme".into(),
            name: "game".into(),
            version: "1".into(),
        },
        cloudlet: CloudletKey {
            organization: "telekom".into(),
            name: "berlin-1".into(),
        },
        cluster: None,
        uri: String::new(),
        mapped_ports: Vec::new(),
        state,
        health,
        platform_health: platform,
    }
}

fn model_with(o: Object) -> Model {
    let mut m = Model::default();
    m.put(o, 7);
    m
}

fn reported(state: TrackedState, platform: HealthCheck) -> Object {
    Object::AppInst(inst(state, HealthCheck::Unknown, platform))
}

/// The instance the plan writes, if it writes one.
fn put(p: &Plan) -> Option<&AppInst> {
    match p.puts.first() {
        Some(Object::AppInst(i)) => Some(i),
        _ => None,
    }
}

#[test]
fn the_crm_moves_only_out_of_the_states_it_owns() {
    use TrackedState as S;
    for (from, to) in [
        (S::CreateRequested, S::Creating),
        (S::Creating, S::Ready),
        (S::CreateRequested, S::CreateError),
        (S::UpdateRequested, S::Updating),
        (S::Updating, S::UpdateError),
        (S::DeleteRequested, S::Deleting),
        (S::Deleting, S::DeleteDone),
        (S::Ready, S::Ready),
    ] {
        assert!(transition_ok(from, to), "{from:?} -> {to:?}");
    }
    for (from, to) in [
        (S::Ready, S::Creating),
        (S::Ready, S::DeleteDone),
        (S::DeleteRequested, S::Ready),
        (S::CreateRequested, S::Deleting),
        (S::Creating, S::CreateRequested),
    ] {
        assert!(!transition_ok(from, to), "{from:?} -> {to:?}");
    }
    let m = model_with(Object::AppInst(inst(
        S::Ready,
        HealthCheck::Ok,
        HealthCheck::Ok,
    )));
    let e = plan(&m, &reported(S::DeleteDone, HealthCheck::Unknown)).unwrap_err();
    assert!(e.to_string().contains("READY"), "{e}");
}

#[test]
fn ready_makes_unknown_health_ok_and_failures_undo_or_revert() {
    use TrackedState as S;
    let m = model_with(Object::AppInst(inst(
        S::Creating,
        HealthCheck::Unknown,
        HealthCheck::Unknown,
    )));
    let p = plan(&m, &reported(S::Ready, HealthCheck::Ok)).unwrap();
    let i = put(&p).unwrap();
    assert_eq!(
        (i.state, i.health, i.platform_health),
        (S::Ready, HealthCheck::Ok, HealthCheck::Ok)
    );
    assert_eq!(p.guards.len(), 1);
    // A failed create is undone: the object goes.
    let p = plan(&m, &reported(S::CreateError, HealthCheck::Unknown)).unwrap();
    assert_eq!(p.deletes.len(), 1);
    assert!(p.puts.is_empty());
    // A failed update goes back to READY.
    let m = model_with(Object::AppInst(inst(
        S::Updating,
        HealthCheck::Ok,
        HealthCheck::Ok,
    )));
    let p = plan(&m, &reported(S::UpdateError, HealthCheck::Unknown)).unwrap();
    assert_eq!(put(&p).unwrap().state, S::Ready);
    // A delete reported done twice is no error the second time.
    let empty = Model::default();
    let p = plan(&empty, &reported(S::DeleteDone, HealthCheck::Unknown)).unwrap();
    assert!(p.is_empty());
    assert!(plan(&empty, &reported(S::Ready, HealthCheck::Ok)).is_err());
}

#[test]
fn the_platforms_failure_wins_while_it_lasts() {
    use HealthCheck as H;
    assert_eq!(merged_health(H::Ok, H::Ok, H::ServerFail), H::ServerFail);
    assert_eq!(merged_health(H::ServerFail, H::ServerFail, H::Ok), H::Ok);
    // A failure the root LB reported is not the platform's to clear.
    assert_eq!(merged_health(H::ServerFail, H::Ok, H::Ok), H::ServerFail);
    assert_eq!(
        merged_health(H::RootlbOffline, H::Ok, H::Ok),
        H::RootlbOffline
    );

    let m = model_with(Object::AppInst(inst(TrackedState::Ready, H::Ok, H::Ok)));
    let p = plan(&m, &reported(TrackedState::Ready, H::ServerFail)).unwrap();
    let i = put(&p).unwrap();
    assert_eq!(
        (i.health, i.platform_health),
        (H::ServerFail, H::ServerFail)
    );
    // The same report again writes nothing.
    let again = model_with(Object::AppInst(i.clone()));
    assert!(
        plan(&again, &reported(TrackedState::Ready, H::ServerFail))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_ready_cluster_gets_its_node_address() {
    let c = ClusterInst {
        key: ClusterKey {
            organization: "acme".into(),
            name: "c1".into(),
        },
        cloudlet: CloudletKey {
            organization: "telekom".into(),
            name: "berlin-1".into(),
        },
        flavor: None,
        ip_access: IpAccess::Shared,
        num_masters: 1,
        num_nodes: 0,
        state: TrackedState::CreateRequested,
        node_address: None,
    };
    let m = model_with(Object::ClusterInst(c.clone()));
    let r = ClusterInst {
        state: TrackedState::Ready,
        node_address: Some("127.100.1.2".parse().unwrap()),
        ..c
    };
    let p = plan(&m, &Object::ClusterInst(r)).unwrap();
    let Some(Object::ClusterInst(done)) = p.puts.first() else {
        panic!("{p:?}")
    };
    assert_eq!(done.state, TrackedState::Ready);
    assert_eq!(done.node_address, Some("127.100.1.2".parse().unwrap()));
}
