//! The state machine without a platform or a controller: desired objects in, decisions out.

use std::net::IpAddr;

use edge_model::{
    App, AppKey, CloudletKey, DeploymentKind, IpAccess, Object, ObjectKey, TrackedState as S,
};

use super::*;

fn berlin() -> CloudletKey {
    CloudletKey {
        organization: "telekom".into(),
        name: "berlin-1".into(),
    }
}

fn app() -> App {
    App {
        key: AppKey {
            organization: "acme".into(),
            name: "echo".into(),
            version: "1".into(),
        },
        deployment: DeploymentKind::Process,
        image_path: "echo-server".into(),
        access_ports: edge_model::parse_access_ports("tcp:7000").unwrap(),
        default_flavor: None,
        official_fqdn: Vec::new(),
        android_package_name: String::new(),
        auth_public_key: None,
        platform_app: false,
    }
}

fn cluster(state: S) -> ClusterInst {
    ClusterInst {
        key: ClusterKey {
            organization: "acme".into(),
            name: "c1".into(),
        },
        cloudlet: berlin(),
        flavor: None,
        ip_access: IpAccess::Shared,
        num_masters: 1,
        num_nodes: 0,
        state,
        node_address: None,
    }
}

fn inst(state: S) -> AppInst {
    AppInst {
        key: AppInstKey {
            organization: "acme".into(),
            name: "echo-1".into(),
        },
        app: app().key,
        cloudlet: berlin(),
        cluster: Some("c1".into()),
        uri: String::new(),
        mapped_ports: Vec::new(),
        state,
        health: HealthCheck::Unknown,
        platform_health: HealthCheck::Unknown,
    }
}

fn want(objects: Vec<Object>) -> Replica {
    let mut r = Replica::new();
    r.insert(Object::App(app()));
    for o in objects {
        r.insert(o);
    }
    r
}

/// What the CRM knows, owned, so tests can build it up.
#[derive(Default)]
struct Known {
    busy: HashSet<ObjectKey>,
    clusters: HashMap<ClusterKey, ClusterStatus>,
    insts: HashSet<AppInstKey>,
    failed: HashMap<ObjectKey, Failure>,
    health: HealthCheck,
    synced: bool,
}

impl Known {
    fn decide(&self, want: &Replica) -> Vec<Action> {
        let health = |_: &AppInstKey| self.health;
        let local = Local {
            busy: &self.busy,
            clusters: &self.clusters,
            insts: &self.insts,
            failed: &self.failed,
            health: &health,
            synced: self.synced,
        };
        decide(&berlin(), want, &local)
    }

    fn with_cluster(mut self) -> Self {
        let node_address: IpAddr = "127.100.0.2".parse().unwrap();
        self.clusters
            .insert(cluster(S::Ready).key, ClusterStatus { node_address });
        self
    }
}

/// The states reported, in order, and the keys of the operations started.
fn summary(actions: &[Action]) -> (Vec<(String, S)>, Vec<String>) {
    let mut reports = Vec::new();
    let mut ops = Vec::new();
    for a in actions {
        match a {
            Action::Report { object, .. } => {
                let state = match object {
                    Object::AppInst(i) => i.state,
                    Object::ClusterInst(c) => c.state,
                    _ => S::Unknown,
                };
                reports.push((object.key().to_string(), state));
            }
            Action::Start(op) => ops.push(
                format!("{:?}", std::mem::discriminant(op))
                    .len()
                    .to_string()
                    + &op.key().to_string(),
            ),
            Action::Forget(_) => {}
        }
    }
    (reports, ops)
}

#[test]
fn a_requested_create_starts_and_reports_creating_then_ready() {
    let w = want(vec![Object::ClusterInst(cluster(S::CreateRequested))]);
    let actions = Known::default().decide(&w);
    assert!(matches!(&actions[1], Action::Start(Op::CreateCluster(s)) if s.key.name == "c1"));
    let (reports, _) = summary(&actions);
    assert_eq!(reports[0].1, S::Creating);
    // While it runs: nothing.
    let mut busy = Known::default();
    busy.busy
        .insert(ObjectKey::ClusterInst(cluster(S::Creating).key));
    let w = want(vec![Object::ClusterInst(cluster(S::Creating))]);
    assert!(busy.decide(&w).is_empty());
    // Done: READY with the node address.
    let done = Known::default().with_cluster().decide(&w);
    let Action::Report {
        object: Object::ClusterInst(c),
        error: None,
    } = &done[0]
    else {
        panic!("{done:?}")
    };
    assert_eq!(c.state, S::Ready);
    assert_eq!(c.node_address, Some("127.100.0.2".parse().unwrap()));
}

#[test]
fn an_instance_waits_for_its_cluster_and_its_app() {
    let w = want(vec![
        Object::ClusterInst(cluster(S::Creating)),
        Object::AppInst(inst(S::CreateRequested)),
    ]);
    let mut k = Known::default();
    k.busy
        .insert(ObjectKey::ClusterInst(cluster(S::Creating).key));
    assert!(k.decide(&w).is_empty(), "no instance before its cluster");
    let k = Known::default().with_cluster();
    let actions = k.decide(&w);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Start(Op::CreateInst(s)) if s.ports.len() == 1)),
        "{actions:?}"
    );
    let mut no_app = want(vec![Object::AppInst(inst(S::CreateRequested))]);
    no_app.remove(&ObjectKey::App(app().key));
    let k = Known::default().with_cluster();
    assert!(
        !k.decide(&no_app)
            .iter()
            .any(|a| matches!(a, Action::Start(_)))
    );
}

#[test]
fn a_failure_is_reported_with_its_reason_until_the_controller_moves_on() {
    let key = ObjectKey::AppInst(inst(S::Creating).key);
    let mut k = Known::default().with_cluster();
    k.failed.insert(
        key.clone(),
        Failure {
            state: S::CreateError,
            reason: "port tcp:7000 on 127.100.0.2 is in use".into(),
        },
    );
    let w = want(vec![Object::AppInst(inst(S::Creating))]);
    let actions = k.decide(&w);
    assert_eq!(actions.len(), 1, "{actions:?}");
    let Action::Report { object, error } = &actions[0] else {
        panic!()
    };
    assert!(matches!(object, Object::AppInst(i) if i.state == S::CreateError));
    assert!(error.as_deref().unwrap().contains("in use"));
    // The controller undid the create: the failure is forgotten.
    let gone = want(vec![]);
    assert_eq!(k.decide(&gone), vec![Action::Forget(key)]);
}

#[test]
fn a_restarted_crm_adopts_what_exists_and_recreates_what_was_lost() {
    // CREATING and already on the platform: READY, nothing started.
    let mut k = Known::default().with_cluster();
    k.insts.insert(inst(S::Creating).key);
    k.health = HealthCheck::Ok;
    let w = want(vec![
        Object::ClusterInst(cluster(S::Ready)),
        Object::AppInst(inst(S::Creating)),
    ]);
    let (reports, ops) = summary(&k.decide(&w));
    assert!(ops.is_empty(), "{ops:?}");
    assert!(reports.iter().any(|(_, s)| *s == S::Ready));
    // READY but lost: created again, quietly.
    let k = Known::default().with_cluster();
    let w = want(vec![Object::AppInst(AppInst {
        platform_health: HealthCheck::Ok,
        ..inst(S::Ready)
    })]);
    let actions = k.decide(&w);
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert!(matches!(actions[0], Action::Start(Op::CreateInst(_))));
}

#[test]
fn platform_health_changes_are_reported() {
    let mut k = Known::default().with_cluster();
    k.insts.insert(inst(S::Ready).key);
    k.health = HealthCheck::ServerFail;
    let w = want(vec![Object::AppInst(AppInst {
        platform_health: HealthCheck::Ok,
        ..inst(S::Ready)
    })]);
    let actions = k.decide(&w);
    assert!(
        matches!(&actions[..], [Action::Report { object: Object::AppInst(i), .. }] if i.platform_health == HealthCheck::ServerFail),
        "{actions:?}"
    );
    k.health = HealthCheck::Ok;
    assert!(k.decide(&w).is_empty());
}

#[test]
fn deletes_finish_and_orphans_go_once_synced() {
    let mut k = Known::default().with_cluster();
    k.insts.insert(inst(S::Ready).key);
    let w = want(vec![
        Object::ClusterInst(cluster(S::Ready)),
        Object::AppInst(inst(S::DeleteRequested)),
    ]);
    let actions = k.decide(&w);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Start(Op::DeleteInst(_))))
    );
    // Already gone from the platform: DELETE_DONE.
    let k2 = Known::default().with_cluster();
    let (reports, _) = summary(&k2.decide(&w));
    assert!(reports.iter().any(|(_, s)| *s == S::DeleteDone));
    // Deleted while the CRM was away: removed, but only once the snapshot is complete.
    let empty = want(vec![]);
    assert!(k.decide(&empty).is_empty());
    k.synced = true;
    let actions = k.decide(&empty);
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Start(Op::DeleteInst(_))))
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Start(Op::DeleteCluster(_))))
    );
}

#[test]
fn deciding_for_some_keys_decides_as_the_whole_would_for_them() {
    let mut k = Known::default().with_cluster();
    k.insts.insert(inst(S::Ready).key);
    k.synced = true;
    let w = want(vec![
        Object::ClusterInst(cluster(S::Ready)),
        Object::AppInst(inst(S::DeleteRequested)),
    ]);
    let health = |_: &AppInstKey| k.health;
    let local = Local {
        busy: &k.busy,
        clusters: &k.clusters,
        insts: &k.insts,
        failed: &k.failed,
        health: &health,
        synced: k.synced,
    };
    let key = ObjectKey::AppInst(inst(S::Ready).key);
    let some = decide_for(&berlin(), &w, &local, std::slice::from_ref(&key));
    let about_key = |a: &Action| match a {
        Action::Start(op) => op.key() == key,
        Action::Report { object, .. } => object.key() == key,
        Action::Forget(k) => *k == key,
    };
    let all: Vec<Action> = decide(&berlin(), &w, &local)
        .into_iter()
        .filter(|a| about_key(a))
        .collect();
    assert!(!some.is_empty());
    assert_eq!(some, all, "the same decisions about the instance");
    // A key the controller no longer has, but the platform does: an orphan, deleted.
    let gone = want(vec![Object::ClusterInst(cluster(S::Ready))]);
    let some = decide_for(&berlin(), &gone, &local, &[key]);
    assert!(
        matches!(&some[..], [Action::Start(Op::DeleteInst(_))]),
        "{some:?}"
    );
}
