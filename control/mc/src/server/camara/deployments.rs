//! `/deployments`: application deployments (one application on several zones) are not
//! implemented: an instance is created per zone instead. Creating one answers the 501 the spec
//! documents for it (after the scope and the body are checked: 403, 400), so none ever exists:
//! the list is `[]`, and updating or deleting one is 404 NOT_FOUND once the id (and, for the
//! update, the merge-patch body) are found well formed (400 otherwise). The spec has no
//! `GET /deployments/{appDeploymentId}`: that method is 405 with `Allow`, as for any method a
//! path does not have.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use edge_auth::scopes;
use serde_json::{Map, Value};

use super::apps::name_ok;
use super::auth::{Caller, query, spec_id};
use super::error::CamaraError;

/// The schema's `maxItems` of zone and cluster lists.
const MAX_ITEMS: usize = 100;

/// The request body as a JSON object (400 otherwise).
fn object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, CamaraError> {
    let bytes =
        body.map_err(|e| CamaraError::invalid(format!("cannot read the request body: {e}")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(CamaraError::invalid(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(CamaraError::invalid(format!("invalid request body: {e}"))),
    }
}

/// A list of ids (`edgeCloudZones`, `kubernetesClusterRefs`).
fn ids(field: &str, v: &Value) -> Result<(), CamaraError> {
    let list = v
        .as_array()
        .ok_or_else(|| CamaraError::invalid(format!("{field}: must be an array")))?;
    if list.len() > MAX_ITEMS {
        return Err(CamaraError::invalid(format!(
            "{field}: at most {MAX_ITEMS} items"
        )));
    }
    for (i, id) in list.iter().enumerate() {
        let what = format!("{field}[{i}]");
        let id = id
            .as_str()
            .ok_or_else(|| CamaraError::invalid(format!("{what}: must be a string")))?;
        spec_id(&what, id)?;
    }
    Ok(())
}

/// Checks the properties of a deployment body that the schema constrains (other properties are
/// allowed: the schemas do not forbid them). `required` must be present.
fn check_fields(o: &Map<String, Value>, required: &[&str]) -> Result<(), CamaraError> {
    for r in required {
        if !o.contains_key(*r) {
            return Err(CamaraError::invalid(format!("{r}: required")));
        }
    }
    if let Some(v) = o.get("appDeploymentName")
        && !v.as_str().is_some_and(|s| name_ok(s, 1))
    {
        return Err(CamaraError::invalid(
            "appDeploymentName: must be a string matching ^[A-Za-z][A-Za-z0-9_]{1,63}$",
        ));
    }
    if let Some(v) = o.get("appId") {
        let id = v
            .as_str()
            .ok_or_else(|| CamaraError::invalid("appId: must be a string"))?;
        spec_id("appId", id)?;
    }
    for field in ["edgeCloudZones", "kubernetesClusterRefs"] {
        if let Some(v) = o.get(field) {
            ids(field, v)?;
        }
    }
    if let Some(v) = o.get("subscriptionRequest") {
        check_subscription(v)?;
    }
    Ok(())
}

/// A `SubscriptionRequest` (of a deployment or an instance): an object whose `sink` is an https
/// URI of at most 2048 characters.
pub(super) fn check_subscription(v: &Value) -> Result<(), CamaraError> {
    let sink = v.get("sink").and_then(Value::as_str);
    if !v.is_object()
        || !sink
            .is_some_and(|s| s.len() > 8 && s.chars().count() <= 2048 && s.starts_with("https://"))
    {
        return Err(CamaraError::invalid(
            "subscriptionRequest: an object whose sink is an https URI of at most 2048 characters",
        ));
    }
    Ok(())
}

/// `POST /deployments`: 501 for a well-formed request.
pub async fn create(
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, CamaraError> {
    caller.require(scopes::EAM_DEPLOYMENTS_WRITE)?;
    check_fields(
        &object(body)?,
        &["appDeploymentName", "appId", "edgeCloudZones"],
    )?;
    Err(CamaraError::not_implemented(
        "application deployments are not implemented: create an instance per zone",
    ))
}

/// `GET /deployments?appId&appDeploymentId`: `[]`.
pub async fn list(RawQuery(raw): RawQuery, caller: Caller) -> Result<Response, CamaraError> {
    caller.require(scopes::EAM_DEPLOYMENTS_READ)?;
    let q = query(raw.as_deref(), &["appId", "appDeploymentId"])?;
    for field in ["appId", "appDeploymentId"] {
        if let Some(v) = q.get(field) {
            spec_id(field, v)?;
        }
    }
    Ok(axum::Json(Vec::<Value>::new()).into_response())
}

fn not_found(id: &str) -> CamaraError {
    CamaraError::not_found(format!(
        "application deployment {id} not found (deployments are not implemented)"
    ))
}

/// `PATCH /deployments/{appDeploymentId}`: 404 for a well-formed request.
pub async fn update(
    Path(id): Path<String>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, CamaraError> {
    caller.require(scopes::EAM_DEPLOYMENTS_UPDATE)?;
    spec_id("appDeploymentId", &id)?;
    check_fields(&object(body)?, &[])?;
    Err(not_found(&id))
}

/// `DELETE /deployments/{appDeploymentId}`: 404 for a well-formed id.
pub async fn delete(Path(id): Path<String>, caller: Caller) -> Result<Response, CamaraError> {
    caller.require(scopes::EAM_DEPLOYMENTS_DELETE)?;
    spec_id("appDeploymentId", &id)?;
    Err(not_found(&id))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "123e4567-e89b-12d3-a456-426614174000";

    fn check(v: Value, required: &[&str]) -> Result<(), CamaraError> {
        let Value::Object(o) = v else { panic!() };
        check_fields(&o, required)
    }

    #[test]
    fn bodies() {
        let new = ["appDeploymentName", "appId", "edgeCloudZones"];
        let ok = json!({"appDeploymentName": "prod_1", "appId": ID, "edgeCloudZones": [ID],
                        "kubernetesClusterRefs": [], "extra": {"allowed": true},
                        "subscriptionRequest": {"sink": "https://sink.example/x"}});
        check(ok, &new).unwrap();
        check(json!({}), &[]).unwrap();
        for bad in [
            json!({"appDeploymentName": "prod_1", "appId": ID}),
            json!({"appDeploymentName": "1prod", "appId": ID, "edgeCloudZones": []}),
            json!({"appDeploymentName": null, "appId": ID, "edgeCloudZones": []}),
            json!({"appDeploymentName": "prod", "appId": ID.to_uppercase(), "edgeCloudZones": []}),
            json!({"appDeploymentName": "prod", "appId": ID, "edgeCloudZones": ["x"]}),
            json!({"appDeploymentName": "prod", "appId": ID, "edgeCloudZones": vec![ID; 101]}),
            json!({"appDeploymentName": "prod", "appId": ID, "edgeCloudZones": ID}),
            json!({"appDeploymentName": "prod", "appId": ID, "edgeCloudZones": [],
                   "subscriptionRequest": {"sink": "http://sink.example"}}),
        ] {
            let e = check(bad.clone(), &new).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (400, "INVALID_ARGUMENT"),
                "{bad}"
            );
        }
        assert!(check(json!({"kubernetesClusterRefs": [1]}), &[]).is_err());
        assert!(object(Ok(Bytes::from_static(b"[]"))).is_err());
        assert!(object(Ok(Bytes::new())).is_err());
    }
}
