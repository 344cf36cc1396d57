//! `/apps`: an AppManifest is a region's App. Name, version and the token's organisation make
//! its key; `appId` is `camara_id::app_id(key)`. Package types: CONTAINER → docker, HELM →
//! helm, QCOW2 and OVA → vm, CSAR → 501 (no such deployment here; the spec documents 501). `appRepo.imagePath` is the
//! image path; the external network interfaces of `componentSpec` are its access ports (TCP
//! `tcp:P`, UDP `udp:P`, ANY both). What an App cannot keep (interface ids, internal ports,
//! `requiredResources`, `operatingSystem`, repository credentials) is listed in the README.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edge_api::pb::{self, object::Obj};
use edge_auth::scopes;
use edge_model::camara_id;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::auth::{Body, Caller, non_null, spec_id};
use super::error::CamaraError;
use super::{BASE, Wait, mutate, regions, self_recorded, show};
use crate::server::region::forward::Mutation;
use crate::server::state::McState;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PackageType {
    Qcow2,
    Ova,
    Container,
    Helm,
    Csar,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RepoType {
    #[serde(rename = "PUBLICREPO")]
    Public,
    #[serde(rename = "PRIVATEREPO")]
    Private,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthType {
    Docker,
    HttpBasic,
    HttpBearer,
    None,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRepo {
    #[serde(rename = "type")]
    pub kind: RepoType,
    pub image_path: String,
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_name: Option<String>,
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub credentials: Option<String>,
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_type: Option<AuthType>,
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub checksum: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    #[serde(rename = "VISIBILITY_EXTERNAL")]
    External,
    #[serde(rename = "VISIBILITY_INTERNAL")]
    Internal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    pub interface_id: String,
    pub protocol: Protocol,
    pub port: u16,
    pub visibility_type: Visibility,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub component_name: String,
    pub network_interfaces: Vec<NetworkInterface>,
}

/// The spec's AppManifest. Unknown members are ignored at every level (no schema of it says
/// `additionalProperties: false`); `null` is refused for optional members as for required
/// ones. `requiredResources` and `operatingSystem` are checked for shape only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppManifest {
    /// Checked against the id pattern, then ignored when submitted: the platform makes the id.
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub app_id: Option<String>,
    pub name: String,
    pub app_provider: String,
    pub version: String,
    pub package_type: PackageType,
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub operating_system: Option<Map<String, Value>>,
    pub app_repo: AppRepo,
    pub required_resources: Value,
    pub component_spec: Vec<Component>,
}

/// `^[A-Za-z][A-Za-z0-9_]{min,63}$` (names, providers, interface ids differ only in `min`).
pub(super) fn name_ok(s: &str, min: usize) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && (min + 1..=64).contains(&s.len())
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// `^[A-Za-z0-9][A-Za-z0-9_]{2,30}[A-Za-z0-9]$`.
fn interface_id_ok(s: &str) -> bool {
    let b = s.as_bytes();
    (4..=32).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// `operatingSystem`: its four members, each one of the spec's values.
fn check_os(os: &Map<String, Value>) -> Result<(), CamaraError> {
    const MEMBERS: [(&str, &[&str]); 4] = [
        ("architecture", &["x86_64", "x86"]),
        ("family", &["RHEL", "UBUNTU", "COREOS", "WINDOWS", "OTHER"]),
        (
            "version",
            &[
                "OS_VERSION_UBUNTU_2204_LTS",
                "OS_VERSION_RHEL_8",
                "OS_MS_WINDOWS_2022",
                "OTHER",
            ],
        ),
        (
            "license",
            &["OS_LICENSE_TYPE_FREE", "OS_LICENSE_TYPE_ON_DEMAND", "OTHER"],
        ),
    ];
    for (member, allowed) in MEMBERS {
        if !os
            .get(member)
            .and_then(Value::as_str)
            .is_some_and(|v| allowed.contains(&v))
        {
            return Err(CamaraError::invalid(format!(
                "operatingSystem.{member}: required, one of {}",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

/// The schema's `maxLength`s and `maxItems` the types do not already hold.
fn check_lengths(m: &AppManifest) -> Result<(), CamaraError> {
    let long = |s: &Option<String>, max: usize| s.as_ref().is_some_and(|s| s.chars().count() > max);
    let repo = &m.app_repo;
    for (field, value, max) in [
        ("appRepo.userName", &repo.user_name, 64),
        ("appRepo.credentials", &repo.credentials, 2048),
        ("appRepo.checksum", &repo.checksum, 128),
    ] {
        if long(value, max) {
            return Err(CamaraError::invalid(format!(
                "{field}: at most {max} characters"
            )));
        }
    }
    if m.component_spec.len() > 100 {
        return Err(CamaraError::invalid("componentSpec: at most 100 items"));
    }
    for c in &m.component_spec {
        if c.component_name.chars().count() > 64 {
            return Err(CamaraError::invalid(
                "componentSpec[].componentName: at most 64 characters",
            ));
        }
        if c.network_interfaces.len() > 100 {
            return Err(CamaraError::invalid(
                "componentSpec[].networkInterfaces: at most 100 items",
            ));
        }
    }
    Ok(())
}

/// The access ports of the external interfaces (`tcp:80,udp:7000`), in order, without repeats.
fn access_ports(spec: &[Component]) -> Result<String, CamaraError> {
    let mut ports: Vec<String> = Vec::new();
    for c in spec {
        if c.network_interfaces.is_empty() {
            return Err(CamaraError::invalid(format!(
                "componentSpec {:?}: networkInterfaces must not be empty",
                c.component_name
            )));
        }
        for i in &c.network_interfaces {
            if i.port == 0 {
                return Err(CamaraError::invalid(format!(
                    "interface {:?}: port must be within 1..=65535",
                    i.interface_id
                )));
            }
            if i.visibility_type == Visibility::Internal {
                continue;
            }
            let protos: &[&str] = match i.protocol {
                Protocol::Tcp => &["tcp"],
                Protocol::Udp => &["udp"],
                Protocol::Any => &["tcp", "udp"],
            };
            for p in protos {
                let entry = format!("{p}:{}", i.port);
                if !ports.contains(&entry) {
                    ports.push(entry);
                }
            }
        }
    }
    let text = ports.join(",");
    edge_model::ports::parse_access_ports(&text)
        .map_err(|e| CamaraError::invalid(format!("componentSpec: {e}")))?;
    Ok(text)
}

/// The App a manifest describes, in organisation `org` (the token's).
pub fn to_app(m: &AppManifest, org: &str) -> Result<pb::App, CamaraError> {
    if !name_ok(&m.name, 1) {
        return Err(CamaraError::invalid(format!(
            "name {:?}: must match ^[A-Za-z][A-Za-z0-9_]{{1,63}}$",
            m.name
        )));
    }
    if !name_ok(&m.app_provider, 7) {
        return Err(CamaraError::invalid(format!(
            "appProvider {:?}: must match ^[A-Za-z][A-Za-z0-9_]{{7,63}}$",
            m.app_provider
        )));
    }
    if let Some(id) = &m.app_id {
        spec_id("appId", id)?;
    }
    if m.version.chars().count() > 64 {
        return Err(CamaraError::invalid("version: at most 64 characters"));
    }
    if let Some(os) = &m.operating_system {
        check_os(os)?;
    }
    check_lengths(m)?;
    let kind = m
        .required_resources
        .get("infraKind")
        .and_then(Value::as_str);
    if !matches!(
        kind,
        Some("kubernetes" | "virtualMachine" | "container" | "dockerCompose")
    ) {
        return Err(CamaraError::invalid(
            "requiredResources.infraKind: kubernetes, virtualMachine, container or dockerCompose",
        ));
    }
    let repo = &m.app_repo;
    if repo.image_path.chars().count() > 2048 {
        return Err(CamaraError::invalid(
            "appRepo.imagePath: at most 2048 characters",
        ));
    }
    for i in m.component_spec.iter().flat_map(|c| &c.network_interfaces) {
        let id = &i.interface_id;
        if !interface_id_ok(id) {
            return Err(CamaraError::invalid(format!(
                "interfaceId {id:?}: 4 to 32 letters, digits or _"
            )));
        }
    }
    let access_ports = access_ports(&m.component_spec)?;
    // Then: a request wrong in shape is 400 whoever sends it, and 501 only when well formed.
    if !m.app_provider.eq_ignore_ascii_case(org) {
        return Err(CamaraError::token_context(format!(
            "appProvider {:?} is not the access token's organisation {org}",
            m.app_provider
        )));
    }
    let deployment = match m.package_type {
        PackageType::Container => pb::DeploymentKind::Docker,
        PackageType::Helm => pb::DeploymentKind::Helm,
        PackageType::Qcow2 | PackageType::Ova => pb::DeploymentKind::Vm,
        PackageType::Csar => {
            return Err(CamaraError::not_implemented(
                "packageType CSAR is not supported (CONTAINER, HELM, QCOW2 or OVA)",
            ));
        }
    };
    if repo.user_name.is_some() || repo.credentials.is_some() {
        // An App has nowhere to keep a secret; it must not end up in the image path.
        return Err(CamaraError::not_implemented(
            "appRepo: credentials for private repositories are not supported",
        ));
    }
    // The schema allows both empty; an App's key needs a version, an App an image.
    if m.version.is_empty() {
        return Err(CamaraError::not_implemented(
            "version: an empty version is not supported",
        ));
    }
    if repo.image_path.is_empty() {
        return Err(CamaraError::not_implemented(
            "appRepo.imagePath: an empty image path is not supported",
        ));
    }
    Ok(pb::App {
        key: Some(pb::AppKey {
            organization: org.to_string(),
            name: m.name.clone(),
            version: m.version.clone(),
        }),
        deployment: deployment as i32,
        image_path: repo.image_path.clone(),
        access_ports,
        ..Default::default()
    })
}

fn model_key(k: &pb::AppKey) -> edge_model::AppKey {
    edge_model::AppKey {
        organization: k.organization.clone(),
        name: k.name.clone(),
        version: k.version.clone(),
    }
}

/// The application id of an App.
pub fn id_of(app: &pb::App) -> String {
    camara_id::app_id(&model_key(&app.key.clone().unwrap_or_default()))
}

/// An App as a manifest. `requiredResources` is not kept: a minimal object of the package's
/// infrastructure kind stands in for it.
pub fn from_app(app: &pb::App) -> AppManifest {
    let key = app.key.clone().unwrap_or_default();
    let (package_type, resources) = match pb::DeploymentKind::try_from(app.deployment) {
        Ok(pb::DeploymentKind::Helm | pb::DeploymentKind::Kubernetes) => (
            PackageType::Helm,
            json!({"infraKind": "kubernetes", "applicationResources": {}, "isStandalone": false}),
        ),
        Ok(pb::DeploymentKind::Vm) => (
            PackageType::Qcow2,
            json!({"infraKind": "virtualMachine", "numCPU": 1, "memory": 1024}),
        ),
        _ => (
            PackageType::Container,
            json!({"infraKind": "container", "numCPU": "1", "memory": 1024}),
        ),
    };
    let interfaces = edge_model::ports::parse_access_ports(&app.access_ports)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let udp = p.proto == edge_model::ports::LProto::Udp;
            NetworkInterface {
                interface_id: format!("{}_{}", if udp { "udp" } else { "tcp" }, p.internal_port),
                protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
                port: u16::try_from(p.internal_port).unwrap_or(0),
                visibility_type: Visibility::External,
            }
        })
        .collect::<Vec<_>>();
    let component_spec = if interfaces.is_empty() {
        Vec::new()
    } else {
        vec![Component {
            component_name: key.name.clone(),
            network_interfaces: interfaces,
        }]
    };
    AppManifest {
        app_id: Some(id_of(app)),
        name: key.name.clone(),
        app_provider: key.organization.clone(),
        version: key.version.clone(),
        package_type,
        operating_system: None,
        app_repo: AppRepo {
            kind: RepoType::Public,
            image_path: app.image_path.clone(),
            user_name: None,
            credentials: None,
            auth_type: None,
            checksum: None,
        },
        required_resources: resources,
        component_spec,
    }
}

/// The caller's apps in every region, each once (the first region's copy), with its regions.
pub async fn apps_of(
    state: &McState,
    caller: &Caller,
) -> Result<Vec<(pb::App, Vec<crate::model::Controller>)>, CamaraError> {
    let mut out: Vec<(pb::App, Vec<crate::model::Controller>)> = Vec::new();
    for c in regions(state, None).await? {
        for o in show(state, caller, &c, pb::ObjectKind::App, &caller.org).await? {
            let Some(Obj::App(app)) = o.obj else { continue };
            match out.iter_mut().find(|(a, _)| a.key == app.key) {
                Some((_, rs)) => rs.push(c.clone()),
                None => out.push((app, vec![c.clone()])),
            }
        }
    }
    Ok(out)
}

/// The caller's app with id `id` and the regions that have it (404 if none).
pub async fn find(
    state: &McState,
    caller: &Caller,
    id: &str,
) -> Result<(pb::App, Vec<crate::model::Controller>), CamaraError> {
    let want = spec_id("appId", id)?;
    apps_of(state, caller)
        .await?
        .into_iter()
        .find(|(a, _)| camara_id::parse(&id_of(a)) == Some(want))
        .ok_or_else(|| CamaraError::not_found(format!("application {id} not found")))
}

/// The statuses the spec lists for each operation (any other error becomes 500).
const SUBMIT: [u16; 7] = [400, 401, 403, 409, 500, 501, 503];
const LIST: [u16; 5] = [400, 401, 403, 500, 503];
const GET_ONE: [u16; 6] = [400, 401, 403, 404, 500, 503];
const DELETE: [u16; 7] = [400, 401, 403, 404, 409, 500, 503];

/// `POST /apps`: the App in every registered region; 201 `{appId}`.
pub async fn submit(
    State(state): State<Arc<McState>>,
    caller: Caller,
    Body(m): Body<AppManifest>,
) -> Result<Response, CamaraError> {
    submit_app(state, caller, m)
        .await
        .map_err(|e| e.within(&SUBMIT))
}

async fn submit_app(
    state: Arc<McState>,
    caller: Caller,
    m: AppManifest,
) -> Result<Response, CamaraError> {
    caller.require(scopes::EAM_APPS_WRITE)?;
    let app = to_app(&m, &caller.org)?;
    let all = regions(&state, None).await?;
    if all.is_empty() {
        return Err(CamaraError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "no region is registered",
        ));
    }
    let request = serde_json::to_value(&m).unwrap_or_default();
    let op = format!("{BASE}/apps");
    let mut done = Vec::new();
    for c in all {
        let m = Mutation::Create(pb::Object {
            obj: Some(Obj::App(app.clone())),
        });
        let r = mutate(
            &state,
            &caller,
            c.clone(),
            m,
            (&op, &request),
            (Wait::Done, "ALREADY_EXISTS"),
        )
        .await;
        if let Err(e) = r {
            undo(&state, &caller, &app, done).await;
            return Err(e);
        }
        done.push(c);
    }
    let body = json!({"appId": id_of(&app)});
    Ok(self_recorded(
        (StatusCode::CREATED, axum::Json(body)).into_response(),
    ))
}

/// Deletes `app` from `regions` after a failed submit (best effort: logged).
async fn undo(
    state: &Arc<McState>,
    caller: &Caller,
    app: &pb::App,
    regions: Vec<crate::model::Controller>,
) {
    let Some(key) = app.key.clone() else { return };
    for c in regions {
        let m = Mutation::Delete(pb::ObjectKey {
            key: Some(pb::object_key::Key::App(key.clone())),
        });
        let op = format!("{BASE}/apps (undo)");
        let region = c.region.clone();
        if let Err(e) = mutate(
            state,
            caller,
            c,
            m,
            (&op, &Value::Null),
            (Wait::Done, "CONFLICT"),
        )
        .await
        {
            tracing::warn!(region, "undoing a partial app submit: {e}");
        }
    }
}

/// `GET /apps`: the caller's applications.
pub async fn list(
    State(state): State<Arc<McState>>,
    caller: Caller,
) -> Result<Response, CamaraError> {
    let list = async {
        caller.require(scopes::EAM_APPS_READ)?;
        apps_of(&state, &caller).await
    };
    let list: Vec<AppManifest> = list
        .await
        .map_err(|e| e.within(&LIST))?
        .iter()
        .map(|(a, _)| from_app(a))
        .collect();
    Ok(axum::Json(list).into_response())
}

/// `GET /apps/{appId}`: `{"appManifest": ...}`.
pub async fn get_one(
    State(state): State<Arc<McState>>,
    Path(app_id): Path<String>,
    caller: Caller,
) -> Result<Response, CamaraError> {
    let found = async {
        caller.require(scopes::EAM_APPS_READ)?;
        find(&state, &caller, &app_id).await
    };
    let (app, _) = found.await.map_err(|e| e.within(&GET_ONE))?;
    Ok(axum::Json(json!({"appManifest": from_app(&app)})).into_response())
}

/// `DELETE /apps/{appId}`: from every region that has it; 409 while instances of it exist.
pub async fn delete(
    State(state): State<Arc<McState>>,
    Path(app_id): Path<String>,
    caller: Caller,
) -> Result<Response, CamaraError> {
    delete_app(state, app_id, caller)
        .await
        .map_err(|e| e.within(&DELETE))
}

async fn delete_app(
    state: Arc<McState>,
    app_id: String,
    caller: Caller,
) -> Result<Response, CamaraError> {
    caller.require(scopes::EAM_APPS_DELETE)?;
    let (app, regions) = find(&state, &caller, &app_id).await?;
    let key = app.key.clone().unwrap_or_default();
    for c in &regions {
        let insts = show(&state, &caller, c, pb::ObjectKind::AppInst, &caller.org).await;
        // Without the right to view instances the controller's own refusal decides.
        let running = insts
            .unwrap_or_default()
            .into_iter()
            .any(|o| matches!(o.obj, Some(Obj::AppInst(i)) if i.app.as_ref() == Some(&key)));
        if running {
            return Err(CamaraError::conflict(
                "ABORTED",
                format!(
                    "application {app_id} has instances in region {}: terminate them first",
                    c.region
                ),
            ));
        }
    }
    let op = format!("{BASE}/apps/{app_id}");
    for c in regions {
        let m = Mutation::Delete(pb::ObjectKey {
            key: Some(pb::object_key::Key::App(key.clone())),
        });
        mutate(
            &state,
            &caller,
            c,
            m,
            (&op, &Value::Null),
            (Wait::Done, "ABORTED"),
        )
        .await?;
    }
    Ok(self_recorded(StatusCode::NO_CONTENT.into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> AppManifest {
        serde_json::from_value(json!({
            "name": "arena_shooter", "appProvider": "NimbusGames", "version": "2.3",
            "packageType": "CONTAINER",
            "appRepo": {"type": "PUBLICREPO", "imagePath": "registry.example/arena:2.3"},
            "requiredResources": {"infraKind": "container", "numCPU": "500m", "memory": 512},
            "componentSpec": [{"componentName": "game", "networkInterfaces": [
                {"interfaceId": "game_tcp", "protocol": "TCP", "port": 7777,
                 "visibilityType": "VISIBILITY_EXTERNAL"},
                {"interfaceId": "voice", "protocol": "ANY", "port": 7000,
                 "visibilityType": "VISIBILITY_EXTERNAL"},
                {"interfaceId": "metrics", "protocol": "TCP", "port": 9100,
                 "visibilityType": "VISIBILITY_INTERNAL"}]}]
        }))
        .unwrap()
    }

    #[test]
    fn manifests_become_apps_and_back() {
        let app = to_app(&manifest(), "NimbusGames").unwrap();
        assert_eq!(app.access_ports, "tcp:7777,tcp:7000,udp:7000");
        assert_eq!(app.deployment, pb::DeploymentKind::Docker as i32);
        assert_eq!(app.image_path, "registry.example/arena:2.3");
        let back = from_app(&app);
        assert_eq!(back.app_id.as_deref(), Some(id_of(&app).as_str()));
        assert_eq!(
            (back.name.as_str(), back.version.as_str()),
            ("arena_shooter", "2.3")
        );
        assert_eq!(back.package_type, PackageType::Container);
        let ifs = &back.component_spec[0].network_interfaces;
        assert_eq!(ifs.len(), 3);
        assert_eq!(ifs[2].interface_id, "udp_7000");
        assert_eq!(ifs[2].protocol, Protocol::Udp);
    }

    #[test]
    fn manifests_are_checked() {
        let err = |m: AppManifest, org: &str| to_app(&m, org).unwrap_err();
        assert_eq!(err(manifest(), "OtherOrg1").code, "INVALID_TOKEN_CONTEXT");
        let mut m = manifest();
        m.package_type = PackageType::Csar;
        assert!(err(m, "NimbusGames").message.contains("CSAR"));
        let mut m = manifest();
        m.name = "9lives".into();
        assert!(err(m, "NimbusGames").message.contains("name"));
        let mut m = manifest();
        m.app_repo.credentials = Some("hunter2".into());
        let e = err(m, "NimbusGames");
        assert!(!e.message.contains("hunter2") && e.message.contains("credentials"));
        let mut m = manifest();
        m.required_resources = json!({"infraKind": "mainframe"});
        assert!(err(m, "NimbusGames").message.contains("infraKind"));
        let mut m = manifest();
        m.component_spec[0].network_interfaces[0].interface_id = "a b".into();
        assert!(err(m, "NimbusGames").message.contains("interfaceId"));
        let mut m = manifest();
        m.app_id = Some("642F6105-7015-4af1-a4d1-e1ecb8437abc".into());
        assert!(err(m, "NimbusGames").message.starts_with("appId"));
        let mut m = manifest();
        m.package_type = PackageType::Csar;
        m.app_repo.checksum = Some("c".repeat(129));
        assert_eq!(
            err(m, "NimbusGames").code,
            "INVALID_ARGUMENT",
            "400 before 501"
        );
        let mut m = manifest();
        m.version.clear();
        assert_eq!(err(m, "NimbusGames").code, "NOT_IMPLEMENTED");
        let mut m = manifest();
        m.version = "v".repeat(65);
        assert_eq!(err(m, "NimbusGames").code, "INVALID_ARGUMENT");
        assert!(serde_json::from_value::<AppManifest>(json!({"colour": 1})).is_err());
    }

    /// Unknown members are ignored at every level; `null` is refused where a type is given.
    #[test]
    fn manifests_are_parsed_as_their_schema() {
        let parse = |v: Value| serde_json::from_value::<AppManifest>(v);
        let mut v = serde_json::to_value(manifest()).unwrap();
        v["colour"] = json!({});
        v["appRepo"]["/"] = json!({});
        v["componentSpec"][0]["x"] = json!(1);
        v["componentSpec"][0]["networkInterfaces"][0]["y"] = json!(null);
        assert_eq!(parse(v).unwrap(), manifest());
        for (path, value) in [
            ("/appRepo/checksum", json!(null)),
            ("/appRepo/authType", json!("KERBEROS")),
            ("/appRepo/type", json!(null)),
            ("/operatingSystem", json!(null)),
            ("/operatingSystem", json!("UBUNTU")),
            ("/appId", json!(null)),
            ("/version", json!(2.3)),
        ] {
            let mut v = serde_json::to_value(manifest()).unwrap();
            let (parent, last) = path.rsplit_once('/').unwrap();
            let target = if parent.is_empty() {
                &mut v
            } else {
                v.pointer_mut(parent).unwrap()
            };
            target[last] = value.clone();
            assert!(parse(v).is_err(), "{path}: {value}");
        }
        let mut m = manifest();
        let os = json!({"architecture": "x86_64", "family": "UBUNTU",
                        "version": "OS_VERSION_UBUNTU_2204_LTS", "license": "OTHER"});
        m.operating_system = os.as_object().cloned();
        to_app(&m, "NimbusGames").unwrap();
        m.operating_system.as_mut().unwrap()["family"] = json!("DOS");
        let e = to_app(&m, "NimbusGames").unwrap_err();
        assert!(e.message.starts_with("operatingSystem.family"), "{e}");
        let mut m = manifest();
        m.app_repo.checksum = Some("c".repeat(129));
        assert!(
            to_app(&m, "NimbusGames")
                .unwrap_err()
                .message
                .contains("checksum")
        );
    }
}
