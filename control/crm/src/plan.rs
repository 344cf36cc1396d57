//! The CRM's state machine, without I/O: from what the controller wants on a cloudlet (its
//! clusters and instances, each in a lifecycle state) and what the CRM knows locally (what the
//! platform has, which operations are running, which failed and why), decide which platform
//! operations to start and which states to report. Run again after every change; a decision is
//! only ever a function of the two sides, so a CRM that restarts or reconnects converges
//! without remembering anything else.
//!
//! The rules, per object (upstream's `crm_state.md`, who moves what):
//! - `*_REQUESTED`: start the operation and report `CREATING` / `UPDATING` / `DELETING`.
//! - In flight: nothing until it ends; then `READY`, or the error state with the reason.
//! - `CREATING` with nothing running (a CRM that restarted mid-operation): what the platform
//!   has decides: there → `READY`, else start again. Deletes alike.
//! - `READY` but missing on the platform: recreate it quietly (the platform lost it).
//! - `READY` whose platform health differs from the reported one: report it.
//! - On the platform but not wanted at all (deleted while the CRM was away): delete it, once
//!   the controller's snapshot is complete.
//! - An instance waits for its cluster to exist on the platform, and for its App.

use std::collections::{HashMap, HashSet};

use edge_api::subscriber::Replica;
use edge_model::{
    AppInst, AppInstKey, CloudletKey, ClusterInst, ClusterKey, HealthCheck, Object, ObjectKey,
    TrackedState,
};

use crate::platform::{ClusterSpec, ClusterStatus, InstSpec};

/// A platform operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    CreateCluster(ClusterSpec),
    UpdateCluster(ClusterSpec),
    DeleteCluster(ClusterKey),
    CreateInst(InstSpec),
    UpdateInst(InstSpec),
    DeleteInst(AppInstKey),
}

impl Op {
    pub fn key(&self) -> ObjectKey {
        match self {
            Self::CreateCluster(s) | Self::UpdateCluster(s) => {
                ObjectKey::ClusterInst(s.key.clone())
            }
            Self::DeleteCluster(k) => ObjectKey::ClusterInst(k.clone()),
            Self::CreateInst(s) | Self::UpdateInst(s) => ObjectKey::AppInst(s.key.clone()),
            Self::DeleteInst(k) => ObjectKey::AppInst(k.clone()),
        }
    }

    /// The state an object is in while this runs, and the one it ends in when it fails.
    pub fn states(&self) -> (TrackedState, TrackedState) {
        match self {
            Self::CreateCluster(_) | Self::CreateInst(_) => {
                (TrackedState::Creating, TrackedState::CreateError)
            }
            Self::UpdateCluster(_) | Self::UpdateInst(_) => {
                (TrackedState::Updating, TrackedState::UpdateError)
            }
            Self::DeleteCluster(_) | Self::DeleteInst(_) => {
                (TrackedState::Deleting, TrackedState::DeleteError)
            }
        }
    }
}

/// A failed operation, remembered until the controller has moved the object on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The state the failure is reported as.
    pub state: TrackedState,
    pub reason: String,
}

/// What the CRM knows locally.
pub struct Local<'a> {
    /// Objects with an operation running.
    pub busy: &'a HashSet<ObjectKey>,
    pub clusters: &'a HashMap<ClusterKey, ClusterStatus>,
    pub insts: &'a HashSet<AppInstKey>,
    pub failed: &'a HashMap<ObjectKey, Failure>,
    /// The platform's view of an instance's health.
    pub health: &'a dyn Fn(&AppInstKey) -> HealthCheck,
    /// The controller's snapshot is complete: what it lacks is really gone.
    pub synced: bool,
}

/// One decision.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Start(Op),
    /// Report this object (its state and the fields the CRM owns); `error` is the reason of a
    /// failure, sent ahead of it as a progress line.
    Report {
        object: Object,
        error: Option<String>,
    },
    /// The failure of this object is settled (the controller moved it on): forget it.
    Forget(ObjectKey),
}

/// The decisions for everything on `cloudlet`.
pub fn decide(cloudlet: &CloudletKey, want: &Replica, local: &Local<'_>) -> Vec<Action> {
    let mut keys: Vec<ObjectKey> = want
        .cluster_insts()
        .filter(|c| c.cloudlet == *cloudlet)
        .map(|c| ObjectKey::ClusterInst(c.key.clone()))
        .chain(
            want.app_insts()
                .filter(|i| i.cloudlet == *cloudlet)
                .map(|i| ObjectKey::AppInst(i.key.clone())),
        )
        .chain(
            local
                .clusters
                .keys()
                .map(|k| ObjectKey::ClusterInst(k.clone())),
        )
        .chain(local.insts.iter().map(|k| ObjectKey::AppInst(k.clone())))
        .chain(local.failed.keys().cloned())
        .collect();
    // Clusters before instances, each in key order: the same input decides the same.
    keys.sort();
    keys.dedup();
    decide_for(cloudlet, want, local, &keys)
}

/// The decisions for `keys` only (what changed since the last decision): the CRM's work per
/// change stays the same however many objects the cloudlet has.
pub fn decide_for(
    cloudlet: &CloudletKey,
    want: &Replica,
    local: &Local<'_>,
    keys: &[ObjectKey],
) -> Vec<Action> {
    let mut out = Vec::new();
    for key in keys {
        let wanted = match key {
            ObjectKey::ClusterInst(k) => {
                match want.cluster_inst(k).filter(|c| c.cloudlet == *cloudlet) {
                    Some(c) => {
                        cluster(want, c, local, &mut out);
                        Some(c.state)
                    }
                    None => None,
                }
            }
            ObjectKey::AppInst(k) => match want.app_inst(k).filter(|i| i.cloudlet == *cloudlet) {
                Some(i) => {
                    inst(want, i, local, &mut out);
                    Some(i.state)
                }
                None => None,
            },
            _ => continue,
        };
        if let Some(f) = local.failed.get(key)
            && !wanted.is_some_and(|s| in_phase(s, f.state))
        {
            out.push(Action::Forget(key.clone()));
        }
        if wanted.is_none() && local.synced && !local.busy.contains(key) {
            orphan(key, local, &mut out);
        }
    }
    out
}

/// Whether `state` is still the operation that failed with `error`.
fn in_phase(state: TrackedState, error: TrackedState) -> bool {
    use TrackedState as S;
    matches!(
        (error, state),
        (
            S::CreateError,
            S::CreateRequested | S::Creating | S::CreateError
        ) | (
            S::UpdateError,
            S::UpdateRequested | S::Updating | S::UpdateError
        ) | (
            S::DeleteError,
            S::DeleteRequested | S::Deleting | S::DeleteError
        )
    )
}

fn cluster(want: &Replica, c: &ClusterInst, local: &Local<'_>, out: &mut Vec<Action>) {
    let key = ObjectKey::ClusterInst(c.key.clone());
    if local.busy.contains(&key) {
        return;
    }
    let report = |state, status: Option<&ClusterStatus>| {
        Object::ClusterInst(ClusterInst {
            state,
            node_address: status.map(|s| s.node_address).or(c.node_address),
            ..c.clone()
        })
    };
    if let Some(f) = local
        .failed
        .get(&key)
        .filter(|f| in_phase(c.state, f.state))
    {
        return out.push(failure(report(f.state, None), f));
    }
    let have = local.clusters.get(&c.key);
    let spec = || ClusterSpec {
        key: c.key.clone(),
        flavor: c.flavor.as_ref().and_then(|f| want.flavor(f).cloned()),
        num_masters: c.num_masters,
        num_nodes: c.num_nodes,
        ip_access: c.ip_access,
    };
    use TrackedState as S;
    match (c.state, have) {
        (S::CreateRequested | S::Creating, Some(st)) => {
            out.push(report_ok(report(S::Ready, Some(st))));
        }
        (S::CreateRequested, None) => {
            start(out, Op::CreateCluster(spec()), report(S::Creating, None))
        }
        (S::Creating, None) | (S::Ready, None) => {
            out.push(Action::Start(Op::CreateCluster(spec())))
        }
        (S::UpdateRequested, _) => start(out, Op::UpdateCluster(spec()), report(S::Updating, None)),
        (S::Updating, _) => out.push(Action::Start(Op::UpdateCluster(spec()))),
        (S::DeleteRequested, Some(_)) => {
            start(
                out,
                Op::DeleteCluster(c.key.clone()),
                report(S::Deleting, None),
            );
        }
        (S::Deleting, Some(_)) => out.push(Action::Start(Op::DeleteCluster(c.key.clone()))),
        (S::DeleteRequested | S::Deleting, None) => {
            out.push(report_ok(report(S::DeleteDone, None)))
        }
        (S::Ready, Some(st)) if c.node_address != Some(st.node_address) => {
            out.push(report_ok(report(S::Ready, Some(st))));
        }
        _ => {}
    }
}

fn inst(want: &Replica, i: &AppInst, local: &Local<'_>, out: &mut Vec<Action>) {
    let key = ObjectKey::AppInst(i.key.clone());
    if local.busy.contains(&key) {
        return;
    }
    let health = (local.health)(&i.key);
    let report = |state, platform_health| {
        Object::AppInst(AppInst {
            state,
            platform_health,
            ..i.clone()
        })
    };
    if let Some(f) = local
        .failed
        .get(&key)
        .filter(|f| in_phase(i.state, f.state))
    {
        return out.push(failure(report(f.state, i.platform_health), f));
    }
    let have = local.insts.contains(&i.key);
    let cluster = i.cluster.as_ref().map(|name| ClusterKey {
        organization: i.key.organization.clone(),
        name: name.clone(),
    });
    // What it takes to run: its App, and its cluster on the platform.
    let spec = || {
        let app = want.app(&i.app)?.clone();
        if cluster
            .as_ref()
            .is_some_and(|c| !local.clusters.contains_key(c))
        {
            return None;
        }
        let ports = app.access_ports.clone();
        Some(InstSpec {
            key: i.key.clone(),
            app,
            cluster: cluster.clone(),
            ports,
        })
    };
    use TrackedState as S;
    match (i.state, have) {
        (S::CreateRequested | S::Creating, true) => out.push(report_ok(report(S::Ready, health))),
        (S::CreateRequested, false) => {
            if let Some(s) = spec() {
                start(
                    out,
                    Op::CreateInst(s),
                    report(S::Creating, i.platform_health),
                );
            }
        }
        (S::Creating | S::Ready, false) => {
            if let Some(s) = spec() {
                out.push(Action::Start(Op::CreateInst(s)));
            }
        }
        (S::UpdateRequested, _) => {
            if let Some(s) = spec() {
                start(
                    out,
                    Op::UpdateInst(s),
                    report(S::Updating, i.platform_health),
                );
            }
        }
        (S::Updating, _) => {
            if let Some(s) = spec() {
                out.push(Action::Start(Op::UpdateInst(s)));
            }
        }
        (S::DeleteRequested, true) => {
            start(
                out,
                Op::DeleteInst(i.key.clone()),
                report(S::Deleting, i.platform_health),
            );
        }
        (S::Deleting, true) => out.push(Action::Start(Op::DeleteInst(i.key.clone()))),
        (S::DeleteRequested | S::Deleting, false) => {
            out.push(report_ok(report(S::DeleteDone, i.platform_health)));
        }
        (S::Ready, true) if health != HealthCheck::Unknown && health != i.platform_health => {
            out.push(report_ok(report(S::Ready, health)));
        }
        _ => {}
    }
}

/// A platform object the controller no longer has (deleted while the CRM was away): delete it.
fn orphan(key: &ObjectKey, local: &Local<'_>, out: &mut Vec<Action>) {
    match key {
        ObjectKey::AppInst(k) if local.insts.contains(k) => {
            out.push(Action::Start(Op::DeleteInst(k.clone())));
        }
        ObjectKey::ClusterInst(k) if local.clusters.contains_key(k) => {
            out.push(Action::Start(Op::DeleteCluster(k.clone())));
        }
        _ => {}
    }
}

fn start(out: &mut Vec<Action>, op: Op, report: Object) {
    out.push(report_ok(report));
    out.push(Action::Start(op));
}

fn report_ok(object: Object) -> Action {
    Action::Report {
        object,
        error: None,
    }
}

fn failure(object: Object, f: &Failure) -> Action {
    Action::Report {
        object,
        error: Some(f.reason.clone()),
    }
}

#[cfg(test)]
mod tests;
