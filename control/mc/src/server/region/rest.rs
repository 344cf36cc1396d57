//! `POST /api/v1/auth/ctrl/<Method>`: the region API as upstream's REST (shapes in the
//! [module doc](super)).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use edge_api::pb::{self, object::Obj, object_key::Key};
use serde_json::{Map, Value, json};

use super::forward::{self, Mutation, PendingAudit};
use crate::server::audit::{AuditCtx, RemoteAddr, SelfRecorded, redact};
use crate::server::auth::Principal;
use crate::server::error::ApiError;
use crate::server::state::McState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    Create,
    Update,
    Delete,
    Show,
    /// The controller's Relay of an instance's latency request.
    RequestLatency,
}

/// Upstream's object names of each kind (the body's key), with the proto's oneof name.
const KINDS: &[(&str, &str, &str)] = &[
    // (method suffix, upstream body name, proto oneof name)
    ("App", "app", "app"),
    ("AppInst", "appinst", "app_inst"),
    ("ClusterInst", "clusterinst", "cluster_inst"),
    ("Cloudlet", "cloudlet", "cloudlet"),
    ("CloudletInfo", "cloudletinfo", "cloudlet_info"),
    ("OperatorCode", "operatorcode", "operator_code"),
    ("Flavor", "flavor", "flavor"),
    ("Settings", "settings", "settings"),
];

/// The verb and kind of a method name; `None` for a method this API does not have.
fn method(name: &str) -> Option<(Verb, usize)> {
    if name == "RequestAppInstLatency" {
        return Some((Verb::RequestLatency, 1));
    }
    let (verb, rest) = [
        ("Create", Verb::Create),
        ("Update", Verb::Update),
        ("Delete", Verb::Delete),
        ("Show", Verb::Show),
    ]
    .into_iter()
    .find_map(|(p, v)| name.strip_prefix(p).map(|rest| (v, rest)))?;
    let kind = KINDS.iter().position(|(m, _, _)| *m == rest)?;
    let ok = match rest {
        "CloudletInfo" => verb == Verb::Show,
        "Settings" => verb != Verb::Delete,
        _ => true,
    };
    ok.then_some((verb, kind))
}

/// The parsed body: region, the object (if given) as the proto's, its JSON, update fields.
struct Parsed {
    region: String,
    object: Option<pb::Object>,
    fields: Vec<String>,
}

fn parse(bytes: &[u8], kind: usize) -> Result<Parsed, ApiError> {
    let (_, name, proto) = KINDS[kind];
    let mut map: Map<String, Value> = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    let Some(Value::String(region)) = map.remove("region") else {
        return Err(ApiError::bad_request("\"region\": a string is required"));
    };
    let fields = match map.remove("fields") {
        None => Vec::new(),
        Some(v) => serde_json::from_value(v)
            .map_err(|e| ApiError::bad_request(format!("\"fields\": {e}")))?,
    };
    let filter = map.remove(name).or_else(|| map.remove(proto));
    if let Some(extra) = map.keys().next() {
        return Err(ApiError::bad_request(format!(
            "unknown field {extra:?}: expected \"region\", \"{name}\" and, for updates, \"fields\""
        )));
    }
    let object = match &filter {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<pb::Object>(json!({ proto: v }))
                .map_err(|e| ApiError::bad_request(format!("\"{name}\": {e}")))?,
        ),
    };
    Ok(Parsed {
        region,
        object,
        fields,
    })
}

/// The key of an object (what a delete names).
fn key_of(o: &pb::Object) -> Option<pb::ObjectKey> {
    let key = match o.obj.as_ref()? {
        Obj::OperatorCode(c) => Key::OperatorCode(pb::OperatorCodeKey {
            code: c.code.clone(),
        }),
        Obj::Flavor(f) => Key::Flavor(pb::FlavorKey {
            name: f.name.clone(),
        }),
        Obj::Settings(_) => Key::Settings(pb::SettingsKey {}),
        Obj::Cloudlet(c) => Key::Cloudlet(c.key.clone()?),
        Obj::CloudletInfo(c) => Key::CloudletInfo(c.key.clone()?),
        Obj::App(a) => Key::App(a.key.clone()?),
        Obj::ClusterInst(c) => Key::ClusterInst(c.key.clone()?),
        Obj::AppInst(i) => Key::AppInst(i.key.clone()?),
    };
    Some(pb::ObjectKey { key: Some(key) })
}

/// Whether every field `filter` sets has the same value in `v` (objects compared field by
/// field, anything else whole).
fn matches(filter: &Value, v: &Value) -> bool {
    match (filter, v) {
        (Value::Object(f), Value::Object(o)) => f
            .iter()
            .all(|(k, fv)| o.get(k).is_some_and(|ov| matches(fv, ov))),
        _ => filter == v,
    }
}

/// The inner object of a `pb::Object`'s JSON (`{"app": {...}}` → `{...}`).
fn inner(o: &pb::Object) -> Value {
    match serde_json::to_value(o) {
        Ok(Value::Object(m)) => m.into_iter().next().map_or(Value::Null, |(_, v)| v),
        _ => Value::Null,
    }
}

pub async fn handle(
    State(state): State<Arc<McState>>,
    Path(name): Path<String>,
    principal: Principal,
    Extension(ctx): Extension<AuditCtx>,
    remote: Option<Extension<ConnectInfo<RemoteAddr>>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (verb, kind) = method(&name).ok_or_else(|| {
        ApiError::not_found(format!("no region method {name:?} (see the MC's API doc)"))
    })?;
    let b = parse(&body, kind)?;
    let c = state.regions.controller(&b.region).await?;
    let object = || {
        b.object.clone().ok_or_else(|| {
            ApiError::bad_request(format!("\"{}\": the object is required", KINDS[kind].1))
        })
    };
    let mutation = match verb {
        Verb::Show => return show(&state, &principal, &c, kind, &b).await,
        Verb::RequestLatency => return relay(&state, &principal, &c, object()?, &ctx).await,
        Verb::Create => Mutation::Create(object()?),
        Verb::Update => Mutation::Update(object()?, b.fields.clone()),
        Verb::Delete => Mutation::Delete(
            key_of(&object()?)
                .ok_or_else(|| ApiError::bad_request("the object's key is required"))?,
        ),
    };
    let mut orgs = Vec::new();
    let started = forward::mutate(&state, &principal, &c, mutation, &mut orgs).await;
    for o in &orgs {
        ctx.add_org(o);
    }
    let stream = started?;
    let request = serde_json::from_slice::<Value>(&body)
        .map(|v| redact(&v).to_string())
        .unwrap_or_default();
    let audit = PendingAudit {
        user: principal.audit_name(),
        orgs,
        operation: format!("/api/v1/auth/ctrl/{name}"),
        request,
        remote: remote.map(|r| r.0.0.0.to_string()).unwrap_or_default(),
    };
    let rx = forward::spawn_progress(state.clone(), c, stream, audit);
    let lines = futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((Ok::<_, Infallible>(line(item)), rx))
    });
    let mut resp = (
        [(CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response();
    resp.extensions_mut().insert(SelfRecorded);
    Ok(resp)
}

/// One JSON line of a streamed mutation.
fn line(item: Result<pb::Progress, ApiError>) -> String {
    let v = match item {
        Ok(p) if p.done => {
            json!({"result": {"message": p.message, "code": 200, "revision": p.revision}})
        }
        Ok(p) => json!({"data": {"message": p.message}}),
        Err(e) => json!({"result": {"message": e.message, "code": e.status.as_u16()}}),
    };
    format!("{v}\n")
}

async fn show(
    state: &McState,
    p: &Principal,
    c: &crate::model::Controller,
    kind: usize,
    b: &Parsed,
) -> Result<Response, ApiError> {
    let proto_kind = match KINDS[kind].0 {
        "App" => pb::ObjectKind::App,
        "AppInst" => pb::ObjectKind::AppInst,
        "ClusterInst" => pb::ObjectKind::ClusterInst,
        "Cloudlet" => pb::ObjectKind::Cloudlet,
        "CloudletInfo" => pb::ObjectKind::CloudletInfo,
        "OperatorCode" => pb::ObjectKind::OperatorCode,
        "Flavor" => pb::ObjectKind::Flavor,
        _ => pb::ObjectKind::Settings,
    };
    let organization = b
        .object
        .as_ref()
        .and_then(super::authz::object_org)
        .map(|(_, o)| o.to_string())
        .unwrap_or_default();
    let req = pb::ShowRequest {
        kind: proto_kind as i32,
        key: None,
        organization,
    };
    let objects = forward::show(state, p, c, req).await?;
    // The filter printed back from the proto: defaults left out, enums spelled as in objects.
    let filter = b.object.as_ref().map(inner);
    let list: Vec<Value> = objects
        .iter()
        .map(inner)
        .filter(|v| filter.as_ref().is_none_or(|f| matches(f, v)))
        .collect();
    Ok(axum::Json(list).into_response())
}

async fn relay(
    state: &McState,
    p: &Principal,
    c: &crate::model::Controller,
    o: pb::Object,
    ctx: &AuditCtx,
) -> Result<Response, ApiError> {
    let key =
        key_of(&o).ok_or_else(|| ApiError::bad_request("\"appinst\": the key is required"))?;
    let req = pb::RelayRequest {
        request: Some(pb::Request {
            kind: pb::request::Kind::AppInstLatency as i32,
            key: Some(key),
        }),
    };
    let mut orgs = Vec::new();
    let r = forward::relay(state, p, c, req, &mut orgs).await;
    for o in &orgs {
        ctx.add_org(o);
    }
    let n = r?.subscribers;
    Ok(axum::Json(json!({
        "message": format!("latency requested through {n} DME(s)"),
        "subscribers": n,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names() {
        assert_eq!(method("CreateApp"), Some((Verb::Create, 0)));
        assert_eq!(method("ShowCloudletInfo").map(|m| m.0), Some(Verb::Show));
        assert_eq!(method("CreateCloudletInfo"), None);
        assert_eq!(method("DeleteSettings"), None);
        assert_eq!(method("CreateSettings").map(|m| m.0), Some(Verb::Create));
        assert_eq!(method("UpdateSettings").map(|m| m.0), Some(Verb::Update));
        assert_eq!(method("FrobApp"), None);
    }

    #[test]
    fn bodies() {
        let b = parse(
            br#"{"region":"eu","appinst":{"key":{"organization":"d"}}}"#,
            1,
        )
        .unwrap();
        assert_eq!(b.region, "eu");
        assert!(matches!(b.object.unwrap().obj, Some(Obj::AppInst(_))));
        let e = parse(br#"{"region":"eu","app":{"colour":1}}"#, 0)
            .err()
            .unwrap();
        assert!(e.message.contains("colour"), "{e}");
        let e = parse(br#"{"app":{}}"#, 0).err().unwrap();
        assert!(e.message.contains("region"), "{e}");
        let e = parse(br#"{"region":"eu","apps":{}}"#, 0).err().unwrap();
        assert!(e.message.contains("apps"), "{e}");
    }

    #[test]
    fn filters_match_set_fields() {
        let v = json!({"key": {"organization": "d", "name": "a"}, "image_path": "x"});
        assert!(matches(&json!({"key": {"organization": "d"}}), &v));
        assert!(!matches(&json!({"key": {"name": "b"}}), &v));
        assert!(matches(&json!({}), &v));
    }
}
