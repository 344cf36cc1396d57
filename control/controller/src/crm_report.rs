//! What a CRM's report of a cluster's or an instance's lifecycle does to the model, as a pure
//! plan. The CRM owns the transitions out of the requested states (upstream's
//! `crm_state.md`): CREATE_REQUESTED → CREATING → READY | CREATE_ERROR, UPDATE_REQUESTED →
//! UPDATING → READY | UPDATE_ERROR, DELETE_REQUESTED → DELETING → DELETE_DONE | DELETE_ERROR.
//! Any other transition is refused, so a stale or confused CRM cannot move an object the user
//! owns. The controller then finishes what the CRM reported: a failed create is undone (the
//! object removed, its ports freed), a failed update or delete goes back to READY, a finished
//! delete removes the object.
//!
//! An instance's report also carries its `platform_health` (a process that exited), which is
//! merged into `health` by [`merged_health`].

use edge_model::{AppInst, ClusterInst, HealthCheck, Object, TrackedState};

use crate::error::{ControlError, describe};
use crate::model::Model;
use crate::planner::{self, Guard, Plan};

/// Whether a CRM may move an object from `from` to `to` (equal states are refreshes).
pub fn transition_ok(from: TrackedState, to: TrackedState) -> bool {
    use TrackedState as S;
    from == to
        || matches!(
            (from, to),
            (S::CreateRequested, S::Creating | S::Ready | S::CreateError)
                | (S::Creating, S::Ready | S::CreateError)
                | (S::UpdateRequested, S::Updating | S::Ready | S::UpdateError)
                | (S::Updating, S::Ready | S::UpdateError)
                | (
                    S::DeleteRequested,
                    S::Deleting | S::DeleteDone | S::NotPresent | S::DeleteError
                )
                | (S::Deleting, S::DeleteDone | S::NotPresent | S::DeleteError)
        )
}

/// `health` after the platform's view of an instance changes from `old` to `new`: the
/// platform's failure wins while it lasts; when it ends, the instance is healthy again until
/// the root LB's checks (which re-report) say otherwise.
pub fn merged_health(health: HealthCheck, old: HealthCheck, new: HealthCheck) -> HealthCheck {
    match (old, new) {
        (_, HealthCheck::ServerFail) => HealthCheck::ServerFail,
        (HealthCheck::ServerFail, _) if health == HealthCheck::ServerFail => HealthCheck::Ok,
        _ => health,
    }
}

/// Plans a CRM's report about a cluster or an instance (`reported` carries the new state and
/// the fields the CRM owns: a cluster's `node_address`, an instance's `platform_health`).
pub fn plan(m: &Model, reported: &Object) -> Result<Plan, ControlError> {
    let key = reported.key();
    let Some(cur) = m.get(&key) else {
        // A delete finished twice, or an object removed meanwhile: nothing to do.
        return match state_of(reported) {
            Some(TrackedState::DeleteDone | TrackedState::NotPresent) => Ok(Plan::default()),
            _ => Err(ControlError::not_found(&key)),
        };
    };
    let (Some(from), Some(to)) = (state_of(&cur.object), state_of(reported)) else {
        return Err(ControlError::Invalid(format!(
            "{} has no lifecycle a CRM reports",
            describe(&key)
        )));
    };
    if !transition_ok(from, to) {
        return Err(ControlError::FailedPrecondition(format!(
            "{} is {}: a CRM may not move it to {}",
            describe(&key),
            from.wire_name(),
            to.wire_name()
        )));
    }
    let next = match to {
        TrackedState::CreateError | TrackedState::DeleteDone | TrackedState::NotPresent => {
            return planner::finish_delete(m, &key);
        }
        TrackedState::UpdateError | TrackedState::DeleteError => TrackedState::Ready,
        other => other,
    };
    let object = match (&cur.object, reported) {
        (Object::AppInst(c), Object::AppInst(r)) => Object::AppInst(next_inst(c, r, next)),
        (Object::ClusterInst(c), Object::ClusterInst(r)) => Object::ClusterInst(ClusterInst {
            state: next,
            node_address: r.node_address.or(c.node_address),
            ..c.clone()
        }),
        _ => unreachable!("state_of answers only for instances and clusters of one key"),
    };
    if object == cur.object {
        return Ok(Plan::default());
    }
    Ok(Plan {
        guards: vec![Guard::At(key, cur.mod_revision)],
        puts: vec![object],
        ..Plan::default()
    })
}

fn next_inst(cur: &AppInst, reported: &AppInst, state: TrackedState) -> AppInst {
    let platform = match reported.platform_health {
        HealthCheck::Unknown => cur.platform_health,
        h => h,
    };
    let mut health = merged_health(cur.health, cur.platform_health, platform);
    // Upstream: an instance that becomes READY with unknown health is healthy.
    if state == TrackedState::Ready && health == HealthCheck::Unknown {
        health = HealthCheck::Ok;
    }
    AppInst {
        state,
        health,
        platform_health: platform,
        ..cur.clone()
    }
}

fn state_of(o: &Object) -> Option<TrackedState> {
    match o {
        Object::AppInst(i) => Some(i.state),
        Object::ClusterInst(c) => Some(c.state),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
