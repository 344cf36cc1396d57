//! Objects subscribers send up: a CRM's CloudletInfo and the lifecycle of the clusters and
//! instances it runs ([`crate::crm_report`]), and instance health seen by a root load balancer.
//! Only the fields a reporter owns are taken; everything else stays the controller's.
//!
//! A reporter is trusted only for the cloudlets it serves: those of its subscription's
//! cloudlet filter, or of its platform filter (a CRM serving every cloudlet of a platform).
//! So one cloudlet's root LB or CRM cannot take another cloudlet's instances out of matching
//! or mark another cloudlet ready or down.

use edge_api::notify::Role;
use edge_model::{AppInst, AppInstKey, CloudletKey, HealthCheck, Object, ObjectKey, TrackedState};
use edge_store::Store;

use crate::commit;
use crate::error::{ControlError, describe};
use crate::model::Model;
use crate::planner::{self, Plan, Region};
use crate::sync::Shared;

/// Who sent a report: the notify connection, its role and its subscription's filters.
#[derive(Debug, Clone, Copy)]
pub struct Reporter<'a> {
    pub notify_id: u64,
    pub role: Role,
    pub cloudlet: Option<&'a CloudletKey>,
    pub platform: Option<&'a str>,
}

impl<'a> Reporter<'a> {
    /// The cloudlet the reporter counts as serving when it reports about `cloudlet`: that one
    /// if its platform filter covers it, else its cloudlet filter.
    pub fn serving(&self, m: &'a Model, cloudlet: &'a CloudletKey) -> Option<&'a CloudletKey> {
        let by_platform = self.platform.is_some_and(|p| {
            matches!(
                m.get(&ObjectKey::Cloudlet(cloudlet.clone())).map(|s| &s.object),
                Some(Object::Cloudlet(c)) if c.platform_type == p
            )
        });
        if by_platform {
            Some(cloudlet)
        } else {
            self.cloudlet
        }
    }
}

/// Whether `from` may report the health of `inst` (pure).
pub fn may_report_health(from: Option<&CloudletKey>, inst: &AppInst) -> Result<(), ControlError> {
    match from {
        Some(c) if *c == inst.cloudlet => Ok(()),
        Some(c) => Err(ControlError::PermissionDenied(format!(
            "health report for {} refused: it is on cloudlet {}, the reporter serves cloudlet {c}",
            describe(&ObjectKey::AppInst(inst.key.clone())),
            inst.cloudlet
        ))),
        None => Err(ControlError::PermissionDenied(format!(
            "health report for {} refused: only a subscriber filtered to the instance's cloudlet may report health",
            describe(&ObjectKey::AppInst(inst.key.clone()))
        ))),
    }
}

/// Whether `from` may send progress about `key`: the object must be on its cloudlet.
pub fn may_report_progress(
    shared: &Shared,
    key: &ObjectKey,
    from: Reporter<'_>,
) -> Result<(), ControlError> {
    let st = shared.read();
    let m = &st.0;
    let cloudlet = match m.get(key).map(|s| &s.object) {
        Some(Object::AppInst(i)) => &i.cloudlet,
        Some(Object::ClusterInst(c)) => &c.cloudlet,
        Some(Object::Cloudlet(c)) => &c.key,
        _ => return Err(ControlError::not_found(key)),
    };
    may_report_cloudlet(from.serving(m, cloudlet), cloudlet)
}

/// Whether `from` may report the CloudletInfo of `cloudlet` (pure).
pub fn may_report_cloudlet(
    from: Option<&CloudletKey>,
    cloudlet: &CloudletKey,
) -> Result<(), ControlError> {
    match from {
        Some(c) if c == cloudlet => Ok(()),
        Some(c) => Err(ControlError::PermissionDenied(format!(
            "CloudletInfo for cloudlet {cloudlet} refused: the reporter serves cloudlet {c}"
        ))),
        None => Err(ControlError::PermissionDenied(format!(
            "CloudletInfo for cloudlet {cloudlet} refused: only a subscriber filtered to that cloudlet may report it"
        ))),
    }
}

pub async fn apply(
    store: &dyn Store,
    shared: &Shared,
    obj: Object,
    from: Reporter<'_>,
) -> Result<(), ControlError> {
    match obj {
        Object::CloudletInfo(mut info) => {
            info.notify_id = from.notify_id;
            let obj = Object::CloudletInfo(info.clone());
            let region = Region {
                name: String::new(),
            };
            commit::execute(store, shared, "cloudlet info report", |m| {
                may_report_cloudlet(from.serving(m, &info.key), &info.key)?;
                planner::create(m, obj.clone(), &region)
            })
            .await?;
        }
        obj @ (Object::AppInst(_) | Object::ClusterInst(_)) if from.role == Role::Crm => {
            commit::execute(store, shared, "CRM report", |m| {
                let cloudlet = match &obj {
                    Object::AppInst(i) => m.app_inst(&i.key).map(|c| &c.cloudlet),
                    Object::ClusterInst(_) => match m.get(&obj.key()).map(|s| &s.object) {
                        Some(Object::ClusterInst(cur)) => Some(&cur.cloudlet),
                        _ => None,
                    },
                    _ => None,
                };
                // Checked against the stored object's cloudlet, not the report's own claim.
                if let Some(c) = cloudlet {
                    may_report_cloudlet(from.serving(m, c), c)?;
                }
                crate::crm_report::plan(m, &obj)
            })
            .await?;
        }
        Object::AppInst(inst) => {
            let key = ObjectKey::AppInst(inst.key.clone());
            let health = inst.health;
            commit::execute(store, shared, "health report", |m| {
                match m.app_inst(&inst.key) {
                    Some(cur) => {
                        // Checked against the stored instance, not the report's own claim.
                        may_report_health(from.serving(m, &cur.cloudlet), cur)?;
                        // While the platform says the instance failed, that wins.
                        let health = match cur.platform_health {
                            HealthCheck::ServerFail => HealthCheck::ServerFail,
                            _ => health,
                        };
                        if cur.health == health {
                            return Ok(Plan::default());
                        }
                        planner::update(
                            m,
                            &Object::AppInst(AppInst {
                                health,
                                ..cur.clone()
                            }),
                            &["health".into()],
                        )
                    }
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

/// Instances a shared root LB carries (ready, with public ports) whose health should change
/// when the LB of their cloudlet goes away (`offline`) or comes back (pure). Going away marks
/// healthy or unknown instances `RootlbOffline`, as upstream's `AppInstDown{RootlbOffline}`
/// alert does; coming back clears only that mark (the LB's own checks then report failures).
pub fn rootlb_transitions(
    insts: impl IntoIterator<Item = AppInst>,
    offline: bool,
) -> Vec<(AppInstKey, HealthCheck)> {
    insts
        .into_iter()
        .filter(|i| i.state == TrackedState::Ready && !i.mapped_ports.is_empty())
        .filter_map(|i| {
            let to = match (offline, i.health) {
                (true, HealthCheck::Ok | HealthCheck::Unknown) => HealthCheck::RootlbOffline,
                (false, HealthCheck::RootlbOffline) => HealthCheck::Ok,
                _ => return None,
            };
            Some((i.key, to))
        })
        .collect()
}

/// Applies [`rootlb_transitions`] for `cloudlet`: one guarded commit per instance, each
/// re-checked against the instance's current health so a concurrent report is not undone.
pub async fn set_rootlb_presence(
    store: &dyn Store,
    shared: &Shared,
    cloudlet: &CloudletKey,
    offline: bool,
) -> Result<usize, ControlError> {
    let insts: Vec<AppInst> = shared.read().0.insts_on(cloudlet).cloned().collect();
    let changes = rootlb_transitions(insts, offline);
    let n = changes.len();
    for (key, to) in changes {
        commit::execute(store, shared, "root LB presence", |m| {
            let Some(cur) = m.app_inst(&key) else {
                return Ok(Plan::default());
            };
            let still = rootlb_transitions([cur.clone()], offline);
            if still.first().map(|(_, h)| *h) != Some(to) {
                return Ok(Plan::default());
            }
            planner::update(
                m,
                &Object::AppInst(AppInst {
                    health: to,
                    ..cur.clone()
                }),
                &["health".into()],
            )
        })
        .await?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_model::AppKey;

    fn inst_on(cloudlet: &CloudletKey) -> AppInst {
        AppInst {
            key: AppInstKey {
                organization: "o".into(),
                name: "i".into(),
            },
            app: AppKey {
                organization: "o".into(),
                name: "a".into(),
                version: "1".into(),
            },
            cloudlet: cloudlet.clone(),
            cluster: None,
            uri: String::new(),
            mapped_ports: Vec::new(),
            state: TrackedState::Ready,
            health: HealthCheck::Ok,
            platform_health: HealthCheck::Unknown,
        }
    }

    #[test]
    fn health_reports_only_for_the_reporters_cloudlet() {
        let mine = CloudletKey {
            organization: "telekom".into(),
            name: "berlin-1".into(),
        };
        let other = CloudletKey {
            organization: "telekom".into(),
            name: "munich-1".into(),
        };
        assert_eq!(may_report_health(Some(&mine), &inst_on(&mine)), Ok(()));
        let e = may_report_health(Some(&mine), &inst_on(&other)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(e.to_string().contains("munich-1"), "{e}");
        let e = may_report_health(None, &inst_on(&mine)).unwrap_err();
        assert!(e.to_string().contains("filtered"), "{e}");
    }

    #[test]
    fn rootlb_presence_marks_and_clears_only_its_own_state() {
        let c = CloudletKey {
            organization: "telekom".into(),
            name: "berlin-1".into(),
        };
        let with = |name: &str, health, ports: bool, state| {
            let mut i = inst_on(&c);
            i.key.name = name.into();
            i.health = health;
            i.state = state;
            if ports {
                i.mapped_ports = vec![edge_model::AppPort {
                    proto: edge_model::LProto::Tcp,
                    internal_port: 80,
                    public_port: 10080,
                    ..Default::default()
                }];
            }
            i
        };
        let insts = vec![
            with("ok", HealthCheck::Ok, true, TrackedState::Ready),
            with("unknown", HealthCheck::Unknown, true, TrackedState::Ready),
            with(
                "failing",
                HealthCheck::ServerFail,
                true,
                TrackedState::Ready,
            ),
            with(
                "offline",
                HealthCheck::RootlbOffline,
                true,
                TrackedState::Ready,
            ),
            with("no-ports", HealthCheck::Ok, false, TrackedState::Ready),
            with(
                "creating",
                HealthCheck::Ok,
                true,
                TrackedState::CreateRequested,
            ),
        ];
        let names = |v: Vec<(AppInstKey, HealthCheck)>| {
            v.into_iter().map(|(k, h)| (k.name, h)).collect::<Vec<_>>()
        };
        assert_eq!(
            names(rootlb_transitions(insts.clone(), true)),
            [
                ("ok".to_string(), HealthCheck::RootlbOffline),
                ("unknown".to_string(), HealthCheck::RootlbOffline)
            ]
        );
        assert_eq!(
            names(rootlb_transitions(insts, false)),
            [("offline".to_string(), HealthCheck::Ok)]
        );
    }

    #[test]
    fn cloudlet_info_only_for_the_reporters_cloudlet() {
        let mine = CloudletKey {
            organization: "telekom".into(),
            name: "berlin-1".into(),
        };
        let other = CloudletKey {
            organization: "orange".into(),
            name: "paris-1".into(),
        };
        assert_eq!(may_report_cloudlet(Some(&mine), &mine), Ok(()));
        let e = may_report_cloudlet(Some(&mine), &other).unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(e.to_string().contains("paris-1"), "{e}");
        let e = may_report_cloudlet(None, &mine).unwrap_err();
        assert!(e.to_string().contains("filtered"), "{e}");
    }
}
