//! `/edge-cloud-zones`: a zone is a cloudlet. Its id is `camara_id::zone_id(cloudlet key)`,
//! its name the cloudlet's name, its provider the operator organisation, its region the MC's
//! name of the region. Status: `active` when the cloudlet's CRM reports it ready and it is not
//! in maintenance, `inactive` when reported offline, in error or absent or in maintenance,
//! `unknown` when nothing is reported.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use edge_api::pb::{self, object::Obj};
use edge_auth::scopes;
use edge_model::camara_id;
use serde_json::{Value, json};

use super::auth::{Caller, query, region_param, spec_id};
use super::error::CamaraError;
use super::{regions, show};
use crate::model::Controller;
use crate::server::state::McState;

/// The zone id of a cloudlet key.
pub fn zone_id(k: &pb::CloudletKey) -> String {
    camara_id::zone_id(&edge_model::CloudletKey {
        organization: k.organization.clone(),
        name: k.name.clone(),
    })
}

/// A zone's status from its cloudlet and the CRM's report (module doc).
pub fn status(cloudlet: &pb::Cloudlet, info: Option<&pb::CloudletInfo>) -> &'static str {
    use pb::CloudletState as S;
    if cloudlet.maintenance_state != pb::MaintenanceState::NormalOperation as i32 {
        return "inactive";
    }
    // Where no CRM runs (standalone documents) the cloudlet's own state stands in.
    let state = info.map_or(cloudlet.state, |i| i.state);
    match S::try_from(state) {
        Ok(S::Ready) => "active",
        Ok(S::Offline | S::Errors | S::NotPresent) => "inactive",
        _ => "unknown",
    }
}

/// A zone of region `c`, with its status.
pub struct Zone {
    pub cloudlet: pb::Cloudlet,
    pub region: Controller,
    pub status: &'static str,
}

impl Zone {
    pub fn id(&self) -> String {
        zone_id(&self.cloudlet.key.clone().unwrap_or_default())
    }

    pub fn to_json(&self) -> Value {
        let key = self.cloudlet.key.clone().unwrap_or_default();
        json!({
            "edgeCloudZoneId": self.id(),
            "edgeCloudZoneName": key.name,
            "edgeCloudZoneStatus": self.status,
            "edgeCloudProvider": key.organization,
            "edgeCloudRegion": self.region.region,
        })
    }
}

/// The zones of every region (or of `region`) the caller may see.
pub async fn zones(
    state: &McState,
    caller: &Caller,
    region: Option<&str>,
) -> Result<Vec<Zone>, CamaraError> {
    let mut out = Vec::new();
    for c in regions(state, region).await? {
        // A caller who may see cloudlets but not their reports gets `unknown` statuses.
        let infos = match show(state, caller, &c, pb::ObjectKind::CloudletInfo, "").await {
            Err(e) if e.status == axum::http::StatusCode::FORBIDDEN => Vec::new(),
            r => r?,
        };
        let infos: Vec<pb::CloudletInfo> = infos
            .into_iter()
            .filter_map(|o| match o.obj {
                Some(Obj::CloudletInfo(i)) => Some(i),
                _ => None,
            })
            .collect();
        for o in show(state, caller, &c, pb::ObjectKind::Cloudlet, "").await? {
            let Some(Obj::Cloudlet(cloudlet)) = o.obj else {
                continue;
            };
            let info = infos.iter().find(|i| i.key == cloudlet.key);
            out.push(Zone {
                status: status(&cloudlet, info),
                cloudlet,
                region: c.clone(),
            });
        }
    }
    Ok(out)
}

/// The zone with id `id` (404 if none).
pub async fn find(state: &McState, caller: &Caller, id: &str) -> Result<Zone, CamaraError> {
    let want = spec_id("edgeCloudZoneId", id)?;
    zones(state, caller, None)
        .await?
        .into_iter()
        .find(|z| camara_id::parse(&z.id()) == Some(want))
        .ok_or_else(|| CamaraError::not_found(format!("edge cloud zone {id} not found")))
}

/// `GET /edge-cloud-zones?region&status`.
pub async fn list(
    State(state): State<Arc<McState>>,
    RawQuery(raw): RawQuery,
    caller: Caller,
) -> Result<Response, CamaraError> {
    list_zones(&state, raw.as_deref(), &caller)
        .await
        .map(|l| axum::Json(l).into_response())
        .map_err(|e| e.within(&DOCUMENTED))
}

/// The statuses the spec lists for `getEdgeCloudZones`, errors otherwise being 500.
const DOCUMENTED: [u16; 5] = [400, 401, 403, 500, 503];

async fn list_zones(
    state: &McState,
    raw: Option<&str>,
    caller: &Caller,
) -> Result<Vec<Value>, CamaraError> {
    caller.require(scopes::EAM_ZONES_READ)?;
    let q = query(raw, &["region", "status"])?;
    let region = region_param(&q)?;
    let want = q.get("status").map(String::as_str);
    if want.is_some_and(|s| !matches!(s, "active" | "inactive" | "unknown")) {
        return Err(CamaraError::invalid(
            "status: one of active, inactive, unknown",
        ));
    }
    Ok(zones(state, caller, region)
        .await?
        .iter()
        .filter(|z| want.is_none_or(|s| z.status == s))
        .map(Zone::to_json)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_status() {
        let mut c = pb::Cloudlet::default();
        let info = |s: pb::CloudletState| pb::CloudletInfo {
            state: s as i32,
            ..Default::default()
        };
        assert_eq!(status(&c, None), "unknown");
        assert_eq!(status(&c, Some(&info(pb::CloudletState::Ready))), "active");
        assert_eq!(
            status(&c, Some(&info(pb::CloudletState::Offline))),
            "inactive"
        );
        c.maintenance_state = pb::MaintenanceState::UnderMaintenance as i32;
        assert_eq!(
            status(&c, Some(&info(pb::CloudletState::Ready))),
            "inactive"
        );
    }
}
