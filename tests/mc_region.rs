//! The MC in front of a region, all real processes on 127.0.0.1 with mutual TLS between MC and
//! controller: who may create, show and delete what through `/api/v1/auth/ctrl/<Method>` and
//! through the MC's gRPC face (`edgectl` after `edgectl login`). On the embedded store; again
//! on PostgreSQL when `EDGEPLANE_PG_URL` is set.

#[path = "common/mc.rs"]
#[allow(unused_macros)]
mod mc_common;
#[path = "common/mc_region.rs"]
mod mc_region;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use mc_common::{A, Backend, msg};
use mc_region::{REGION, Region, lines, result};
use serde_json::{Value, json};

fn app(org: &str, name: &str) -> Value {
    json!({"key": {"organization": org, "name": name, "version": "1"},
           "deployment": "DEPLOYMENT_KIND_DOCKER", "image_path": "nginx", "access_ports": "tcp:80"})
}

fn app_inst(org: &str, name: &str, app_org: &str, app_name: &str, cloudlet: (&str, &str)) -> Value {
    json!({"key": {"organization": org, "name": name},
           "app": {"organization": app_org, "name": app_name, "version": "1"},
           "cloudlet": {"organization": cloudlet.0, "name": cloudlet.1}})
}

fn cloudlet(org: &str, name: &str) -> Value {
    json!({"key": {"organization": org, "name": name}, "platform_type": "fake",
           "location": {"latitude": 52.5, "longitude": 13.4}})
}

/// Users and organisations: dm1 manages devA (with contributor dc and viewer dv), dm2 devB,
/// om1 opA, om2 opB; `nobody` holds no role. Returns their tokens by name.
fn people(r: &Region) -> std::collections::HashMap<&'static str, String> {
    let mut t = std::collections::HashMap::new();
    for u in ["dm1", "dm2", "dc", "dv", "nobody", "om1", "om2"] {
        t.insert(u, r.mc.user(u));
    }
    for (u, org, ty) in [
        ("dm1", "devA", "developer"),
        ("dm2", "devB", "developer"),
        ("om1", "opA", "operator"),
        ("om2", "opB", "operator"),
    ] {
        let (s, b) = r.mc.post(
            &format!("{A}/org/create"),
            Some(&t[u]),
            &json!({"name": org, "type": ty}),
        );
        assert_eq!(s, 200, "{b}");
    }
    for (u, role) in [("dc", "DeveloperContributor"), ("dv", "DeveloperViewer")] {
        let (s, b) = r.mc.post(
            &format!("{A}/role/adduser"),
            Some(&t["dm1"]),
            &json!({"org": "devA", "username": u, "role": role}),
        );
        assert_eq!(s, 200, "{b}");
    }
    t
}

/// A refusal: the status and a word of the message.
#[track_caller]
fn refused((s, b): (u16, Value), status: u16, word: &str) {
    assert_eq!(s, status, "{b}");
    assert!(msg(&b).contains(word), "{word:?} not in {b}");
}

/// A streamed mutation that succeeded; its JSON lines.
#[track_caller]
fn streamed((s, b): (u16, Value)) -> Vec<Value> {
    assert_eq!(s, 200, "{b}");
    assert_eq!(result(&b).0, 200, "{b}");
    lines(&b)
}

/// The `key.name`s of a show's reply.
// Takes a call's result as it comes (`shown(r.ctrl(..))`).
#[allow(clippy::needless_pass_by_value)]
fn shown(r: (u16, Value)) -> Vec<String> {
    assert_eq!(r.0, 200, "{}", r.1);
    let mut v: Vec<String> =
        r.1.as_array()
            .unwrap_or_else(|| panic!("{}", r.1))
            .iter()
            .map(|o| {
                o["key"]["name"]
                    .as_str()
                    .or(o["name"].as_str())
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
    v.sort();
    v
}

fn admin_only(r: &Region, t: &std::collections::HashMap<&str, String>) {
    let flavor = json!({"name": "small", "ram_mb": 1024, "vcpus": 1, "disk_gb": 10});
    refused(
        r.ctrl(&t["dm1"], "CreateFlavor", "flavor", flavor.clone()),
        403,
        "flavors:manage",
    );
    streamed(r.ctrl(&r.admin, "CreateFlavor", "flavor", flavor));
    assert_eq!(
        shown(r.ctrl(&t["nobody"], "ShowFlavor", "flavor", json!({}))),
        ["small"]
    );
    let settings = json!({
        "settings": {"very_close_km": 2.0, "app_dns_root": "edge.example.net"},
        "fields": ["very_close_km", "app_dns_root"]
    });
    let mut body = settings.clone();
    body["region"] = json!(REGION);
    for method in ["CreateSettings", "UpdateSettings"] {
        refused(
            r.ctrl_body(&t["om1"], method, body.clone()),
            403,
            "config:manage",
        );
        streamed(r.ctrl_body(&r.admin, method, body.clone()));
    }
    refused(
        r.ctrl(&t["dm1"], "ShowSettings", "settings", json!({})),
        403,
        "config:view",
    );
}

fn operators(r: &Region, t: &std::collections::HashMap<&str, String>) {
    let code = json!({"code": "26201", "organization": "opA"});
    refused(
        r.ctrl(
            &t["om2"],
            "CreateOperatorCode",
            "operatorcode",
            code.clone(),
        ),
        403,
        "opA",
    );
    streamed(r.ctrl(
        &t["om1"],
        "CreateOperatorCode",
        "operatorcode",
        code.clone(),
    ));
    // The code's owner decides, not the organisation a caller writes in the body.
    let grab = json!({"code": "26201", "organization": "opB"});
    let mut body = json!({"region": REGION, "operatorcode": grab, "fields": ["organization"]});
    refused(
        r.ctrl_body(&t["om2"], "UpdateOperatorCode", body.clone()),
        403,
        "opA",
    );
    refused(
        r.ctrl(
            &t["om2"],
            "DeleteOperatorCode",
            "operatorcode",
            json!({"code": "26201"}),
        ),
        403,
        "opA",
    );
    body["operatorcode"]["organization"] = json!("devA");
    refused(
        r.ctrl_body(&r.admin, "UpdateOperatorCode", body),
        400,
        "type operator",
    );
    refused(
        r.ctrl(
            &t["om2"],
            "CreateCloudlet",
            "cloudlet",
            cloudlet("opA", "x"),
        ),
        403,
        "opA",
    );
    refused(
        r.ctrl(
            &t["dm1"],
            "CreateCloudlet",
            "cloudlet",
            cloudlet("opA", "x"),
        ),
        403,
        "cloudlets:manage",
    );
    streamed(r.ctrl(
        &t["om1"],
        "CreateCloudlet",
        "cloudlet",
        cloudlet("opA", "berlin"),
    ));
    streamed(r.ctrl(
        &t["om2"],
        "CreateCloudlet",
        "cloudlet",
        cloudlet("opB", "munich"),
    ));
    assert_eq!(
        shown(r.ctrl(&t["om1"], "ShowCloudlet", "cloudlet", json!({}))),
        ["berlin"]
    );
    assert_eq!(
        shown(r.ctrl(&t["om2"], "ShowOperatorCode", "operatorcode", json!({}))),
        Vec::<String>::new()
    );
    // Developers see every cloudlet (all are public), not operators' codes.
    assert_eq!(
        shown(r.ctrl(&t["dv"], "ShowCloudlet", "cloudlet", json!({}))),
        ["berlin", "munich"]
    );
    assert!(shown(r.ctrl(&t["dv"], "ShowOperatorCode", "operatorcode", json!({}))).is_empty());
    // A type mismatch, even for an admin.
    refused(
        r.ctrl(
            &r.admin,
            "CreateCloudlet",
            "cloudlet",
            cloudlet("devA", "x"),
        ),
        400,
        "type operator",
    );
}

fn developers(r: &Region, t: &std::collections::HashMap<&str, String>) {
    streamed(r.ctrl(&t["dm1"], "CreateApp", "app", app("devA", "a1")));
    streamed(r.ctrl(&t["dc"], "CreateApp", "app", app("devA", "a2")));
    refused(
        r.ctrl(&t["dv"], "CreateApp", "app", app("devA", "a3")),
        403,
        "apps:manage",
    );
    refused(
        r.ctrl(&t["nobody"], "CreateApp", "app", app("devA", "a3")),
        403,
        "has no role",
    );
    refused(
        r.ctrl(&t["dm1"], "CreateApp", "app", app("devB", "a3")),
        403,
        "devB",
    );
    streamed(r.ctrl(&t["dm2"], "CreateApp", "app", app("devB", "b1")));
    assert_eq!(
        shown(r.ctrl(&t["dv"], "ShowApp", "app", json!({}))),
        ["a1", "a2"]
    );
    assert_eq!(
        shown(r.ctrl(&t["dm2"], "ShowApp", "app", json!({}))),
        ["b1"]
    );
    assert_eq!(
        shown(r.ctrl(&r.admin, "ShowApp", "app", json!({"key": {"name": "b1"}}))),
        ["b1"]
    );
    refused(
        r.ctrl(&t["nobody"], "ShowApp", "app", json!({})),
        403,
        "apps:view",
    );
    // Org checks: an app in an operator org, an unknown org.
    refused(
        r.ctrl(&r.admin, "CreateApp", "app", app("opA", "x")),
        400,
        "type developer",
    );
    refused(
        r.ctrl(&r.admin, "CreateApp", "app", app("nosuch", "x")),
        400,
        "nosuch not found",
    );
    refused(
        r.ctrl(&t["dm1"], "CreateApp", "app", app("nosuch", "x")),
        403,
        "nosuch",
    );
    // Instances: on another org's cloudlet is fine, with another org's app is not.
    let foreign = app_inst("devA", "i0", "devB", "b1", ("opA", "berlin"));
    refused(
        r.ctrl(&t["dm1"], "CreateAppInst", "appinst", foreign),
        403,
        "devB",
    );
    let inst = app_inst("devA", "i1", "devA", "a1", ("opB", "munich"));
    refused(
        r.ctrl(&t["dv"], "CreateAppInst", "appinst", inst.clone()),
        403,
        "appinsts:manage",
    );
    let progress = streamed(r.ctrl(&t["dc"], "CreateAppInst", "appinst", inst));
    assert!(
        progress.len() >= 2,
        "progress lines before the result: {progress:?}"
    );
    assert!(progress[0]["data"]["message"].is_string(), "{progress:?}");
    let cl = json!({"key": {"organization": "devA", "name": "c1"},
                    "cloudlet": {"organization": "opA", "name": "berlin"}});
    streamed(r.ctrl(&t["dm1"], "CreateClusterInst", "clusterinst", cl));
    assert_eq!(
        shown(r.ctrl(&t["dv"], "ShowAppInst", "appinst", json!({}))),
        ["i1"]
    );
    assert_eq!(
        shown(r.ctrl(&t["dm2"], "ShowAppInst", "appinst", json!({}))),
        Vec::<String>::new()
    );
    refused(
        r.ctrl(&t["dm2"], "DeleteApp", "app", app("devA", "a2")),
        403,
        "devA",
    );
    refused(
        r.ctrl_body(&t["dm1"], "ShowApp", json!({"region": "mars"})),
        400,
        "mars",
    );
}

/// An API key acts with its permissions only (appinsts:manage in devA here).
fn api_key(r: &Region, t: &std::collections::HashMap<&str, String>) {
    let perms = json!([{"resource": "appinsts", "action": "manage"}]);
    let (s, key) = r.mc.post(
        &format!("{A}/user/create/apikey"),
        Some(&t["dm1"]),
        &json!({"org": "devA", "description": "ci", "permissions": perms}),
    );
    assert_eq!(s, 200, "{key}");
    let (s, login) = r.mc.post(
        "/api/v1/login",
        None,
        &json!({"apikeyid": key["id"], "apikey": key["apikey"]}),
    );
    assert_eq!(s, 200, "{login}");
    let k = login["token"].as_str().unwrap();
    refused(
        r.ctrl(k, "CreateApp", "app", app("devA", "k1")),
        403,
        "not among its permissions",
    );
    refused(r.ctrl(k, "ShowApp", "app", json!({})), 403, "apps:view");
    let inst = app_inst("devA", "i2", "devA", "a1", ("opA", "berlin"));
    refused(
        r.ctrl(
            k,
            "CreateAppInst",
            "appinst",
            app_inst("devB", "i2", "devB", "b1", ("opA", "berlin")),
        ),
        403,
        "acts only in organisation devA",
    );
    streamed(r.ctrl(k, "CreateAppInst", "appinst", inst));
    assert_eq!(
        shown(r.ctrl(k, "ShowAppInst", "appinst", json!({}))),
        ["i1", "i2"]
    );
}

/// An organisation with objects in the region cannot be deleted; once they are gone it can.
fn org_in_use(r: &Region, t: &std::collections::HashMap<&str, String>) {
    let del = || {
        r.mc.post(
            &format!("{A}/org/delete"),
            Some(&t["dm1"]),
            &json!({"name": "devA"}),
        )
    };
    refused(del(), 400, "in use");
    for i in ["i1", "i2"] {
        let k = json!({"key": {"organization": "devA", "name": i}});
        streamed(r.ctrl(&t["dm1"], "DeleteAppInst", "appinst", k));
    }
    let k = json!({"key": {"organization": "devA", "name": "c1"}});
    streamed(r.ctrl(&t["dm1"], "DeleteClusterInst", "clusterinst", k));
    for a in ["a1", "a2"] {
        streamed(r.ctrl(&t["dm1"], "DeleteApp", "app", app("devA", a)));
    }
    let (s, b) = del();
    assert_eq!(s, 200, "{b}");
}

/// Mutations are in the audit log with the user, the organisations and the final status.
fn audited(r: &Region, t: &std::collections::HashMap<&str, String>) {
    let (s, log) = r.mc.post(
        &format!("{A}/audit/show"),
        Some(&t["dm2"]),
        &json!({"org": "devB"}),
    );
    assert_eq!(s, 200, "{log}");
    let entries = log.as_array().unwrap();
    let create = entries
        .iter()
        .find(|e| e["operation"] == "/api/v1/auth/ctrl/CreateApp" && e["status"] == 200)
        .unwrap_or_else(|| panic!("no CreateApp in {log}"));
    assert_eq!(create["username"], "dm2", "{create}");
    let refused = entries
        .iter()
        .find(|e| {
            e["operation"] == "/api/v1/auth/ctrl/CreateAppInst"
                && e["status"] == 403
                && e["username"] == "dm1"
        })
        .unwrap_or_else(|| panic!("no refused CreateAppInst in {log}"));
    assert!(refused["orgs"].as_array().unwrap().len() == 2, "{refused}");
}

fn edgectl(r: &Region, cfg: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgectl"))
        .args(args)
        .env("EDGECTL_CONFIG_DIR", cfg)
        .env_remove("EDGECTL_ADDR")
        .env_remove("EDGECTL_PASSWORD")
        .current_dir(r.ca())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

#[track_caller]
fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// `edgectl login` then apply and show through the MC's gRPC face; direct access needs an
/// `edgectl` certificate.
fn through_edgectl(r: &Region) {
    let cfg = tempfile::tempdir().unwrap();
    let ca = r.pki.ca().display().to_string();
    let pw = mc_common::password_of("dm2");
    let o = edgectl(
        r,
        cfg.path(),
        &["login", "--mc", &r.mc.url, "--ca", &ca, "--username", "dm2"],
        &format!("{pw}\n"),
    );
    assert!(ok(&o).contains(&format!("logged in as dm2 at {}", r.mc.url)));
    let mode = std::fs::metadata(cfg.path().join("login.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let doc = |org: &str, name: &str| {
        let f = cfg.path().join(format!("{org}-{name}.yaml"));
        std::fs::write(&f, format!("version: 1\nregion: eu\napps:\n  - key: {{organization: {org}, name: {name}, version: \"1\"}}\n    deployment: docker\n    image_path: nginx\n    access_ports: \"tcp:80\"\n")).unwrap();
        f.display().to_string()
    };
    let out = ok(&edgectl(
        r,
        cfg.path(),
        &["apply", "-f", &doc("devB", "b2")],
        "",
    ));
    assert!(out.contains("1 created"), "{out}");
    let out = ok(&edgectl(r, cfg.path(), &["show", "app", "-o", "json"], ""));
    assert!(
        out.contains("b2") && out.contains("b1") && !out.contains("\"a1\""),
        "{out}"
    );
    let o = edgectl(r, cfg.path(), &["apply", "-f", &doc("opB", "x")], "");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("PermissionDenied"),
        "{err}"
    );
    // Direct access: plaintext is refused by the controller, an edgectl certificate works.
    let o = edgectl(r, cfg.path(), &["--addr", &r.ctl.api, "show", "app"], "");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--mtls-ca"), "{err}");
    let mut args: Vec<String> = r.pki.flags("edgectl");
    args.extend(["--addr", &r.ctl.api, "show", "app", "-o", "json"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(ok(&edgectl(r, cfg.path(), &args, "")).contains("b2"));
    assert!(ok(&edgectl(r, cfg.path(), &["logout"], "")).contains("logged out"));
    assert!(!cfg.path().join("login.json").exists());
}

/// A registered region whose controller does not answer: 502 naming it.
fn unreachable(r: &Region) {
    let (s, b) = r.mc.post(
        &format!("{A}/controller/create"),
        Some(&r.admin),
        &json!({"region": "dead", "address": "127.0.0.1:1"}),
    );
    assert_eq!(s, 200, "{b}");
    refused(
        r.ctrl_body(&r.admin, "ShowApp", json!({"region": "dead"})),
        502,
        "dead",
    );
}

fn region_api(b: Backend) {
    let r = Region::start(b);
    let t = people(&r);
    admin_only(&r, &t);
    operators(&r, &t);
    developers(&r, &t);
    api_key(&r, &t);
    audited(&r, &t);
    through_edgectl(&r);
    org_in_use(&r, &t);
    unreachable(&r);
}

#[test]
fn region_api_embedded_store() {
    region_api(Backend::Redb);
}

#[test]
fn region_api_postgres() {
    // Without EDGEPLANE_PG_URL (scripts/test.sh sets it) this fails, naming the variable.
    region_api(Backend::Postgres);
}

/// An expired login token: edgectl says to log in again (plaintext MC on loopback, no region
/// needed: the token is refused first).
#[test]
fn edgectl_with_an_expired_token() {
    let mc = mc_common::Mc::start(Backend::Redb, &["--token-ttl-secs", "1"]);
    let _ = mc.user("late");
    let cfg = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_edgectl"))
            .args(args)
            .env("EDGECTL_CONFIG_DIR", cfg.path())
            .env("EDGECTL_PASSWORD", mc_common::password_of("late"))
            .env_remove("EDGECTL_ADDR")
            .output()
            .unwrap()
    };
    ok(&run(&["login", "--mc", &mc.url, "--username", "late"]));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let o = run(&["show", "app"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("token expired: run edgectl login"),
        "{err}"
    );
}
