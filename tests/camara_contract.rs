//! Contract tests of the CAMARA APIs: schemathesis (installed by scripts/test.sh) runs each spec
//! in tests/data/camara/ against the live server, every operation, positive and negative cases,
//! every check (tests/camara/contract.py, hooks.py). A test fails when schemathesis reports any
//! failure or error, or when an operation was not exercised both ways, and prints schemathesis's
//! output.
//!
//! The DME's APIs (simple edge discovery, application endpoint discovery, location verification
//! and retrieval): `edgeplane dme --standalone examples/region.yaml` with the CAMARA APIs on,
//! access tokens signed here and verified with the JWKS file written beside them, devices located
//! by tests/data/camara/devices.feed.
//!
//! The MC's Edge Application Management: a region of real processes (controller on the fake
//! platform and an HTTPS MC, mutual TLS between them) with an operator's zone, and an app and an
//! instance of the developer's submitted through the API, whose ids the generated cases reuse;
//! the access token comes from the MC's own `POST /oauth2/token` for an API key.

#[path = "common/camara.rs"]
mod camara;
#[path = "common/mc.rs"]
#[allow(unused_macros)]
mod mc_common;
#[path = "common/mc_region.rs"]
mod mc_region;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use edge_model::AppKey;
use mc::auth::token::SigningKeys;
use serde_json::json;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// How long one schemathesis run may take (contract.py stops it at this; we wait a little more).
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Kills a process we started when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn data(name: &str) -> PathBuf {
    Path::new(ROOT).join("tests/data/camara").join(name)
}

/// The Python with schemathesis: $EDGEPLANE_PYTHON (scripts/test.sh sets it) or the project's
/// .venv. Fails, naming scripts/test.sh, when schemathesis is not there.
fn python() -> PathBuf {
    let python = std::env::var_os("EDGEPLANE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(ROOT).join(".venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import schemathesis"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "schemathesis is not installed for {}: run scripts/test.sh, which installs it into .venv \
         (or set EDGEPLANE_PYTHON to a Python that has schemathesis 4.32.5)",
        python.display()
    );
    python
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An access token (RFC 9068, as the MC issues them) for `org` with `scopes`.
fn access_token(keys: &SigningKeys, org: &str, scopes: &[&str]) -> String {
    let iat = now();
    keys.sign_typed(
        "at+jwt",
        &serde_json::json!({
            "iss": "https://mc.contract-test.invalid",
            "sub": "contract-test-key",
            "client_id": "contract-test-key",
            "org": org,
            "scope": scopes.join(" "),
            "iat": iat,
            "exp": iat + 3600,
            "jti": format!("contract-{iat}-{}", std::process::id()),
        }),
    )
}

/// A DME serving the example region with the CAMARA APIs on, its REST base URL, and its log.
struct Dme {
    _child: Killed,
    rest: String,
    log: PathBuf,
}

fn start_dme(dir: &Path, keys: &SigningKeys) -> Dme {
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, keys.jwks().to_string()).unwrap();
    let log = dir.join("dme.log");
    let feed = format!("feed:{}", data("devices.feed").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args([
            "dme",
            "--standalone",
            &format!("{ROOT}/examples/region.yaml"),
        ])
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(["--camara-jwks", jwks.to_str().unwrap()])
        .args(["--camara-location", &feed])
        .stdout(Stdio::piped())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .map(Killed)
        .expect("edgeplane dme starts");
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let banner = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| {
                panic!(
                    "no banner from the DME; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        if line.starts_with("DME serving") {
            break line;
        }
    };
    let rest = banner
        .split("REST on ")
        .nth(1)
        .and_then(|s| s.split([',', ' ', ')']).next())
        .unwrap_or_else(|| panic!("no REST address in {banner:?}"))
        .to_owned();
    Dme {
        _child: child,
        rest: format!("http://{rest}"),
        log,
    }
}

/// Runs tests/camara/contract.py on `spec` against `base_url`; panics with schemathesis's output
/// (and `server_log`) unless every check passed on every operation.
fn contract(spec: &str, base_url: &str, token: &str, extra: &[&str], server_log: &Path) {
    let python = python();
    let work = tempfile::tempdir().unwrap();
    let out_path = work.path().join("contract.out");
    let out = File::create(&out_path).unwrap();
    let mut child = Command::new(python)
        .arg(format!("{ROOT}/tests/camara/contract.py"))
        .args(["--spec", data(spec).to_str().unwrap()])
        .args(["--base-url", base_url])
        .args(["--workdir", work.path().join("st").to_str().unwrap()])
        .args(["--timeout", &RUN_LIMIT.as_secs().to_string()])
        .args(extra)
        .env("CAMARA_TOKEN", token)
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .map(Killed)
        .expect("python runs");
    let deadline = Instant::now() + RUN_LIMIT + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    let passed = status.is_some_and(|s| s.success());
    if !passed {
        let log = std::fs::read_to_string(server_log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(200).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "{spec}: schemathesis found the server not meeting its spec ({}).\n\
             ===== contract.py / schemathesis output =====\n{output}\n\
             ===== server log (last 200 lines) =====\n{}",
            match status {
                Some(s) => format!("contract.py exited with {s}"),
                None => format!("still running after {:?}, killed", RUN_LIMIT),
            },
            tail.join("\n")
        );
    }
    println!("{output}");
}

fn nimbus_arena() -> AppKey {
    AppKey {
        organization: "NimbusGames".into(),
        name: "arena-shooter".into(),
        version: "2.3".into(),
    }
}

/// Runs one DME spec: a DME of its own, a token of the app developer NimbusGames with `scope`.
fn dme_spec(spec: &str, base_path: &str, scope: &str, operation: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let keys = SigningKeys::generate().unwrap();
    let dme = start_dme(dir.path(), &keys);
    let token = access_token(&keys, "NimbusGames", &[scope]);
    let feed = data("devices.feed");
    let mut args = vec![
        "--feed",
        feed.to_str().unwrap(),
        "--max-examples",
        "100",
        "--expect-success",
        operation,
    ];
    args.extend_from_slice(extra);
    contract(
        spec,
        &format!("{}{base_path}", dme.rest),
        &token,
        &args,
        &dme.log,
    );
}

#[test]
fn simple_edge_discovery_meets_its_spec() {
    dme_spec(
        "simple-edge-discovery-2.0.1.yaml",
        "/simple-edge-discovery/v2",
        "simple-edge-discovery:read",
        "POST /retrieve-closest-edge-cloud-zone",
        &[],
    );
}

#[test]
fn application_endpoint_discovery_meets_its_spec() {
    // appIds the hooks put into positive cases: the token's organisation's app, and another
    // organisation's (which the token may not see).
    let own = edge_model::camara_id::app_id(&nimbus_arena());
    let other = edge_model::camara_id::app_id(&AppKey {
        organization: "VisionWorks".into(),
        name: "road-analytics".into(),
        version: "1.0".into(),
    });
    dme_spec(
        "application-endpoint-discovery-0.1.0.yaml",
        "/application-endpoint-discovery/v0.1",
        "application-endpoint-discovery:app-endpoints:read",
        "POST /retrieve-optimal-app-endpoints",
        &["--app-id", &own, "--app-id", &own, "--app-id", &other],
    );
}

#[test]
fn location_verification_meets_its_spec() {
    dme_spec(
        "location-verification-3.0.0.yaml",
        "/location-verification/v3",
        "location-verification:verify",
        "POST /verify",
        &[],
    );
}

#[test]
fn location_retrieval_meets_its_spec() {
    dme_spec(
        "location-retrieval-0.5.0.yaml",
        "/location-retrieval/v0.5",
        "location-retrieval:read",
        "POST /retrieve",
        &[],
    );
}

#[test]
fn edge_application_management_meets_its_spec() {
    const OP: &str = "TelcoOperatorA";
    const DEV: &str = "NimbusGames";
    let r = mc_region::Region::start(mc_common::Backend::Redb);
    let om = camara::org_with_manager(&r.mc, "opmgr1", OP, "operator");
    for (name, lat, lon) in [("berlin", 52.52, 13.405), ("paris", 48.8566, 2.3522)] {
        let cloudlet = json!({"key": {"organization": OP, "name": name}, "platform_type": "fake",
                              "location": {"latitude": lat, "longitude": lon}});
        let (s, b) = r.ctrl(&om, "CreateCloudlet", "cloudlet", cloudlet);
        assert_eq!((s, mc_region::result(&b).0), (200, 200), "{b}");
    }
    let dm = camara::org_with_manager(&r.mc, "devmgr1", DEV, "developer");
    // Permissions for every EAM scope (the MC maps each scope to one).
    let perms = [
        ("apps", "manage"),
        ("appinsts", "manage"),
        ("cloudlets", "view"),
        ("clusterinsts", "view"),
    ];
    let (id, secret) = camara::api_key(&r.mc, &dm, DEV, &perms);
    // No scope asked: every scope the key's permissions allow.
    let token = camara::access_token(&r.mc, &id, &secret, None);

    // Objects that exist, for the generated cases to find: a zone, an app and its instance.
    let zones = camara::eam(&r.mc, &token, "GET", "/edge-cloud-zones", None);
    assert_eq!(zones.status, 200, "{}", zones.body);
    let zone = zones.body[0]["edgeCloudZoneId"]
        .as_str()
        .unwrap()
        .to_owned();
    let manifest = camara::manifest(DEV);
    let submit = |name: &str| {
        let mut m = manifest.clone();
        m["name"] = json!(name);
        let app = camara::eam(&r.mc, &token, "POST", "/apps", Some(&m));
        assert_eq!(app.status, 201, "{}", app.body);
        app.body["appId"].as_str().unwrap().to_owned()
    };
    let instantiate = |name: &str, app: &str, zone: &str| {
        let new = json!({"name": name, "appId": app, "edgeCloudZoneId": zone});
        let inst = camara::eam(&r.mc, &token, "POST", "/appinstances", Some(&new));
        assert_eq!(inst.status, 202, "{}", inst.body);
        inst.body["appInstanceId"].as_str().unwrap().to_owned()
    };
    let app = submit("arena_shooter");
    let inst = instantiate("arena_berlin", &app, &zone);
    // For the DELETE operations: objects of their own, so the ones above outlive the run.
    let victim_app = submit("arena_victim");
    let victim_inst = instantiate("arena_victim_berlin", &app, &zone);

    let known = [
        format!("getApp:path.appId={app}"),
        format!("deleteApp:path.appId={victim_app}"),
        format!("query.appId={app}"),
        format!("body.appId={app}"),
        format!("query.appInstanceId={inst}"),
        format!("deleteAppInstance:path.appInstanceId={victim_inst}"),
        format!("body.edgeCloudZoneId={zone}"),
        format!("query.edgeCloudZoneId={zone}"),
        format!("body.appProvider={DEV}"),
    ];
    let ca = r.pki.ca();
    let mut args = vec!["--tls-verify", ca.to_str().unwrap(), "--max-examples", "50"];
    for k in &known {
        args.extend(["--known", k.as_str()]);
    }
    for op in [
        "POST /apps",
        "POST /appinstances",
        "GET /apps",
        "GET /apps/{appId}",
        "GET /appinstances",
        "GET /edge-cloud-zones",
        "GET /clusters",
        "GET /deployments",
    ] {
        args.extend(["--expect-success", op]);
    }
    contract(
        "edge-application-management-0.1.0-alpha.1.yaml",
        &format!("{}/edge-application-management/v0.1alpha1", r.mc.url),
        &token,
        &args,
        &r.mc.dir.path().join("mc.log"),
    );
}
