//! `edgeplane up` (the README's run command) brings up a region that answers FindCloudlet, and
//! runs the local cloudlets' echo app until Ctrl-C, which stops it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_the_example_region() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["up", "--data-dir"])
        .arg(dir.path())
        .args(["--api-addr", "127.0.0.1:0", "--notify-addr", "127.0.0.1:0"])
        .args(["--dns-addr", "127.0.0.1:0"])
        .args([
            "--dme-grpc-addr",
            "127.0.0.1:0",
            "--dme-http-addr",
            "127.0.0.1:0",
        ])
        .args(["--mc-addr", "127.0.0.1:0"])
        .env_remove("EDGEPLANE_STORE_ETCD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("edgeplane up starts");
    let stdout = child.stdout.take().unwrap();
    // Read the banner on a thread: the process keeps running.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut grpc = None;
    let mut rest = None;
    let mut mc = None;
    let mut password = None;
    let mut applied = false;
    let mut local_applied = false;
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("banner within 30 s");
        applied |= line.starts_with("applied examples/region.yaml: 41 created");
        local_applied |= line.starts_with("applied examples/local.yaml: 4 created");
        if let Some(addr) = line.trim().strip_prefix("DME gRPC") {
            grpc = Some(addr.trim().to_string());
        }
        if let Some(addr) = line.trim().strip_prefix("DME REST") {
            rest = Some(addr.trim().to_string());
        }
        if let Some(url) = line.trim().strip_prefix("MC (users)") {
            mc = Some(url.trim().to_string());
        }
        if let Some(rest) = line.strip_prefix("Created MC user admin, password ") {
            password = rest.split_whitespace().next().map(str::to_owned);
        }
        if line.starts_with("Ctrl-C stops the region") {
            break;
        }
    }
    let (mc, password) = (mc.expect("the MC's address"), password.expect("a password"));
    let admin = check_mc(dir.path(), &mc, &password);
    check_camara(
        dir.path(),
        &mc,
        &admin,
        &rest.expect("the DME's REST address"),
    );
    assert!(applied, "the example document was applied");
    assert!(
        local_applied,
        "the local part was applied (its instances run)"
    );
    let dme = common::Dme::connect(grpc.unwrap().parse().unwrap());
    let found = dme.find(&common::arena(), "26201", 52.3906, 13.0645).await;
    let pids: Vec<i32> = std::fs::read_dir(dir.path().join("crm"))
        .unwrap()
        .flatten()
        .flat_map(|c| {
            std::fs::read_dir(c.path().join("instances"))
                .into_iter()
                .flatten()
                .flatten()
        })
        .flat_map(|org| {
            std::fs::read_dir(org.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter_map(|i| {
            std::fs::read_to_string(i.path().join("pids"))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .collect();
    // Ctrl-C: the region stops, and with it the local cloudlets' processes.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let exited = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(found, Some((52.52, 13.405)));
    assert!(exited, "up stops within 10 s of Ctrl-C");
    assert_eq!(pids.len(), 2, "an echo process per local cloudlet");
    for pid in pids {
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        assert!(!alive, "echo process {pid} still runs after Ctrl-C");
    }
}

/// curl `url` with the region CA, a JSON or form body and an optional bearer token.
fn curl(data: &std::path::Path, url: &str, body: &str, token: Option<&str>) -> serde_json::Value {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "10", "--cacert"])
        .arg(data.join("pki/ca.pem"))
        .args(["-d", body])
        .arg(url);
    if !body.starts_with("grant_type") {
        c.args(["-H", "content-type: application/json"]);
    }
    if let Some(t) = token {
        c.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
}

/// The CAMARA APIs of `up`'s DME: an access token from the MC for an API key of the example's
/// developer, and Simple Edge Discovery for a subscriber of the example feed in Munich.
fn check_camara(data: &std::path::Path, mc: &str, admin: &str, dme: &str) {
    let key = curl(
        data,
        &format!("{mc}/api/v1/auth/user/create/apikey"),
        r#"{"org":"NimbusGames","permissions":[{"resource":"apps","action":"view"}]}"#,
        Some(admin),
    );
    let (id, secret) = (key["id"].as_str().unwrap(), key["apikey"].as_str().unwrap());
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let token = curl(data, &format!("{mc}/oauth2/token"), &form, None);
    let token = token["access_token"].as_str().expect("an access token");
    let zone = curl(
        data,
        &format!("http://{dme}/simple-edge-discovery/v2/retrieve-closest-edge-cloud-zone"),
        r#"{"device":{"phoneNumber":"+4989123456789"}}"#,
        Some(token),
    );
    assert_eq!(zone["edgeCloudZoneName"], "munich-1", "{zone}");
    assert!(data.join("devices.feed").exists());
}

/// The MC `up` runs: its admin password is in a 0600 file, it logs the admin in over HTTPS
/// (certificate of the region PKI) and knows the region's controller. Returns the admin's
/// token.
fn check_mc(data: &std::path::Path, mc: &str, password: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let file = data.join("mc-admin-password");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), password);
    let curl = |path: &str, body: String, token: Option<&str>| {
        curl(data, &format!("{mc}{path}"), &body, token)
    };
    let login = curl(
        "/api/v1/login",
        serde_json::json!({"username": "admin", "password": password}).to_string(),
        None,
    );
    let token = login["token"].as_str().expect("a token");
    let controllers = curl("/api/v1/auth/controller/show", "{}".into(), Some(token));
    assert!(
        controllers.to_string().contains("\"region\":\"eu\""),
        "the region's controller is registered: {controllers}"
    );
    // The region applied at start is reachable through the MC (its organisations are
    // known to the MC).
    let apps = curl(
        "/api/v1/auth/ctrl/ShowApp",
        r#"{"region":"eu","app":{}}"#.into(),
        Some(token),
    );
    assert!(apps.to_string().contains("arena-shooter"), "{apps}");
    let orgs = curl("/api/v1/auth/org/show", "{}".into(), Some(token));
    assert!(orgs.to_string().contains("NimbusGames"), "{orgs}");
    token.to_string()
}
