//! The MC as OAuth 2.0 authorisation server (client-credentials grant for the CAMARA APIs), a
//! real `edgeplane mc` process driven with curl: tokens by HTTP Basic and by form fields, the
//! RFC 6749 §5.2 errors, scopes bounded by the API key's permissions, the token verified with
//! the published JWKS, the discovery document, and the audit trail without the secret.

#[path = "common/camara.rs"]
mod camara;
#[path = "common/mc.rs"]
#[allow(unused_macros)]
mod mc_common;

use camara::{Reply, access_token, api_key, call, org_with_manager, token_post};
use mc_common::{A, Backend, Mc, now};
use serde_json::{Value, json};

const ORG: &str = "DevelopersA";

#[track_caller]
fn oauth_error(r: &Reply, status: u16, error: &str, word: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"], error, "{}", r.body);
    let d = r.body["error_description"].as_str().unwrap_or_default();
    assert!(d.contains(word), "{word:?} not in {}", r.body);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
}

fn scopes_of(r: &Reply) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.body);
    let mut v: Vec<String> = r.body["scope"]
        .as_str()
        .unwrap()
        .split(' ')
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn client_credentials() {
    let mc = Mc::start(Backend::Redb, &["--access-token-ttl-secs", "600"]);
    let dm = org_with_manager(&mc, "devmgr1", ORG, "developer");
    let full = [
        ("apps", "manage"),
        ("appinsts", "manage"),
        ("cloudlets", "view"),
        ("clusterinsts", "view"),
    ];
    let (id, secret) = api_key(&mc, &dm, ORG, &full);
    let (vid, vsecret) = api_key(&mc, &dm, ORG, &[("apps", "view")]);

    // client_secret_basic, no scope asked: every scope the key's permissions allow.
    let basic = format!("{id}:{secret}");
    let r = call(
        &mc,
        "POST",
        "/oauth2/token",
        &[
            "-u",
            &basic,
            "--data-binary",
            "grant_type=client_credentials",
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 600);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let discovery = call(&mc, "GET", "/.well-known/openid-configuration", &[]);
    let all: Vec<String> = serde_json::from_value(discovery.body["scopes_supported"].clone())
        .expect("scopes_supported");
    assert_eq!(all.len(), 16, "{}", discovery.body);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(scopes_of(&r), sorted);
    let token = r.body["access_token"].as_str().unwrap().to_string();

    // The token verifies with the published keys and carries the key, its org and scopes.
    let jwks = call(&mc, "GET", "/.well-known/jwks.json", &[]);
    assert_eq!(jwks.status, 200);
    assert!(
        jwks.body["keys"][0].get("d").is_none(),
        "private part published"
    );
    let verifier = mc::auth::Verifier::from_jwks(&jwks.body).unwrap();
    let claims = verifier.verify_access(&token, now()).unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.org.as_str()),
        (id.as_str(), ORG)
    );
    assert_eq!(claims.client_id, id);
    assert_eq!(claims.iss, mc.url);
    assert_eq!(claims.exp - claims.iat, 600);
    assert!(claims.has_scope("edge-application-management:instances:write"));
    // An access token is not a login token.
    let (s, _) = mc.post(&format!("{A}/user/current"), Some(&token), &json!({}));
    assert_eq!(s, 401);

    // client_secret_post with a scope asked: that scope alone.
    let r = token_post(
        &mc,
        &id,
        &secret,
        Some("edge-application-management:apps:read"),
    );
    assert_eq!(scopes_of(&r), ["edge-application-management:apps:read"]);
    let t = access_token(&mc, &vid, &vsecret, None);
    let c = verifier.verify_access(&t, now()).unwrap();
    let mut got: Vec<&str> = c.scope.split(' ').collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "edge-application-management:apps:read",
            "location-retrieval:read",
            "location-verification:verify",
            "simple-edge-discovery:read",
        ]
    );

    clusters_and_deployments(&mc, &dm, &verifier);
    refusals(&mc, &id, &secret, (&vid, &vsecret));
    discovery_document(&discovery.body, &mc.url);
    audited_without_secret(&mc, &dm, &secret);
}

/// The scopes of a token of a new key of `manager` in ORG with `perms`, sorted.
fn granted(mc: &Mc, manager: &str, perms: &[(&str, &str)], v: &mc::auth::Verifier) -> Vec<String> {
    let (id, secret) = api_key(mc, manager, ORG, perms);
    let t = access_token(mc, &id, &secret, None);
    let mut got: Vec<String> = v
        .verify_access(&t, now())
        .unwrap()
        .scope
        .split(' ')
        .map(String::from)
        .collect();
    got.sort();
    got
}

/// EAM clusters:read needs clusterinsts:view; deployments:read appinsts:view, and
/// deployments:write, :update and :delete appinsts:manage.
fn clusters_and_deployments(mc: &Mc, manager: &str, v: &mc::auth::Verifier) {
    const CLUSTERS: &str = "edge-application-management:clusters:read";
    const DEPLOY_READ: &str = "edge-application-management:deployments:read";
    let deploy_change = [
        "edge-application-management:deployments:delete",
        "edge-application-management:deployments:update",
        "edge-application-management:deployments:write",
    ];
    assert_eq!(
        granted(mc, manager, &[("clusterinsts", "view")], v),
        [CLUSTERS]
    );
    assert_eq!(
        granted(mc, manager, &[("clusterinsts", "manage")], v),
        [CLUSTERS]
    );
    let view = granted(mc, manager, &[("appinsts", "view")], v);
    assert_eq!(
        view,
        [
            "application-endpoint-discovery:app-endpoints:read",
            DEPLOY_READ,
            "edge-application-management:instances:read",
        ]
    );
    let manage = granted(mc, manager, &[("appinsts", "manage")], v);
    for s in deploy_change.iter().chain([&DEPLOY_READ]) {
        assert!(manage.iter().any(|g| g == s), "{s} not in {manage:?}");
    }
    assert!(!manage.iter().any(|g| g == CLUSTERS), "{manage:?}");

    // Asked for without the permission: refused, naming the scope and the permission.
    let (id, secret) = api_key(mc, manager, ORG, &[("appinsts", "view")]);
    let r = token_post(mc, &id, &secret, Some(CLUSTERS));
    oauth_error(&r, 400, "invalid_scope", "clusterinsts:view");
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .contains(CLUSTERS)
    );
    for s in deploy_change {
        let r = token_post(mc, &id, &secret, Some(&format!("{DEPLOY_READ} {s}")));
        oauth_error(&r, 400, "invalid_scope", "appinsts:manage");
        assert!(r.body["error_description"].as_str().unwrap().contains(s));
    }
    let (id, secret) = api_key(mc, manager, ORG, &[("clusterinsts", "view")]);
    let r = token_post(mc, &id, &secret, Some(DEPLOY_READ));
    oauth_error(&r, 400, "invalid_scope", "appinsts:view");
    let r = token_post(mc, &id, &secret, Some(CLUSTERS));
    assert_eq!(scopes_of(&r), [CLUSTERS]);
}

fn refusals(mc: &Mc, id: &str, secret: &str, (vid, vsecret): (&str, &str)) {
    let wrong = format!("{id}:not-the-secret");
    let r = call(
        mc,
        "POST",
        "/oauth2/token",
        &[
            "-u",
            &wrong,
            "--data-binary",
            "grant_type=client_credentials",
        ],
    );
    oauth_error(&r, 401, "invalid_client", "Invalid API key");
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some("Basic realm=\"edgeplane\"")
    );
    let r = token_post(mc, id, "not-the-secret", None);
    oauth_error(&r, 401, "invalid_client", "Invalid API key");
    assert_eq!(r.header("www-authenticate"), None);
    let r = token_post(mc, "00000000-0000-4000-8000-000000000000", secret, None);
    oauth_error(&r, 401, "invalid_client", "Invalid API key");

    let form = |f: &str| call(mc, "POST", "/oauth2/token", &["--data-binary", f]);
    let creds = format!("client_id={id}&client_secret={secret}");
    oauth_error(
        &form(&format!("grant_type=password&{creds}")),
        400,
        "unsupported_grant_type",
        "password",
    );
    oauth_error(
        &form(&creds),
        400,
        "invalid_request",
        "grant_type is required",
    );
    oauth_error(
        &form(&format!(
            "grant_type=client_credentials&grant_type=client_credentials&{creds}"
        )),
        400,
        "invalid_request",
        "grant_type",
    );
    let basic = format!("{id}:{secret}");
    let both = format!("grant_type=client_credentials&client_secret={secret}");
    let r = call(
        mc,
        "POST",
        "/oauth2/token",
        &["-u", &basic, "--data-binary", &both],
    );
    oauth_error(&r, 400, "invalid_request", "more than one");
    let json_body = call(
        mc,
        "POST",
        "/oauth2/token",
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "{\"grant_type\":\"client_credentials\"}",
        ],
    );
    oauth_error(&json_body, 400, "invalid_request", "Content-Type");

    // Scopes beyond the key's permissions, and unknown ones, are refused by name.
    let write = "edge-application-management:instances:write";
    let r = token_post(
        mc,
        vid,
        vsecret,
        Some(&format!("edge-application-management:apps:read {write}")),
    );
    oauth_error(&r, 400, "invalid_scope", write);
    oauth_error(
        &token_post(mc, id, secret, Some("no-such:scope")),
        400,
        "invalid_scope",
        "no-such:scope",
    );
}

fn discovery_document(d: &Value, url: &str) {
    assert_eq!(d["issuer"], url);
    assert_eq!(d["token_endpoint"], format!("{url}/oauth2/token"));
    assert_eq!(d["jwks_uri"], format!("{url}/.well-known/jwks.json"));
    assert_eq!(d["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
}

/// Granted token requests are in the organisation's audit log under the client id, the secret
/// never (refused ones name no organisation, as refused logins).
fn audited_without_secret(mc: &Mc, manager: &str, secret: &str) {
    let (s, log) = mc.post(
        &format!("{A}/audit/show"),
        Some(manager),
        &json!({"org": ORG, "limit": 200}),
    );
    assert_eq!(s, 200, "{log}");
    let text = log.to_string();
    assert!(!text.contains(secret), "secret in the audit log: {text}");
    let tokens: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["operation"] == "/oauth2/token")
        .collect();
    assert!(
        tokens.iter().any(|e| e["status"] == 200),
        "no token request audited: {text}"
    );
}

#[test]
fn flags_are_checked() {
    for (flag, value) in [
        ("--access-token-ttl-secs", "0"),
        ("--issuer", "ftp://mc.example"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .args(["mc", "--listen", "127.0.0.1:0", flag, value, "--data-dir"])
            .arg(tempfile::tempdir().unwrap().path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{flag}: {err}");
    }
    let mc = Mc::start(Backend::Redb, &["--issuer", "https://mc.example.net/"]);
    let d = call(&mc, "GET", "/.well-known/openid-configuration", &[]);
    assert_eq!(d.body["issuer"], "https://mc.example.net");
    assert_eq!(
        d.body["token_endpoint"],
        "https://mc.example.net/oauth2/token"
    );
}
