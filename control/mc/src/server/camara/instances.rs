//! `/appinstances`: an application instance is an AppInst of the caller's organisation, named
//! `name`, of the app `appId`, on the cloudlet of zone `edgeCloudZoneId`, in that zone's
//! region, without a cluster (as the native API allows). Its id is
//! `camara_id::app_inst_id(key)`. Status from the instance's state: READY → ready, creating
//! or updating → instantiating, an error state → failed, deleting → terminating, else
//! unknown. Endpoints: each mapped port at the instance's URI (an FQDN, or an IP address),
//! interface ids `tcp_P`/`udp_P` as the app's manifest shows them.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use edge_api::pb::{self, object::Obj};
use edge_auth::scopes;
use edge_model::camara_id;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Body, Caller, id_param, non_null, query, region_param, spec_id};
use super::error::CamaraError;
use super::zones::zone_id;
use super::{BASE, Wait, apps, deployments, mutate, regions, self_recorded, show, zones};
use crate::model::Controller;
use crate::server::region::forward::Mutation;
use crate::server::state::McState;

/// The body of `POST /appinstances` (unknown members ignored, `null` refused).
#[derive(Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewInstance {
    name: String,
    app_id: String,
    edge_cloud_zone_id: String,
    #[serde(default, deserialize_with = "non_null")]
    kubernetes_cluster_ref: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    subscription_request: Option<serde_json::Map<String, Value>>,
}

/// The statuses the spec lists for each operation (any other error becomes 500).
const CREATE: [u16; 7] = [400, 401, 403, 409, 500, 501, 503];
const LIST: [u16; 5] = [400, 401, 403, 500, 503];
const DELETE: [u16; 6] = [400, 401, 403, 404, 500, 503];

/// CAMARA's status of an instance state.
pub fn status(state: i32) -> &'static str {
    use pb::TrackedState as T;
    match T::try_from(state) {
        Ok(T::Ready) => "ready",
        Ok(
            T::CreateRequested
            | T::Creating
            | T::CreatingDependencies
            | T::CrmInitok
            | T::UpdateRequested
            | T::Updating,
        ) => "instantiating",
        Ok(T::CreateError | T::UpdateError | T::DeleteError) => "failed",
        Ok(T::DeleteRequested | T::Deleting | T::DeletePrepare | T::DeleteDone) => "terminating",
        _ => "unknown",
    }
}

/// The id of an instance.
pub fn id_of(i: &pb::AppInst) -> String {
    let k = i.key.clone().unwrap_or_default();
    camara_id::app_inst_id(&edge_model::AppInstKey {
        organization: k.organization,
        name: k.name,
    })
}

/// Where clients reach the instance: one entry per mapped port (none before it has a URI).
fn endpoints(i: &pb::AppInst) -> Vec<Value> {
    if i.uri.is_empty() {
        return Vec::new();
    }
    i.mapped_ports
        .iter()
        .map(|p| {
            let udp = p.proto == pb::LProto::Udp as i32;
            let host = format!("{}{}", p.fqdn_prefix, i.uri);
            let mut ap = json!({"port": p.public_port});
            match i.uri.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => ap["ipv4Addresses"] = json!([a.to_string()]),
                Ok(IpAddr::V6(a)) => ap["ipv6Addresses"] = json!([a.to_string()]),
                Err(_) => ap["fqdn"] = json!(host),
            }
            let proto = if udp { "udp" } else { "tcp" };
            json!({"interfaceId": format!("{proto}_{}", p.internal_port), "accessPoints": ap})
        })
        .collect()
}

/// An instance as CAMARA's AppInstanceInfo.
pub fn info(i: &pb::AppInst) -> Value {
    let key = i.key.clone().unwrap_or_default();
    let app = pb::App {
        key: i.app.clone(),
        ..Default::default()
    };
    let mut v = json!({
        "name": key.name,
        "appId": apps::id_of(&app),
        "appInstanceId": id_of(i),
        "appProvider": key.organization,
        "status": status(i.state),
        "edgeCloudZoneId": zone_id(&i.cloudlet.clone().unwrap_or_default()),
    });
    let ends = endpoints(i);
    if !ends.is_empty() {
        v["componentEndpointInfo"] = json!(ends);
    }
    v
}

/// The caller's instances in every region (or `region`), with their region.
async fn instances(
    state: &McState,
    caller: &Caller,
    region: Option<&str>,
) -> Result<Vec<(pb::AppInst, Controller)>, CamaraError> {
    let mut out = Vec::new();
    for c in regions(state, region).await? {
        for o in show(state, caller, &c, pb::ObjectKind::AppInst, &caller.org).await? {
            if let Some(Obj::AppInst(i)) = o.obj {
                out.push((i, c.clone()));
            }
        }
    }
    Ok(out)
}

/// Checks the body against its schema (400), then refuses what is not implemented (501).
fn check_new(n: &NewInstance) -> Result<(), CamaraError> {
    let mut c = n.name.chars();
    let ok = c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && (2..=64).contains(&n.name.len())
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_');
    if !ok {
        return Err(CamaraError::invalid(format!(
            "name {:?}: must match ^[A-Za-z][A-Za-z0-9_]{{1,63}}$",
            n.name
        )));
    }
    spec_id("appId", &n.app_id)?;
    spec_id("edgeCloudZoneId", &n.edge_cloud_zone_id)?;
    if let Some(r) = &n.kubernetes_cluster_ref {
        spec_id("kubernetesClusterRef", r)?;
    }
    if let Some(s) = &n.subscription_request {
        deployments::check_subscription(&Value::Object(s.clone()))?;
    }
    if n.subscription_request.is_some() {
        return Err(CamaraError::not_implemented(
            "subscriptionRequest: status callbacks are not implemented",
        ));
    }
    if n.kubernetes_cluster_ref.is_some() {
        return Err(CamaraError::not_implemented(
            "kubernetesClusterRef: instances are placed without a named cluster",
        ));
    }
    Ok(())
}

/// A 404 about something the body names as 400 naming `what`: createAppInstance documents no
/// 404, and an id naming nothing is "an invalid argument, request body or query param".
fn named_nothing(what: &'static str) -> impl FnOnce(CamaraError) -> CamaraError {
    move |e| {
        if e.status != StatusCode::NOT_FOUND {
            return e;
        }
        CamaraError {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_ARGUMENT",
            message: format!("{what}: {}", e.message),
            ..e
        }
    }
}

/// `POST /appinstances`: 202 with the instance (instantiating) once the controller took it.
/// An `appId` or `edgeCloudZoneId` naming nothing the caller has is 400 (the operation
/// documents no 404).
pub async fn create(
    State(state): State<Arc<McState>>,
    caller: Caller,
    Body(n): Body<NewInstance>,
) -> Result<Response, CamaraError> {
    create_instance(state, caller, n)
        .await
        .map_err(|e| e.within(&CREATE))
}

async fn create_instance(
    state: Arc<McState>,
    caller: Caller,
    n: NewInstance,
) -> Result<Response, CamaraError> {
    caller.require(scopes::EAM_INSTANCES_WRITE)?;
    check_new(&n)?;
    let (app, app_regions) = apps::find(&state, &caller, &n.app_id)
        .await
        .map_err(named_nothing("appId"))?;
    let zone = zones::find(&state, &caller, &n.edge_cloud_zone_id)
        .await
        .map_err(named_nothing("edgeCloudZoneId"))?;
    if !app_regions.iter().any(|c| c.region == zone.region.region) {
        return Err(CamaraError::invalid(format!(
            "application {} is not in region {} of zone {}: submit it again",
            n.app_id, zone.region.region, n.edge_cloud_zone_id
        )));
    }
    let inst = pb::AppInst {
        key: Some(pb::AppInstKey {
            organization: caller.org.clone(),
            name: n.name.clone(),
        }),
        app: app.key.clone(),
        cloudlet: zone.cloudlet.key.clone(),
        ..Default::default()
    };
    let request = serde_json::to_value(&n).unwrap_or_default();
    let m = Mutation::Create(pb::Object {
        obj: Some(Obj::AppInst(inst.clone())),
    });
    let op = format!("{BASE}/appinstances");
    let accepted = (Wait::Accepted, "ALREADY_EXISTS");
    // The controller's 404: the app or the cloudlet went away meanwhile.
    mutate(&state, &caller, zone.region, m, (&op, &request), accepted)
        .await
        .map_err(named_nothing("appId or edgeCloudZoneId"))?;
    let id = id_of(&inst);
    let mut body = info(&inst);
    body["status"] = json!("instantiating");
    let mut resp = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    let location = format!(
        "{}{BASE}/appinstances?appInstanceId={id}",
        state.config.issuer
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    Ok(self_recorded(resp))
}

/// `GET /appinstances?appId&appInstanceId&region`.
pub async fn list(
    State(state): State<Arc<McState>>,
    RawQuery(raw): RawQuery,
    caller: Caller,
) -> Result<Response, CamaraError> {
    list_instances(&state, raw.as_deref(), &caller)
        .await
        .map(|l| axum::Json(l).into_response())
        .map_err(|e| e.within(&LIST))
}

async fn list_instances(
    state: &McState,
    raw: Option<&str>,
    caller: &Caller,
) -> Result<Vec<Value>, CamaraError> {
    caller.require(scopes::EAM_INSTANCES_READ)?;
    let q = query(raw, &["appId", "appInstanceId", "region"])?;
    let region = region_param(&q)?;
    let (app, id) = (id_param(&q, "appId")?, id_param(&q, "appInstanceId")?);
    let list: Vec<Value> = instances(state, caller, region)
        .await?
        .iter()
        .map(|(i, _)| info(i))
        .filter(|v| {
            let matches = |want: Option<u128>, field: &str| {
                want.is_none_or(|w| v[field].as_str().and_then(camara_id::parse) == Some(w))
            };
            matches(app, "appId") && matches(id, "appInstanceId")
        })
        .collect();
    Ok(list)
}

/// `DELETE /appinstances/{appInstanceId}`: 202 once the controller took the delete (at once
/// when the instance is already terminating).
pub async fn delete(
    State(state): State<Arc<McState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Response, CamaraError> {
    delete_instance(state, id, caller)
        .await
        .map_err(|e| e.within(&DELETE))
}

async fn delete_instance(
    state: Arc<McState>,
    id: String,
    caller: Caller,
) -> Result<Response, CamaraError> {
    caller.require(scopes::EAM_INSTANCES_DELETE)?;
    let want = spec_id("appInstanceId", &id)?;
    let (inst, c) = instances(&state, &caller, None)
        .await?
        .into_iter()
        .find(|(i, _)| camara_id::parse(&id_of(i)) == Some(want))
        .ok_or_else(|| CamaraError::not_found(format!("application instance {id} not found")))?;
    if status(inst.state) == "terminating" {
        // Already being deleted: the controller would refuse (409, which the operation does
        // not document); the delete asked for is under way.
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let m = Mutation::Delete(pb::ObjectKey {
        key: inst.key.clone().map(pb::object_key::Key::AppInst),
    });
    let op = format!("{BASE}/appinstances/{id}");
    mutate(
        &state,
        &caller,
        c,
        m,
        (&op, &Value::Null),
        (Wait::Accepted, "CONFLICT"),
    )
    .await?;
    Ok(self_recorded(StatusCode::ACCEPTED.into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_instances() {
        const ID: &str = "642f6105-7015-4af1-a4d1-e1ecb8437abc";
        let parse = |v: Value| serde_json::from_value::<NewInstance>(v);
        let check =
            |v: Value| check_new(&parse(v).unwrap()).map_err(|e| (e.status.as_u16(), e.code));
        let base = json!({"name": "arena", "appId": ID, "edgeCloudZoneId": ID});
        let mut extra = base.clone();
        extra["lorem ipsum"] = json!({});
        assert_eq!(check(extra), Ok(()));
        for bad in [
            json!({"kubernetesClusterRef": null}),
            json!({"subscriptionRequest": null}),
        ] {
            let mut v = base.clone();
            v.as_object_mut()
                .unwrap()
                .extend(bad.as_object().unwrap().clone());
            assert!(parse(v).is_err(), "{bad}");
        }
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            check(b)
        };
        let invalid = Err((400, "INVALID_ARGUMENT"));
        let unimplemented = Err((501, "NOT_IMPLEMENTED"));
        assert_eq!(with("appId", json!(ID.to_uppercase())), invalid);
        assert_eq!(with("edgeCloudZoneId", json!("x")), invalid);
        assert_eq!(with("kubernetesClusterRef", json!("x")), invalid);
        assert_eq!(with("kubernetesClusterRef", json!(ID)), unimplemented);
        assert_eq!(with("subscriptionRequest", json!({})), invalid);
        let sub = json!({"sink": "https://sink.example/x"});
        assert_eq!(with("subscriptionRequest", sub), unimplemented);
    }

    #[test]
    fn statuses_and_endpoints() {
        assert_eq!(status(pb::TrackedState::Ready as i32), "ready");
        assert_eq!(status(pb::TrackedState::Creating as i32), "instantiating");
        assert_eq!(status(pb::TrackedState::CreateError as i32), "failed");
        assert_eq!(status(pb::TrackedState::Deleting as i32), "terminating");
        assert_eq!(status(pb::TrackedState::Unknown as i32), "unknown");
        let mut i = pb::AppInst {
            uri: "arena.eu.edge.example".into(),
            mapped_ports: vec![pb::AppPort {
                proto: pb::LProto::Udp as i32,
                internal_port: 7000,
                public_port: 10000,
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = endpoints(&i);
        assert_eq!(e[0]["interfaceId"], "udp_7000");
        assert_eq!(e[0]["accessPoints"]["port"], 10000);
        assert_eq!(e[0]["accessPoints"]["fqdn"], "arena.eu.edge.example");
        i.uri = "10.1.2.3".into();
        assert_eq!(
            endpoints(&i)[0]["accessPoints"]["ipv4Addresses"][0],
            "10.1.2.3"
        );
        i.uri.clear();
        assert!(endpoints(&i).is_empty());
        assert!(info(&i).get("componentEndpointInfo").is_none());
    }
}
