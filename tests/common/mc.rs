//! An `edgeplane mc` process for tests: spawned on 127.0.0.1 port 0 (the bound address read
//! back from its first stdout line), on the embedded store in a temp dir or on a fresh
//! PostgreSQL database of `EDGEPLANE_PG_URL`, with cheap Argon2 parameters; and `curl` as the
//! HTTP client (independent of the server's stack).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Redb,
    Postgres,
}

const PG_ENV: &str = "EDGEPLANE_PG_URL";

/// A database of its own on the test server, dropped at the end.
struct PgDb {
    server: String,
    name: String,
}

fn psql() -> String {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/psql"))
        .filter(|p| p.exists())
        .collect();
    dirs.sort();
    dirs.pop()
        .map_or("psql".into(), |p| p.display().to_string())
}

fn psql_run(url: &str, sql: &str) {
    let out = Command::new(psql())
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("running psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgDb {
    fn new() -> PgDb {
        let server = match std::env::var(PG_ENV) {
            Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
            _ => panic!(
                "{PG_ENV} is not set, so the MC's PostgreSQL variant cannot run. Run \
                 scripts/test.sh, or `export {PG_ENV}=$(control/mc/scripts/pg-test-server.sh \
                 start)`"
            ),
        };
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "mc_acc_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        psql_run(&server, &format!("CREATE DATABASE \"{name}\""));
        PgDb { server, name }
    }

    fn url(&self) -> String {
        let (base, _) = self.server.rsplit_once('/').expect("URL with a database");
        format!("{base}/{}", self.name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new(psql())
            .args([
                &self.server,
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// A running MC.
pub struct Mc {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    /// Given to every curl call (e.g. `--cacert FILE` for HTTPS).
    pub curl_args: Vec<String>,
    _pg: Option<PgDb>,
}

impl Mc {
    /// Starts an MC with the admin bootstrapped, plus `extra` flags.
    pub fn start(backend: Backend, extra: &[&str]) -> Mc {
        Self::start_in(tempfile::tempdir().unwrap(), backend, extra)
    }

    /// As [`Mc::start`], in a directory prepared by the caller (certificates, say).
    pub fn start_in(dir: tempfile::TempDir, backend: Backend, extra: &[&str]) -> Mc {
        let pg = matches!(backend, Backend::Postgres).then(PgDb::new);
        let data = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("mc.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgeplane"));
        cmd.args(["mc", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .arg("--admin-password-file")
            .arg(dir.path().join("admin-password"))
            .args(["--insecure-password-hash", "8,1,1"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(pg) = &pg {
            cmd.arg("--postgres").arg(pg.url());
        }
        let mut child = cmd.spawn().expect("spawning edgeplane mc");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Some(url) = line.trim().strip_prefix("MC API on ") else {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.path().join("mc.log")).unwrap_or_default();
            panic!("edgeplane mc did not start: stdout {line:?}, log:\n{log}");
        };
        Mc {
            url: url.to_string(),
            child,
            dir,
            curl_args: Vec::new(),
            _pg: pg,
        }
    }

    pub fn admin_password(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("admin-password"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn signing_keys_file(&self) -> PathBuf {
        self.dir.path().join("data/mc-signing-keys.json")
    }

    /// POSTs `body` (with a bearer token if given) and returns the status and the JSON reply
    /// (a string for a body that is not JSON).
    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let (status, _, reply) = self.post_raw(path, token, &body.to_string(), &[]);
        (status, reply)
    }

    /// POSTs raw text with extra curl arguments; returns status, response headers and reply.
    pub fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        body: &str,
        curl_args: &[&str],
    ) -> (u16, String, Value) {
        let headers = self.dir.path().join(format!(
            "headers-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-X", "POST", "-H", "Content-Type: application/json"])
            .args(["--data-binary", "@-", "-w", "\n%{http_code}", "-D"])
            .arg(&headers)
            .args(curl_args)
            .args(&self.curl_args)
            .arg(format!("{}{path}", self.url));
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (reply, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let status: u16 = code
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("curl: {text}"));
        let hdrs = std::fs::read_to_string(&headers).unwrap_or_default();
        let _ = std::fs::remove_file(&headers);
        let reply = serde_json::from_str(reply).unwrap_or(Value::String(reply.to_string()));
        (status, hdrs, reply)
    }

    /// Logs in and returns the token (panics unless 200).
    pub fn login(&self, user: &str, password: &str) -> String {
        let (s, r) = self.post(
            "/api/v1/login",
            None,
            &serde_json::json!({"username": user, "password": password}),
        );
        assert_eq!(s, 200, "login {user}: {r}");
        r["token"].as_str().unwrap().to_string()
    }

    pub fn admin_token(&self) -> String {
        self.login("admin", &self.admin_password())
    }

    /// Creates a user with a strong password and logs in; returns the token.
    pub fn user(&self, name: &str) -> String {
        let pw = password_of(name);
        let (s, r) = self.post(
            "/api/v1/usercreate",
            None,
            &serde_json::json!({"name": name, "email": format!("{name}@example.com"), "passhash": pw}),
        );
        assert_eq!(s, 200, "usercreate {name}: {r}");
        self.login(name, &pw)
    }
}

/// The strong password the helpers give `name`.
pub fn password_of(name: &str) -> String {
    format!("{name} plum Vexing-Ostrich 42 quartz")
}

impl Drop for Mc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The prefix of the authenticated routes.
pub const A: &str = "/api/v1/auth";

/// The `message` of an error reply.
pub fn msg(r: &Value) -> String {
    r["message"].as_str().unwrap_or_default().to_string()
}

pub fn names(list: &Value, field: &str) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|o| o[field].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs each `fn case(Backend)` as `redb::case` and `postgres::case`.
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod redb {
            $( #[test] fn $case() { super::$case(super::Backend::Redb) } )*
        }
        mod postgres {
            $( #[test] fn $case() { super::$case(super::Backend::Postgres) } )*
        }
    };
}
