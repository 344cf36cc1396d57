//! `/clusters`: a cluster is a ClusterInst of the caller's organisation, listed through the
//! region API's show (its authorisation: `clusterinsts:view`, and its filtering), from every
//! region or the one named by `region`. ClusterInfo: `name` the cluster's name, `provider` its
//! organisation, `clusterRef` [`cluster_ref`] (a name-based UUID of the cluster key),
//! `edgeCloudZoneId` the zone id of its cloudlet, `edgeCloudRegion` the MC's name of the region.
//!
//! Not listed: clusters being deleted (not available to instances), and the few the schema
//! cannot describe: a name longer than 64 characters, or an organisation whose name is not a
//! CAMARA AppProvider (`^[A-Za-z][A-Za-z0-9_]{7,63}$`; such an organisation cannot submit an
//! application either). `version` and `nodePools` are left out: a ClusterInst has no
//! Kubernetes version, and its nodes' CPUs and memory are in its flavor, which developers may
//! not view. At most 100 clusters are answered (the schema's `maxItems`; there is no paging).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use edge_api::pb::{self, object::Obj};
use edge_auth::scopes;
use serde_json::{Value, json};
use uuid::Uuid;

use super::apps::name_ok;
use super::auth::{Caller, id_param, query, region_param};
use super::error::CamaraError;
use super::zones::zone_id;
use super::{regions, show};
use crate::model::Controller;
use crate::server::state::McState;

/// The statuses the spec lists for `getClusters`, errors otherwise being 500.
const DOCUMENTED: [u16; 5] = [400, 401, 403, 500, 503];

/// The schema's `maxItems` of the list and `maxLength` of names and regions.
const MAX_ITEMS: usize = 100;
const MAX_LEN: usize = 64;

/// The namespace of `edge_model::camara_id` (the same name-based scheme, so that moving
/// [`cluster_ref`] there keeps every id).
const NAMESPACE: Uuid = Uuid::from_u128(0x6f1e_2c1a_9d4b_4e57_8a3c_5b7d_0e9f_2a61);

/// The `clusterRef` of a cluster: a UUID of version 5 (the spec's pattern admits 1-5 only) of
/// `("cluster", organisation, name)`, each part length-prefixed as in `camara_id`.
pub fn cluster_ref(k: &pb::ClusterKey) -> String {
    let mut name = Vec::new();
    for p in ["cluster", &k.organization, &k.name] {
        name.extend_from_slice(&(p.len() as u64).to_be_bytes());
        name.extend_from_slice(p.as_bytes());
    }
    Uuid::new_v5(&NAMESPACE, &name).hyphenated().to_string()
}

fn deleting(state: i32) -> bool {
    use pb::TrackedState as T;
    matches!(
        T::try_from(state),
        Ok(T::DeleteRequested | T::Deleting | T::DeletePrepare | T::DeleteDone)
    )
}

/// A cluster of region `c` as ClusterInfo (`None` for one not listed: module doc).
pub fn info(ci: &pb::ClusterInst, c: &Controller) -> Option<Value> {
    let key = ci.key.clone().unwrap_or_default();
    if deleting(ci.state) || key.name.chars().count() > MAX_LEN || !name_ok(&key.organization, 7) {
        return None;
    }
    let mut v = json!({
        "name": key.name,
        "provider": key.organization,
        "clusterRef": cluster_ref(&key),
        "edgeCloudZoneId": zone_id(&ci.cloudlet.clone().unwrap_or_default()),
    });
    if c.region.chars().count() <= MAX_LEN {
        v["edgeCloudRegion"] = json!(c.region);
    }
    Some(v)
}

/// `GET /clusters?region&clusterRef&edgeCloudZoneId`.
pub async fn list(
    State(state): State<Arc<McState>>,
    RawQuery(raw): RawQuery,
    caller: Caller,
) -> Result<Response, CamaraError> {
    list_clusters(&state, raw.as_deref(), &caller)
        .await
        .map(|l| axum::Json(l).into_response())
        .map_err(|e| e.within(&DOCUMENTED))
}

async fn list_clusters(
    state: &McState,
    raw: Option<&str>,
    caller: &Caller,
) -> Result<Vec<Value>, CamaraError> {
    caller.require(scopes::EAM_CLUSTERS_READ)?;
    let q = query(raw, &["region", "clusterRef", "edgeCloudZoneId"])?;
    let region = region_param(&q)?;
    let (cluster, zone) = (
        id_param(&q, "clusterRef")?,
        id_param(&q, "edgeCloudZoneId")?,
    );
    let matches = |v: &Value, field: &str, want: Option<u128>| {
        want.is_none_or(|w| v[field].as_str().and_then(edge_model::camara_id::parse) == Some(w))
    };
    let mut out = Vec::new();
    for c in regions(state, region).await? {
        for o in show(state, caller, &c, pb::ObjectKind::ClusterInst, &caller.org).await? {
            if let Some(Obj::ClusterInst(ci)) = o.obj
                && let Some(v) = info(&ci, &c)
                && matches(&v, "clusterRef", cluster)
                && matches(&v, "edgeCloudZoneId", zone)
            {
                out.push(v);
            }
        }
    }
    out.truncate(MAX_ITEMS);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::auth::spec_id;
    use super::*;

    fn cluster(org: &str, name: &str, state: pb::TrackedState) -> pb::ClusterInst {
        pb::ClusterInst {
            key: Some(pb::ClusterKey {
                organization: org.into(),
                name: name.into(),
            }),
            cloudlet: Some(pb::CloudletKey {
                organization: "TelcoOperatorA".into(),
                name: "berlin".into(),
            }),
            state: state as i32,
            ..Default::default()
        }
    }

    #[test]
    fn cluster_info() {
        let c = Controller {
            region: "eu".into(),
            address: String::new(),
            notify_addr: String::new(),
        };
        let ci = cluster("NimbusGames", "c1", pb::TrackedState::Ready);
        let v = info(&ci, &c).unwrap();
        let r = v["clusterRef"].as_str().unwrap();
        assert!(spec_id("clusterRef", r).is_ok(), "{r}");
        assert_eq!(r, cluster_ref(ci.key.as_ref().unwrap()));
        assert_ne!(
            r,
            cluster_ref(&pb::ClusterKey {
                organization: "NimbusGame".into(),
                name: "sc1".into()
            })
        );
        assert_eq!(v["name"], "c1");
        assert_eq!(v["provider"], "NimbusGames");
        assert_eq!(v["edgeCloudRegion"], "eu");
        let zone = zone_id(ci.cloudlet.as_ref().unwrap());
        assert_eq!(v["edgeCloudZoneId"], zone.as_str());
        assert_eq!(v.as_object().unwrap().len(), 5, "{v}");
        assert!(
            info(
                &cluster("NimbusGames", "c1", pb::TrackedState::Deleting),
                &c
            )
            .is_none()
        );
        assert!(info(&cluster("dev-org", "c1", pb::TrackedState::Ready), &c).is_none());
        let long = "c".repeat(65);
        assert!(info(&cluster("NimbusGames", &long, pb::TrackedState::Ready), &c).is_none());
    }
}
