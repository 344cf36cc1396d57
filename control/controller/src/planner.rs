//! API operations as pure functions: (model, request) → a plan of store writes guarded by
//! compares, or an error that names the problem. No I/O: the caller commits the plan in one
//! transaction and retries from a fresher model if a guard fails, so concurrent conflicting
//! requests can never half-apply or break referential integrity.
//!
//! Integrity rule: every object that refers to a parent "bumps" the parent's reference counter
//! key when it is created, and a parent is only deleted if its counter is unchanged since the
//! model showed it without children. A child created concurrently therefore makes the delete's
//! transaction fail (and vice versa: the child's compare on the parent's revision fails).

use edge_model::{
    AppInst, CloudletInfo, ClusterInst, HealthCheck, IpAccess, Object, ObjectKey, TrackedState,
};
use edge_store::Revision;

use crate::error::{ControlError, describe};
use crate::model::{Model, parents};
use crate::ports;

/// A compare the transaction must pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Guard {
    /// The object still has this mod_revision.
    At(ObjectKey, Revision),
    /// The object does not exist.
    Absent(ObjectKey),
    /// The object's reference counter is unchanged (None: never written).
    Refs(ObjectKey, Option<Revision>),
}

/// Store writes of one API operation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub guards: Vec<Guard>,
    pub puts: Vec<Object>,
    pub deletes: Vec<ObjectKey>,
    /// Parents whose reference counters this operation advances.
    pub bump_refs: Vec<ObjectKey>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.deletes.is_empty()
    }
}

/// Facts the planner needs besides the model.
#[derive(Clone, Debug)]
pub struct Region {
    pub name: String,
}

/// Plans a create. Instances and clusters start in CREATE_REQUESTED (a CRM moves them on).
pub fn create(m: &Model, obj: Object, region: &Region) -> Result<Plan, ControlError> {
    let key = obj.key();
    let mut plan = Plan::default();
    match (&obj, m.get(&key)) {
        // Settings is a singleton that always exists logically: create = set.
        (Object::Settings(_), Some(cur)) => {
            plan.guards.push(Guard::At(key.clone(), cur.mod_revision))
        }
        // A CRM re-reports its CloudletInfo on every connect.
        (Object::CloudletInfo(_), Some(cur)) => {
            plan.guards.push(Guard::At(key.clone(), cur.mod_revision));
        }
        (_, Some(_)) => return Err(ControlError::exists(&key)),
        (_, None) => plan.guards.push(Guard::Absent(key.clone())),
    }
    if let Object::CloudletInfo(CloudletInfo { key: ck, .. }) = &obj {
        let parent = ObjectKey::Cloudlet(ck.clone());
        let cur = m.get(&parent).ok_or_else(|| dangling(&key, &parent))?;
        plan.guards.push(Guard::At(parent, cur.mod_revision));
    }
    require_parents(m, &obj, &mut plan)?;
    let obj = match obj {
        Object::AppInst(inst) => Object::AppInst(place_inst(m, inst, region, &mut plan)?),
        // The node address is the CRM's to report once the cluster exists.
        Object::ClusterInst(c) => Object::ClusterInst(ClusterInst {
            state: TrackedState::CreateRequested,
            node_address: None,
            ..c
        }),
        other => other,
    };
    plan.puts.push(obj);
    Ok(plan)
}

fn dangling(key: &ObjectKey, parent: &ObjectKey) -> ControlError {
    ControlError::NotFound(format!(
        "{} refers to {}, which does not exist",
        describe(key),
        describe(parent)
    ))
}

/// Checks every parent exists (guarding its revision) and bumps its reference counter.
fn require_parents(m: &Model, obj: &Object, plan: &mut Plan) -> Result<(), ControlError> {
    let key = obj.key();
    for parent in parents(obj) {
        let cur = m.get(&parent).ok_or_else(|| dangling(&key, &parent))?;
        if let (Object::AppInst(i), Object::ClusterInst(c)) = (obj, &cur.object)
            && c.cloudlet != i.cloudlet
        {
            return Err(ControlError::Invalid(format!(
                "{} is on cloudlet {}, but the instance is for cloudlet {}",
                describe(&parent),
                c.cloudlet,
                i.cloudlet
            )));
        }
        plan.guards
            .push(Guard::At(parent.clone(), cur.mod_revision));
        plan.guards
            .push(Guard::Refs(parent.clone(), m.refs_revision(&parent)));
        plan.bump_refs.push(parent);
    }
    Ok(())
}

/// Computes where an instance is reachable (URI and public ports) and sets its initial state.
fn place_inst(
    m: &Model,
    inst: AppInst,
    region: &Region,
    plan: &mut Plan,
) -> Result<AppInst, ControlError> {
    let app = match m.get(&ObjectKey::App(inst.app.clone())).map(|s| &s.object) {
        Some(Object::App(a)) => a.clone(),
        _ => {
            return Err(ControlError::NotFound(format!(
                "App {} not found",
                inst.app
            )));
        }
    };
    let cluster = inst.cluster.as_ref().and_then(|name| {
        let k = ObjectKey::ClusterInst(edge_model::ClusterKey {
            organization: inst.key.organization.clone(),
            name: name.clone(),
        });
        match m.get(&k).map(|s| &s.object) {
            Some(Object::ClusterInst(c)) => Some(c.clone()),
            _ => None,
        }
    });
    let root = m.settings().app_dns_root;
    let shared = cluster
        .as_ref()
        .is_some_and(|c| c.ip_access == IpAccess::Shared);
    let (uri, mapped_ports) = if app.access_ports.is_empty() {
        (String::new(), Vec::new())
    } else if shared {
        let fqdn = edge_model::naming::shared_root_lb_fqdn(&inst.cloudlet, &region.name, &root);
        let used = ports::used_on_shared_lb(m.insts_on(&inst.cloudlet), &fqdn);
        let mapped =
            ports::allocate(&app.access_ports, &used).map_err(ControlError::FailedPrecondition)?;
        (fqdn, mapped)
    } else {
        let fqdn = match &cluster {
            Some(c) => {
                edge_model::naming::cluster_fqdn(&c.key, &inst.cloudlet, &region.name, &root)
            }
            None => {
                edge_model::naming::app_inst_fqdn(&inst.app, &inst.cloudlet, &region.name, &root)
            }
        };
        (fqdn, app.access_ports.clone())
    };
    // Port allocation on a shared LB must not race another create on the same cloudlet: the
    // cloudlet's reference counter is guarded (require_parents) and bumped.
    let _ = plan;
    Ok(AppInst {
        uri,
        mapped_ports,
        state: TrackedState::CreateRequested,
        health: HealthCheck::Unknown,
        ..inst
    })
}

/// Plans an update of the listed fields (snake_case names) from `obj` onto the stored object.
pub fn update(m: &Model, obj: &Object, fields: &[String]) -> Result<Plan, ControlError> {
    let key = obj.key();
    let cur = m.get(&key).ok_or_else(|| ControlError::not_found(&key))?;
    if fields.is_empty() {
        return Err(ControlError::Invalid(format!(
            "update of {} names no fields; updatable: {}",
            describe(&key),
            crate::fields::updatable(key.kind()).join(", ")
        )));
    }
    let merged = crate::fields::merge(&cur.object, obj, fields)?;
    if let (Object::App(old), Object::App(new)) = (&cur.object, &merged) {
        let insts = m
            .children(&key)
            .filter(|k| matches!(k, ObjectKey::AppInst(_)))
            .count();
        if insts > 0 && (old.access_ports != new.access_ports || old.deployment != new.deployment) {
            return Err(ControlError::FailedPrecondition(format!(
                "{} has {insts} instances: access_ports and deployment cannot change",
                describe(&key)
            )));
        }
    }
    let mut plan = Plan {
        guards: vec![Guard::At(key, cur.mod_revision)],
        ..Plan::default()
    };
    if parents(&merged) != parents(&cur.object) {
        require_parents(m, &merged, &mut plan)?;
    }
    if merged != cur.object {
        plan.puts.push(merged);
    }
    Ok(plan)
}

/// Plans a delete. Objects with a CRM lifecycle (instances, clusters) move to DELETE_REQUESTED
/// and are removed by [`finish_delete`] once the CRM is done; others go at once.
pub fn delete(m: &Model, key: &ObjectKey) -> Result<Plan, ControlError> {
    let cur = m.get(key).ok_or_else(|| ControlError::not_found(key))?;
    let users: Vec<&ObjectKey> = m.children(key).collect();
    if let Some(first) = users.first() {
        let more = if users.len() > 1 {
            format!(" and {} more", users.len() - 1)
        } else {
            String::new()
        };
        return Err(ControlError::InUse {
            key: describe(key),
            by: format!("{}{more}", describe(first)),
        });
    }
    let mut plan = Plan {
        guards: vec![
            Guard::At(key.clone(), cur.mod_revision),
            Guard::Refs(key.clone(), m.refs_revision(key)),
        ],
        ..Plan::default()
    };
    match &cur.object {
        Object::AppInst(i) => {
            if !in_delete(i.state) {
                plan.puts.push(Object::AppInst(AppInst {
                    state: TrackedState::DeleteRequested,
                    ..i.clone()
                }));
            }
        }
        Object::ClusterInst(c) => {
            if !in_delete(c.state) {
                plan.puts.push(Object::ClusterInst(ClusterInst {
                    state: TrackedState::DeleteRequested,
                    ..c.clone()
                }));
            }
        }
        Object::Cloudlet(c) => {
            plan.deletes.push(key.clone());
            let info = ObjectKey::CloudletInfo(c.key.clone());
            if m.get(&info).is_some() {
                plan.deletes.push(info);
            }
        }
        _ => plan.deletes.push(key.clone()),
    }
    Ok(plan)
}

fn in_delete(s: TrackedState) -> bool {
    matches!(
        s,
        TrackedState::DeleteRequested | TrackedState::Deleting | TrackedState::DeletePrepare
    )
}

/// Plans the removal of an object whose deletion its CRM completed.
pub fn finish_delete(m: &Model, key: &ObjectKey) -> Result<Plan, ControlError> {
    let cur = m.get(key).ok_or_else(|| ControlError::not_found(key))?;
    Ok(Plan {
        guards: vec![Guard::At(key.clone(), cur.mod_revision)],
        deletes: vec![key.clone()],
        ..Plan::default()
    })
}

/// Plans a CRM-reported state change (and health, for instances).
pub fn set_state(
    m: &Model,
    key: &ObjectKey,
    state: TrackedState,
    health: Option<HealthCheck>,
) -> Result<Plan, ControlError> {
    let cur = m.get(key).ok_or_else(|| ControlError::not_found(key))?;
    let next = match &cur.object {
        Object::AppInst(i) => Object::AppInst(AppInst {
            state,
            health: health.unwrap_or(i.health),
            ..i.clone()
        }),
        Object::ClusterInst(c) => Object::ClusterInst(ClusterInst { state, ..c.clone() }),
        _ => {
            return Err(ControlError::Invalid(format!(
                "{} has no lifecycle state",
                describe(key)
            )));
        }
    };
    Ok(Plan {
        guards: vec![Guard::At(key.clone(), cur.mod_revision)],
        puts: vec![next],
        ..Plan::default()
    })
}

#[cfg(test)]
mod tests;
