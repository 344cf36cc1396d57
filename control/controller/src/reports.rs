//! Objects subscribers send up: a CRM's CloudletInfo, and instance health seen by a root load
//! balancer. Only the fields a reporter owns are taken; everything else stays the controller's.

use edge_model::{Object, ObjectKey};
use edge_store::Store;

use crate::commit;
use crate::error::ControlError;
use crate::planner::{self, Plan, Region};
use crate::sync::Shared;

pub async fn apply(
    store: &dyn Store,
    shared: &Shared,
    obj: Object,
    notify_id: u64,
) -> Result<(), ControlError> {
    match obj {
        Object::CloudletInfo(mut info) => {
            info.notify_id = notify_id;
            let obj = Object::CloudletInfo(info);
            let region = Region {
                name: String::new(),
            };
            commit::execute(store, shared, "cloudlet info report", |m| {
                planner::create(m, obj.clone(), &region)
            })
            .await?;
        }
        Object::AppInst(inst) => {
            let key = ObjectKey::AppInst(inst.key.clone());
            let health = inst.health;
            commit::execute(store, shared, "health report", |m| {
                match m.app_inst(&inst.key) {
                    Some(cur) if cur.health != health => planner::update(
                        m,
                        &Object::AppInst(edge_model::AppInst {
                            health,
                            ..cur.clone()
                        }),
                        &["health".into()],
                    ),
                    Some(_) => Ok(Plan::default()),
                    None => Err(ControlError::not_found(&key)),
                }
            })
            .await?;
        }
        other => {
            return Err(ControlError::Invalid(format!(
                "{} cannot be reported by a subscriber",
                other.kind()
            )));
        }
    }
    Ok(())
}
