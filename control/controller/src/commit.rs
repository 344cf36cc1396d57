//! Commits plans: one store transaction per plan, retried from a fresher model when a guard
//! fails, and acknowledged only once the model has caught up (read-your-writes).

use edge_store::{Compare, Op, Revision, Store, Txn};

use crate::codec;
use crate::error::ControlError;
use crate::model::Model;
use crate::planner::{Guard, Plan};
use crate::sync::{Shared, obj_key, refs_key};

/// How often a conflicting operation is re-planned before giving up.
const MAX_ATTEMPTS: usize = 32;

pub fn to_txn(plan: &Plan) -> Txn {
    let compares = plan.guards.iter().map(|g| match g {
        Guard::At(k, rev) => Compare::mod_revision(obj_key(k), *rev),
        Guard::Absent(k) => Compare::absent(obj_key(k)),
        Guard::Refs(k, Some(rev)) => Compare::mod_revision(refs_key(k), *rev),
        Guard::Refs(k, None) => Compare::absent(refs_key(k)),
    });
    let puts = plan
        .puts
        .iter()
        .map(|o| Op::put(obj_key(&o.key()), codec::encode(o)));
    let deletes = plan.deletes.iter().map(|k| Op::delete(obj_key(k)));
    // Delete a counter with its object, so a re-created object starts fresh.
    let refs_deletes = plan.deletes.iter().map(|k| Op::delete(refs_key(k)));
    let bumps = plan
        .bump_refs
        .iter()
        .map(|k| Op::put(refs_key(k), b"+".to_vec()));
    Txn::new()
        .when(compares)
        .and_then(puts.chain(deletes).chain(refs_deletes).chain(bumps))
}

/// Plans against the current model and commits, retrying on conflicts. Returns the revision
/// the change landed at (or the model's revision if the plan was empty).
pub async fn execute(
    store: &dyn Store,
    shared: &Shared,
    what: &str,
    mut plan_fn: impl FnMut(&Model) -> Result<Plan, ControlError>,
) -> Result<Revision, ControlError> {
    for _ in 0..MAX_ATTEMPTS {
        let (plan, seen) = {
            let st = shared.read();
            (plan_fn(&st.0)?, st.0.revision)
        };
        if plan.is_empty() && plan.bump_refs.is_empty() {
            return Ok(seen);
        }
        let resp = store.txn(to_txn(&plan)).await?;
        if resp.succeeded {
            shared.wait_for(resp.revision).await;
            return Ok(resp.revision);
        }
        // Someone changed what we read: catch up with the store and plan again.
        let current = store.current_revision().await?;
        shared.wait_for(current).await;
    }
    Err(ControlError::Conflict(what.to_string()))
}
