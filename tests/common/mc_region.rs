//! A region behind an MC, as real processes on 127.0.0.1: a PKI made with `edgeplane pki`, a
//! controller (`edgeplane controller`, fake platform) requiring mutual TLS, and an MC
//! (`edgeplane mc`) serving HTTPS on its `mc` certificate and dialling the controller with it,
//! the controller registered as region `eu`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::mc_common::{Backend, Mc};

pub const REGION: &str = "eu";

/// `edgeplane pki init` and one certificate per role used here, in a temp dir.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

fn edgeplane(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(args)
        .output()
        .expect("running edgeplane");
    assert!(
        out.status.success(),
        "edgeplane {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        edgeplane(&["pki", "init", "--dir", d, "--region", REGION]);
        for role in ["controller", "mc", "edgectl"] {
            edgeplane(&["pki", "issue", "--dir", d, "--role", role, "--name", "t"]);
        }
        Pki { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The `--mtls-*` flags of a component of `role`.
    pub fn flags(&self, role: &str) -> Vec<String> {
        let p = |f: String| self.dir.path().join(f).display().to_string();
        vec![
            "--mtls-ca".into(),
            p("ca.pem".into()),
            "--mtls-cert".into(),
            p(format!("{role}-t.pem")),
            "--mtls-key".into(),
            p(format!("{role}-t.key")),
        ]
    }
}

/// An `edgeplane controller` process with mutual TLS.
pub struct Controller {
    child: Child,
    pub api: String,
    pub notify: String,
    _data: tempfile::TempDir,
}

impl Controller {
    pub fn start(pki: &Pki) -> Controller {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .args(["controller", "--region", REGION, "--data-dir"])
            .arg(data.path())
            .args(["--api-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(["--notify-addr", "127.0.0.1:0"])
            .args(pki.flags("controller"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(data.path().join("controller.log")).unwrap())
            .spawn()
            .expect("spawning edgeplane controller");
        let line = first_line(&mut child);
        // "controller: API on A, REST on B, notify on C (mutual TLS)"
        let Some(api) = line
            .strip_prefix("controller: API on ")
            .and_then(|r| r.split(',').next())
        else {
            let _ = child.kill();
            let log = std::fs::read_to_string(data.path().join("controller.log"));
            panic!("controller did not start: {line:?}\n{log:?}");
        };
        let notify = line
            .split("notify on ")
            .nth(1)
            .and_then(|r| r.split([' ', ',']).next())
            .unwrap_or_default()
            .to_string();
        Controller {
            api: api.to_string(),
            notify,
            child,
            _data: data,
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn first_line(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so the child never blocks on a full pipe.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The PKI, a controller and an MC with the controller registered, and the admin's token.
pub struct Region {
    pub pki: Pki,
    pub ctl: Controller,
    pub mc: Mc,
    pub admin: String,
}

impl Region {
    pub fn start(b: Backend) -> Region {
        let pki = Pki::new();
        let ctl = Controller::start(&pki);
        let flags = pki.flags("mc");
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let mut mc = Mc::start(b, &flags);
        assert!(mc.url.starts_with("https://"), "{}", mc.url);
        mc.curl_args = vec!["--cacert".into(), pki.ca().display().to_string()];
        let admin = mc.admin_token();
        let (s, r) = mc.post(
            "/api/v1/auth/controller/create",
            Some(&admin),
            &json!({"region": REGION, "address": ctl.api}),
        );
        assert_eq!(s, 200, "{r}");
        Region {
            pki,
            ctl,
            mc,
            admin,
        }
    }

    /// `POST /api/v1/auth/ctrl/<method>` in region eu with `object` under `name`.
    // Owned JSON: call sites build it inline.
    #[allow(clippy::needless_pass_by_value)]
    pub fn ctrl(&self, token: &str, method: &str, name: &str, object: Value) -> (u16, Value) {
        self.ctrl_body(token, method, json!({"region": REGION, name: object}))
    }

    // Owned JSON: call sites build it inline.
    #[allow(clippy::needless_pass_by_value)]
    pub fn ctrl_body(&self, token: &str, method: &str, body: Value) -> (u16, Value) {
        self.mc
            .post(&format!("/api/v1/auth/ctrl/{method}"), Some(token), &body)
    }

    pub fn ca(&self) -> &Path {
        self.pki.dir.path()
    }
}

/// The JSON lines of a streamed reply (a single JSON value is one line).
pub fn lines(reply: &Value) -> Vec<Value> {
    match reply {
        Value::String(s) => s
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l:?}")))
            .collect(),
        v => vec![v.clone()],
    }
}

/// The final `result` of a streamed mutation: (code, message).
pub fn result(reply: &Value) -> (u64, String) {
    let all = lines(reply);
    let last = all.last().unwrap_or_else(|| panic!("empty reply"));
    let r = &last["result"];
    (
        r["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("no result: {reply}")),
        r["message"].as_str().unwrap_or_default().to_string(),
    )
}
