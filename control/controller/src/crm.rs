//! The in-process CRM for cloudlets on the `fake` platform: it reports such cloudlets READY and
//! completes their clusters' and instances' requested transitions at once (create/update →
//! READY and healthy, delete → gone), as upstream's fake platform does without any I/O. Real
//! platforms get their own CRM later; this one lets a local region work end to end.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use edge_model::{
    CloudletInfo, CloudletKey, CloudletState, HealthCheck, Object, ObjectKey, TrackedState,
};
use edge_store::Store;

use crate::commit;
use crate::error::ControlError;
use crate::model::Model;
use crate::planner;
use crate::sync::Shared;

/// The platform this CRM drives.
pub const FAKE_PLATFORM: &str = "fake";

/// What the fake platform reports about the clusters it "creates".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakePlatform {
    /// Reported as every ready cluster's `node_address`: where the shared root LB sends an
    /// instance's traffic (a real platform reports the cluster master node's IP).
    pub node_address: IpAddr,
}

impl Default for FakePlatform {
    fn default() -> Self {
        Self {
            node_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

/// What the CRM must do for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Report the cloudlet READY.
    CloudletReady(CloudletKey),
    /// Move an instance or cluster to READY (healthy).
    Ready(ObjectKey),
    /// Remove an instance or cluster whose delete was requested.
    Remove(ObjectKey),
}

fn on_fake(m: &Model, cloudlet: &CloudletKey) -> bool {
    matches!(
        m.get(&ObjectKey::Cloudlet(cloudlet.clone())).map(|s| &s.object),
        Some(Object::Cloudlet(c)) if c.platform_type == FAKE_PLATFORM
    )
}

/// Decides what to do about `key` in model `m` (pure; tested without a store).
pub fn decide(m: &Model, key: &ObjectKey) -> Option<Action> {
    let obj = &m.get(key)?.object;
    let (cloudlet, state) = match obj {
        Object::Cloudlet(c) => {
            let info = m.get(&ObjectKey::CloudletInfo(c.key.clone()));
            let ready = matches!(info.map(|s| &s.object), Some(Object::CloudletInfo(i)) if i.state == CloudletState::Ready);
            return (c.platform_type == FAKE_PLATFORM && !ready)
                .then(|| Action::CloudletReady(c.key.clone()));
        }
        Object::AppInst(i) => (&i.cloudlet, i.state),
        Object::ClusterInst(c) => (&c.cloudlet, c.state),
        _ => return None,
    };
    if !on_fake(m, cloudlet) {
        return None;
    }
    match state {
        TrackedState::CreateRequested | TrackedState::UpdateRequested => {
            Some(Action::Ready(key.clone()))
        }
        TrackedState::DeleteRequested => Some(Action::Remove(key.clone())),
        _ => None,
    }
}

async fn perform(
    store: &dyn Store,
    shared: &Shared,
    platform: FakePlatform,
    action: &Action,
) -> Result<(), ControlError> {
    match action {
        Action::CloudletReady(k) => {
            let info =
                Object::CloudletInfo(CloudletInfo::with_state(k.clone(), CloudletState::Ready));
            commit::execute(store, shared, "cloudlet info", |m| {
                if m.get(&ObjectKey::Cloudlet(k.clone())).is_none() {
                    return Ok(planner::Plan::default());
                }
                planner::create(
                    m,
                    info.clone(),
                    &planner::Region {
                        name: String::new(),
                    },
                )
            })
            .await?;
        }
        Action::Ready(k) => {
            commit::execute(store, shared, "crm ready", |m| match decide(m, k) {
                Some(Action::Ready(_)) => {
                    let mut plan =
                        planner::set_state(m, k, TrackedState::Ready, Some(HealthCheck::Ok))?;
                    for obj in &mut plan.puts {
                        if let Object::ClusterInst(c) = obj {
                            c.node_address = Some(platform.node_address);
                        }
                    }
                    Ok(plan)
                }
                _ => Ok(planner::Plan::default()),
            })
            .await?;
        }
        Action::Remove(k) => {
            commit::execute(store, shared, "crm delete", |m| match decide(m, k) {
                Some(Action::Remove(_)) => planner::finish_delete(m, k),
                _ => Ok(planner::Plan::default()),
            })
            .await?;
        }
    }
    Ok(())
}

/// Runs the CRM until the store goes away: reacts to every changed key.
pub fn spawn(store: Arc<dyn Store>, shared: Arc<Shared>, platform: FakePlatform) {
    tokio::spawn(async move {
        let mut rx = shared.subscribe();
        let mut seen_rev = 0;
        let mut seen_epoch = u64::MAX;
        loop {
            let actions: Vec<Action> = {
                let st = shared.read();
                let (model, log) = &*st;
                let keys: Vec<ObjectKey> = match log.since(seen_rev) {
                    Some(keys) if log.epoch == seen_epoch => keys,
                    _ => model.all().map(|(k, _)| k.clone()).collect(),
                };
                seen_rev = model.revision;
                seen_epoch = log.epoch;
                let mut acts: Vec<Action> = keys.iter().filter_map(|k| decide(model, k)).collect();
                acts.dedup();
                acts
            };
            for a in &actions {
                if let Err(e) = perform(store.as_ref(), &shared, platform, a).await {
                    tracing::warn!(action = ?a, error = %e, "fake CRM action failed");
                }
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
}
