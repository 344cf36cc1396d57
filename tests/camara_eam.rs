//! CAMARA Edge Application Management on the MC over a real region (controller with the fake
//! platform and MC, mutual TLS between them): an app submitted, read and listed, instantiated
//! on a zone of GET /edge-cloud-zones (the controller's ShowAppInst has it), terminated and
//! deleted; another organisation sees nothing of it, a read-only token cannot write, bad and
//! expired tokens are 401, `x-correlator` is checked and echoed. Bodies with members the
//! schemas do not name are accepted; ids naming nothing in a body, and query parameters that
//! break their schemas, are 400. Clusters: a ClusterInst made
//! through the region API is listed (the fake platform makes none for an instance), filtered,
//! and hidden from others; deployments: none can be made (501), so the list is empty and ids
//! are 404.

#[path = "common/camara.rs"]
mod camara;
#[path = "common/mc.rs"]
#[allow(unused_macros)]
mod mc_common;
#[path = "common/mc_region.rs"]
mod mc_region;

use std::time::{Duration, Instant};

use camara::{
    EAM, Reply, access_token, api_key, call, camara_error, eam, manifest, org_with_manager,
};
use mc_common::{Backend, Mc, now};
use mc_region::{Region, result};
use serde_json::{Value, json};

const DEV: &str = "NimbusGames";
const OTHER: &str = "OtherDevelopers";
const OP: &str = "TelcoOperatorA";

/// The tokens: the developer's (every scope), a read-only one (no clusters), another
/// organisation's (every scope); and the developer organisation's manager (a login token).
struct Tokens {
    dev: String,
    read: String,
    other: String,
    manager: String,
}

fn setup(r: &Region) -> Tokens {
    let om = org_with_manager(&r.mc, "opmgr1", OP, "operator");
    let cloudlet = json!({"key": {"organization": OP, "name": "berlin"}, "platform_type": "fake",
                          "location": {"latitude": 52.5, "longitude": 13.4}});
    let (s, b) = r.ctrl(&om, "CreateCloudlet", "cloudlet", cloudlet);
    assert_eq!((s, result(&b).0), (200, 200), "{b}");
    let dm = org_with_manager(&r.mc, "devmgr1", DEV, "developer");
    let om2 = org_with_manager(&r.mc, "devmgr2", OTHER, "developer");
    let all = [
        ("apps", "manage"),
        ("appinsts", "manage"),
        ("cloudlets", "view"),
        ("clusterinsts", "view"),
    ];
    let view = [
        ("apps", "view"),
        ("appinsts", "view"),
        ("cloudlets", "view"),
    ];
    let token = |t: &str, org: &str, perms: &[(&str, &str)]| {
        let (id, secret) = api_key(&r.mc, t, org, perms);
        access_token(&r.mc, &id, &secret, None)
    };
    Tokens {
        dev: token(&dm, DEV, &all),
        read: token(&dm, DEV, &view),
        other: token(&om2, OTHER, &all),
        manager: dm,
    }
}

/// Polls the instance list until `done` holds for it (or 60 s pass).
fn wait_instances(mc: &Mc, token: &str, query: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let r = eam(mc, token, "GET", &format!("/appinstances?{query}"), None);
        assert_eq!(r.status, 200, "{}", r.body);
        if done(&r.body) || start.elapsed() > Duration::from_secs(60) {
            return r.body;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn app_lifecycle() {
    let r = Region::start(Backend::Redb);
    let t = setup(&r);
    let mc = &r.mc;

    // Zones: the operator's cloudlet, with the correlator echoed.
    let auth = format!("Authorization: Bearer {}", t.dev);
    let zones = call(
        mc,
        "GET",
        &format!("{EAM}/edge-cloud-zones"),
        &["-H", &auth, "-H", "x-correlator: corr-42:a/b"],
    );
    assert_eq!(zones.status, 200, "{}", zones.body);
    assert_eq!(zones.header("x-correlator").as_deref(), Some("corr-42:a/b"));
    let zone = zones.body[0].clone();
    assert_eq!(zone["edgeCloudZoneName"], "berlin", "{}", zones.body);
    assert_eq!(zone["edgeCloudProvider"], OP);
    assert_eq!(zone["edgeCloudRegion"], mc_region::REGION);
    let zone_id = zone["edgeCloudZoneId"].as_str().unwrap().to_string();

    // Submit (members the schema does not name are ignored, at every level), read, list.
    let mut extended = manifest(DEV);
    extended["colour"] = json!({"hue": 1});
    extended["appRepo"]["/"] = json!({});
    extended["componentSpec"][0]["networkInterfaces"][0]["lorem"] = json!(null);
    let sub = eam(mc, &t.dev, "POST", "/apps", Some(&extended));
    assert_eq!(sub.status, 201, "{}", sub.body);
    let app_id = sub.body["appId"].as_str().unwrap().to_string();
    let key = edge_model::AppKey {
        organization: DEV.into(),
        name: "arena_shooter".into(),
        version: "2.3".into(),
    };
    assert_eq!(app_id, edge_model::camara_id::app_id(&key));
    camara_error(
        &eam(mc, &t.dev, "POST", "/apps", Some(&manifest(DEV))),
        409,
        "ALREADY_EXISTS",
    );
    camara_error(
        &eam(mc, &t.dev, "POST", "/apps", Some(&manifest(OTHER))),
        403,
        "INVALID_TOKEN_CONTEXT",
    );
    let got = eam(mc, &t.read, "GET", &format!("/apps/{app_id}"), None);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(
        got.body["appManifest"]["appRepo"]["imagePath"],
        "registry.example/arena:2.3"
    );
    let list = eam(mc, &t.read, "GET", "/apps", None);
    assert_eq!(list.body.as_array().map(Vec::len), Some(1), "{}", list.body);
    let (s, native) = r.ctrl(&r.admin, "ShowApp", "app", json!({}));
    assert_eq!(s, 200);
    assert_eq!(native[0]["access_ports"], "tcp:7777", "{native}");

    // Instantiate on the zone (an unknown member ignored).
    let new = json!({"name": "arena_berlin", "appId": app_id, "edgeCloudZoneId": zone_id,
                     "lorem ipsum": {}});
    let inst = eam(mc, &t.dev, "POST", "/appinstances", Some(&new));
    assert_eq!(inst.status, 202, "{}", inst.body);
    let inst_id = inst.body["appInstanceId"].as_str().unwrap().to_string();
    let ikey = edge_model::AppInstKey {
        organization: DEV.into(),
        name: "arena_berlin".into(),
    };
    assert_eq!(inst_id, edge_model::camara_id::app_inst_id(&ikey));
    assert!(inst.header("location").unwrap().contains(&inst_id));
    let listed = wait_instances(mc, &t.read, &format!("appId={app_id}"), |l| {
        l[0]["status"] == "ready"
    });
    assert_eq!(listed[0]["appInstanceId"], inst_id.as_str(), "{listed}");
    assert_eq!(listed[0]["edgeCloudZoneId"], zone_id.as_str());
    assert_eq!(listed[0]["status"], "ready", "{listed}");
    let (_, shown) = r.ctrl(&r.admin, "ShowAppInst", "appinst", json!({}));
    assert_eq!(shown[0]["key"]["name"], "arena_berlin", "{shown}");

    others_see_nothing(mc, &t, &app_id, &inst_id);
    invalid_arguments(mc, &t, &app_id, &zone_id);
    refusals(mc, &t, &inst_id);
    clusters(&r, &t, &zone_id);
    deployments(mc, &t, &app_id, &zone_id);
    camara_error(
        &eam(mc, &t.dev, "DELETE", &format!("/apps/{app_id}"), None),
        409,
        "ABORTED",
    );

    // Terminate, then delete the app.
    let del = eam(
        mc,
        &t.dev,
        "DELETE",
        &format!("/appinstances/{inst_id}"),
        None,
    );
    assert_eq!(del.status, 202, "{}", del.body);
    let gone = wait_instances(mc, &t.dev, "", |l| l.as_array().is_some_and(Vec::is_empty));
    assert_eq!(gone, json!([]));
    let (_, shown) = r.ctrl(&r.admin, "ShowAppInst", "appinst", json!({}));
    assert_eq!(shown, json!([]));
    let del = eam(mc, &t.dev, "DELETE", &format!("/apps/{app_id}"), None);
    assert_eq!(del.status, 204, "{}", del.body);
    camara_error(
        &eam(mc, &t.dev, "GET", &format!("/apps/{app_id}"), None),
        404,
        "NOT_FOUND",
    );
}

/// Another organisation's token learns nothing of the app or its instance.
fn others_see_nothing(mc: &Mc, t: &Tokens, app_id: &str, inst_id: &str) {
    camara_error(
        &eam(mc, &t.other, "GET", &format!("/apps/{app_id}"), None),
        404,
        "NOT_FOUND",
    );
    assert_eq!(eam(mc, &t.other, "GET", "/apps", None).body, json!([]));
    assert_eq!(
        eam(mc, &t.other, "GET", "/appinstances", None).body,
        json!([])
    );
    camara_error(
        &eam(
            mc,
            &t.other,
            "DELETE",
            &format!("/appinstances/{inst_id}"),
            None,
        ),
        404,
        "NOT_FOUND",
    );
    // createAppInstance documents no 404: an appId naming nothing (here: nothing of this
    // organisation) is 400, named.
    let new = json!({"name": "stolen", "appId": app_id,
                     "edgeCloudZoneId": "00000000-0000-4000-8000-000000000000"});
    let r = eam(mc, &t.other, "POST", "/appinstances", Some(&new));
    camara_error(&r, 400, "INVALID_ARGUMENT");
    assert!(
        r.body["message"].as_str().unwrap().starts_with("appId"),
        "{}",
        r.body
    );
}

/// Bodies naming nothing and query parameters breaking their schemas are 400 naming the
/// member or parameter.
fn invalid_arguments(mc: &Mc, t: &Tokens, app_id: &str, zone_id: &str) {
    let nowhere = "00000000-0000-4000-8000-000000000000";
    for (app, zone, named) in [
        ("00000000-0000-1000-8000-000000000000", zone_id, "appId"),
        (app_id, nowhere, "edgeCloudZoneId"),
        (app_id, "not-a-zone", "edgeCloudZoneId"),
        (&app_id.to_uppercase(), zone_id, "appId"),
    ] {
        let new = json!({"name": "arena_nowhere", "appId": app, "edgeCloudZoneId": zone});
        let r = eam(mc, &t.dev, "POST", "/appinstances", Some(&new));
        camara_error(&r, 400, "INVALID_ARGUMENT");
        let message = r.body["message"].as_str().unwrap();
        assert!(message.starts_with(named), "{new}: {}", r.body);
    }
    let nulled = json!({"name": "arena_null", "appId": app_id, "edgeCloudZoneId": zone_id,
                        "kubernetesClusterRef": null});
    camara_error(
        &eam(mc, &t.dev, "POST", "/appinstances", Some(&nulled)),
        400,
        "INVALID_ARGUMENT",
    );
    let long = "0".repeat(65);
    for (path, named) in [
        (format!("/appinstances?region={long}"), "region"),
        (format!("/edge-cloud-zones?region={long}"), "region"),
        (
            format!("/appinstances?appId={}", app_id.to_uppercase()),
            "appId",
        ),
        ("/appinstances?appInstanceId=x".to_string(), "appInstanceId"),
        ("/edge-cloud-zones?status=busy".to_string(), "status"),
    ] {
        let r = eam(mc, &t.dev, "GET", &path, None);
        camara_error(&r, 400, "INVALID_ARGUMENT");
        let message = r.body["message"].as_str().unwrap();
        assert!(message.starts_with(named), "{path}: {}", r.body);
    }
    let most = "0".repeat(64);
    for path in [
        format!("/appinstances?region={most}"),
        format!("/edge-cloud-zones?region={most}"),
    ] {
        let r = eam(mc, &t.dev, "GET", &path, None);
        assert_eq!((r.status, &r.body), (200, &json!([])), "{path}");
    }
}

fn refusals(mc: &Mc, t: &Tokens, inst_id: &str) {
    camara_error(
        &eam(mc, &t.read, "POST", "/apps", Some(&manifest(DEV))),
        403,
        "PERMISSION_DENIED",
    );
    camara_error(
        &eam(
            mc,
            &t.read,
            "DELETE",
            &format!("/appinstances/{inst_id}"),
            None,
        ),
        403,
        "PERMISSION_DENIED",
    );
    camara_error(
        &eam(mc, "garbage", "GET", "/apps", None),
        401,
        "UNAUTHENTICATED",
    );
    let none = call(mc, "GET", &format!("{EAM}/apps"), &[]);
    camara_error(&none, 401, "UNAUTHENTICATED");
    // A well-signed token that expired.
    let keys = mc::auth::SigningKeys::load(&mc.signing_keys_file()).unwrap();
    let claims = json!({"iss": mc.url, "sub": "k", "client_id": "k", "org": DEV,
        "scope": "edge-application-management:apps:read", "iat": now() - 7200,
        "exp": now() - 3600, "jti": "j"});
    let expired = keys.sign_typed("at+jwt", &claims);
    let r = eam(mc, &expired, "GET", "/apps", None);
    camara_error(&r, 401, "UNAUTHENTICATED");
    assert!(
        r.body["message"].as_str().unwrap().contains("expire"),
        "{}",
        r.body
    );
    let auth = format!("Authorization: Bearer {}", t.dev);
    let bad = call(
        mc,
        "GET",
        &format!("{EAM}/apps"),
        &["-H", &auth, "-H", "x-correlator: not valid!"],
    );
    camara_error(&bad, 400, "INVALID_ARGUMENT");
}

/// `GET /clusters` with `query` as `token`: the list.
fn list_clusters(mc: &Mc, token: &str, query: &str) -> Value {
    let r = eam(mc, token, "GET", &format!("/clusters{query}"), None);
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.body
}

/// The developer's cluster is listed as ClusterInfo (the instance made none), with filters;
/// others see nothing, a token without the clusters scope is refused, bad filters are 400.
fn clusters(r: &Region, t: &Tokens, zone_id: &str) {
    let mc = &r.mc;
    assert_eq!(list_clusters(mc, &t.dev, ""), json!([]));
    let cl = json!({"key": {"organization": DEV, "name": "arena_pool"},
                    "cloudlet": {"organization": OP, "name": "berlin"}});
    let (s, b) = r.ctrl(&t.manager, "CreateClusterInst", "clusterinst", cl);
    assert_eq!((s, result(&b).0), (200, 200), "{b}");

    let auth = format!("Authorization: Bearer {}", t.dev);
    let all = call(
        mc,
        "GET",
        &format!("{EAM}/clusters"),
        &["-H", &auth, "-H", "x-correlator: clusters-1"],
    );
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.header("x-correlator").as_deref(), Some("clusters-1"));
    let key = edge_api::pb::ClusterKey {
        organization: DEV.into(),
        name: "arena_pool".into(),
    };
    let cluster_ref = mc::server::camara::clusters::cluster_ref(&key);
    assert_eq!(&cluster_ref[14..15], "5", "{cluster_ref}");
    let expected = json!([{"name": "arena_pool", "provider": DEV, "clusterRef": cluster_ref,
                           "edgeCloudZoneId": zone_id, "edgeCloudRegion": mc_region::REGION}]);
    assert_eq!(all.body, expected);

    let elsewhere = "00000000-0000-4000-8000-000000000000";
    for (query, found) in [
        (format!("?clusterRef={cluster_ref}"), true),
        (format!("?edgeCloudZoneId={zone_id}"), true),
        (format!("?region={}", mc_region::REGION), true),
        (
            format!("?region={}&edgeCloudZoneId={zone_id}", mc_region::REGION),
            true,
        ),
        (format!("?clusterRef={elsewhere}"), false),
        (format!("?edgeCloudZoneId={elsewhere}"), false),
        ("?region=mars".to_string(), false),
    ] {
        let want = if found { expected.clone() } else { json!([]) };
        assert_eq!(list_clusters(mc, &t.dev, &query), want, "{query}");
    }
    let long = format!("?region={}", "r".repeat(65));
    let upper = format!("?clusterRef={}", cluster_ref.to_uppercase());
    for query in [
        "?clusterRef=not-a-uuid",
        &upper,
        "?edgeCloudZoneId=",
        "?colour=red",
        "?region=eu&region=eu",
        &long,
    ] {
        let r = eam(mc, &t.dev, "GET", &format!("/clusters{query}"), None);
        camara_error(&r, 400, "INVALID_ARGUMENT");
    }

    assert_eq!(list_clusters(mc, &t.other, ""), json!([]));
    camara_error(
        &eam(mc, &t.read, "GET", "/clusters", None),
        403,
        "PERMISSION_DENIED",
    );
    let none = call(mc, "GET", &format!("{EAM}/clusters"), &[]);
    camara_error(&none, 401, "UNAUTHENTICATED");
}

/// A PATCH with a JSON Merge Patch body.
fn patch(mc: &Mc, token: &str, id: &str, body: &str) -> Reply {
    let auth = format!("Authorization: Bearer {token}");
    let args = [
        "-H",
        &auth,
        "-H",
        "Content-Type: application/merge-patch+json",
        "--data-binary",
        body,
    ];
    call(mc, "PATCH", &format!("{EAM}/deployments/{id}"), &args)
}

/// No deployment can be made (501), so none is listed and every id is 404; malformed ids,
/// queries and bodies are 400, missing scopes 403.
fn deployments(mc: &Mc, t: &Tokens, app_id: &str, zone_id: &str) {
    let dep = json!({"appDeploymentName": "arena_eu", "appId": app_id,
                     "edgeCloudZones": [zone_id]});
    camara_error(
        &eam(mc, &t.dev, "POST", "/deployments", Some(&dep)),
        501,
        "NOT_IMPLEMENTED",
    );
    let bad = json!({"appDeploymentName": "d", "appId": "x", "edgeCloudZones": []});
    camara_error(
        &eam(mc, &t.dev, "POST", "/deployments", Some(&bad)),
        400,
        "INVALID_ARGUMENT",
    );
    camara_error(
        &eam(mc, &t.read, "POST", "/deployments", Some(&dep)),
        403,
        "PERMISSION_DENIED",
    );

    for query in ["", &format!("?appId={app_id}")] {
        let r = eam(mc, &t.read, "GET", &format!("/deployments{query}"), None);
        assert_eq!((r.status, &r.body), (200, &json!([])), "{query}");
    }
    for query in ["?appDeploymentId=nope", "?appId=1", "?colour=red"] {
        let r = eam(mc, &t.read, "GET", &format!("/deployments{query}"), None);
        camara_error(&r, 400, "INVALID_ARGUMENT");
    }

    let id = "123e4567-e89b-12d3-a456-426614174000";
    let path = format!("/deployments/{id}");
    camara_error(&eam(mc, &t.dev, "DELETE", &path, None), 404, "NOT_FOUND");
    camara_error(
        &eam(mc, &t.dev, "DELETE", "/deployments/not-a-uuid", None),
        400,
        "INVALID_ARGUMENT",
    );
    let rename = r#"{"appDeploymentName": "renamed", "edgeCloudZones": []}"#;
    camara_error(&patch(mc, &t.dev, id, rename), 404, "NOT_FOUND");
    for body in [
        r#"{"appDeploymentName": 7}"#,
        r#"{"edgeCloudZones": ["x"]}"#,
        "[]",
        "",
    ] {
        camara_error(&patch(mc, &t.dev, id, body), 400, "INVALID_ARGUMENT");
    }
    camara_error(&patch(mc, &t.dev, "123", rename), 400, "INVALID_ARGUMENT");
    // The spec has no GET of one deployment.
    let get = eam(mc, &t.dev, "GET", &path, None);
    assert_eq!(get.status, 405, "{}", get.body);
    assert!(get.header("allow").is_some_and(|a| a.contains("PATCH")));

    camara_error(
        &eam(mc, &t.read, "DELETE", &path, None),
        403,
        "PERMISSION_DENIED",
    );
    camara_error(&patch(mc, &t.read, id, rename), 403, "PERMISSION_DENIED");
    camara_error(
        &eam(mc, "garbage", "GET", "/deployments", None),
        401,
        "UNAUTHENTICATED",
    );
}
