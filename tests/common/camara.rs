//! Helpers for the MC's OAuth endpoints and CAMARA APIs: any HTTP method through `curl` (with
//! the MC's `curl_args`), API keys and access tokens.
#![allow(dead_code)]

use std::process::Command;

use serde_json::{Value, json};

use super::mc_common::{A, Mc};

/// A reply: status, response headers (lower-case names, as curl prints them: raw text) and the
/// JSON body (a string when not JSON, `Null` when empty).
pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: Value,
}

impl Reply {
    /// A response header's value (case-insensitive name; the last if repeated).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .next_back()
    }
}

/// `method` on the MC's `path` with extra curl arguments (headers, `--data-binary`, `-u`, ...).
pub fn call(mc: &Mc, method: &str, path: &str, args: &[&str]) -> Reply {
    call_at(&mc.url, &mc.curl_args, method, path, args)
}

/// `method` on `base` + `path` (any server: the MC, a DME), `curl_args` after `args`.
pub fn call_at(base: &str, curl_args: &[String], method: &str, path: &str, args: &[&str]) -> Reply {
    let headers = std::env::temp_dir().join(format!(
        "camara-headers-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let out = Command::new("curl")
        .args(["-sS", "-X", method, "-w", "\n%{http_code}", "-D"])
        .arg(&headers)
        .args(args)
        .args(curl_args)
        .arg(format!("{base}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = code
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl {method} {path}: {text} {:?}", out.stderr));
    let hdrs = std::fs::read_to_string(&headers).unwrap_or_default();
    let _ = std::fs::remove_file(&headers);
    let body = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or(Value::String(body.to_string()))
    };
    Reply {
        status,
        headers: hdrs,
        body,
    }
}

/// An API key of the user with `token` in `org` with `perms` ((resource, action) pairs):
/// (id, secret).
pub fn api_key(mc: &Mc, token: &str, org: &str, perms: &[(&str, &str)]) -> (String, String) {
    let permissions: Vec<Value> = perms
        .iter()
        .map(|(r, a)| json!({"resource": r, "action": a}))
        .collect();
    let (s, r) = mc.post(
        &format!("{A}/user/create/apikey"),
        Some(token),
        &json!({"org": org, "permissions": permissions}),
    );
    assert_eq!(s, 200, "create apikey: {r}");
    (
        r["id"].as_str().unwrap().to_string(),
        r["apikey"].as_str().unwrap().to_string(),
    )
}

/// `POST /oauth2/token` by client_secret_post with the given form (`grant_type` added).
pub fn token_post(mc: &Mc, id: &str, secret: &str, scope: Option<&str>) -> Reply {
    let mut form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    if let Some(s) = scope {
        form.push_str(&format!("&scope={}", s.replace(' ', "+")));
    }
    call(mc, "POST", "/oauth2/token", &["--data-binary", &form])
}

/// An access token for the key with `scope` (panics unless granted).
pub fn access_token(mc: &Mc, id: &str, secret: &str, scope: Option<&str>) -> String {
    let r = token_post(mc, id, secret, scope);
    assert_eq!(r.status, 200, "token: {}", r.body);
    r.body["access_token"].as_str().unwrap().to_string()
}

/// A developer (or operator) organisation made by a new user, who manages it: their token.
pub fn org_with_manager(mc: &Mc, user: &str, org: &str, kind: &str) -> String {
    let t = mc.user(user);
    let (s, b) = mc.post(
        &format!("{A}/org/create"),
        Some(&t),
        &json!({"name": org, "type": kind}),
    );
    assert_eq!(s, 200, "org create: {b}");
    t
}

/// The base path of Edge Application Management on the MC.
pub const EAM: &str = "/edge-application-management/v0.1alpha1";

/// An EAM call on the MC with a bearer token (and a JSON body when given).
pub fn eam(mc: &Mc, token: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
    let auth = format!("Authorization: Bearer {token}");
    let text = body.map(Value::to_string);
    let mut args = vec!["-H", &auth];
    if let Some(t) = &text {
        args.extend(["-H", "Content-Type: application/json", "--data-binary", t]);
    }
    call(mc, method, &format!("{EAM}{path}"), &args)
}

/// Asserts a CAMARA error answer: the HTTP status, and the body's status and code.
#[track_caller]
pub fn camara_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["status"], status, "{}", r.body);
    assert_eq!(r.body["code"], code, "{}", r.body);
}

/// The test app's manifest (one TCP port), submitted by `provider`.
pub fn manifest(provider: &str) -> Value {
    json!({
        "name": "arena_shooter", "appProvider": provider, "version": "2.3",
        "packageType": "CONTAINER",
        "appRepo": {"type": "PUBLICREPO", "imagePath": "registry.example/arena:2.3"},
        "requiredResources": {"infraKind": "container", "numCPU": "1", "memory": 512},
        "componentSpec": [{"componentName": "game", "networkInterfaces": [
            {"interfaceId": "game_tcp", "protocol": "TCP", "port": 7777,
             "visibilityType": "VISIBILITY_EXTERNAL"}]}]
    })
}
