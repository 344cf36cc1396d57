//! `edgeplane mc` as a real process, driven with curl: login lockout, tokens (missing,
//! forged, tampered, unknown key id, expired, cookie), HTTPS and the refusal of plaintext
//! beyond loopback. The lockout and token cases run on both stores, as in `mc_accounts.rs`.

#[path = "common/mc.rs"]
#[macro_use]
mod mc_common;

use std::time::Duration;

use mc::auth::{Claims, SigningKeys, TokenConfig};
use mc_common::{A, Backend, Mc, msg, now, password_of};
use serde_json::json;

/// After N failures a login is refused with 429 and Retry-After, even with the right
/// password, until the lock runs out; unknown users get the same 401 as wrong passwords.
fn lockout(b: Backend) {
    let mc = Mc::start(
        b,
        &[
            "--lockout-threshold1",
            "2",
            "--lockout1-secs",
            "2",
            "--lockout-threshold2",
            "50",
            "--lockout2-secs",
            "600",
        ],
    );
    mc.user("carol");
    let login = |pw: &str| {
        mc.post_raw(
            "/api/v1/login",
            None,
            &json!({"username": "carol", "password": pw}).to_string(),
            &[],
        )
    };
    for _ in 0..2 {
        let (s, _, r) = login("wrong password here");
        assert_eq!((s, msg(&r)), (401, "Invalid username or password".into()));
    }
    let (s, headers, r) = login(&password_of("carol"));
    assert_eq!(s, 429, "{r}");
    assert!(
        msg(&r).contains("Login temporarily disabled due to 2 failed login attempts"),
        "{r}"
    );
    assert!(
        headers.to_ascii_lowercase().contains("retry-after:"),
        "{headers}"
    );
    let (s, r) = mc.post(
        "/api/v1/login",
        None,
        &json!({"username": "nobody", "password": "x"}),
    );
    assert_eq!((s, msg(&r)), (401, "Invalid username or password".into()));
    std::thread::sleep(Duration::from_millis(2200));
    let (s, _, r) = login(&password_of("carol"));
    assert_eq!(s, 200, "after the lock: {r}");
}

/// Missing, malformed, forged, unknown-kid and expired tokens are 401; the cookie works like
/// the bearer token; a deleted user's token stops working.
fn tokens(b: Backend) {
    let mc = Mc::start(b, &[]);
    let who = |t: Option<&str>| mc.post(&format!("{A}/user/current"), t, &json!({}));
    let good = mc.user("dave");
    assert_eq!(who(Some(&good)).0, 200);
    let (s, r) = who(None);
    assert_eq!((s, msg(&r)), (401, "no bearer token found".into()));
    assert_eq!(who(Some("not.a.jwt")).0, 401);
    // Cookie instead of bearer.
    let (s, _, r) = mc.post_raw(
        &format!("{A}/user/current"),
        None,
        "{}",
        &["-b", &format!("token={good}")],
    );
    assert_eq!((s, r["name"].as_str()), (200, Some("dave")));
    // Unknown key id: signed by a key the MC never had.
    let other = SigningKeys::generate().unwrap();
    let claims = Claims::user("dave", now(), &TokenConfig::default());
    let (s, r) = who(Some(&other.sign(&claims)));
    assert_eq!(s, 401);
    assert!(msg(&r).contains("unknown key id"), "{r}");
    // Forged: the MC's key id, another key.
    let text = std::fs::read_to_string(mc.signing_keys_file()).unwrap();
    let kid = text
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let other_text = other.to_file_contents();
    let pkcs8 = other_text
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap();
    let forger = SigningKeys::from_file_contents(&format!("{kid} {pkcs8}\n")).unwrap();
    let (s, r) = who(Some(&forger.sign(&claims)));
    assert_eq!(s, 401);
    assert!(msg(&r).contains("bad signature"), "{r}");
    // Tampered: dave's header and signature around another user's (MC-signed) claims.
    let frank = mc.user("frank");
    let d: Vec<&str> = good.split('.').collect();
    let f: Vec<&str> = frank.split('.').collect();
    assert_eq!(who(Some(&format!("{}.{}.{}", d[0], f[1], d[2]))).0, 401);
    // Deleted user.
    let (s, r) = mc.post(
        &format!("{A}/user/delete"),
        Some(&good),
        &json!({"name": "dave"}),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(who(Some(&good)).0, 401);
    drop(mc);
    // Expired: a one-second lifetime.
    let mc = Mc::start(b, &["--token-ttl-secs", "1"]);
    let t = mc.user("erin");
    std::thread::sleep(Duration::from_millis(2100));
    let (s, r) = mc.post(&format!("{A}/user/current"), Some(&t), &json!({}));
    assert_eq!((s, msg(&r)), (401, "token expired".into()));
}

both_backends!(lockout, tokens);

/// HTTPS with --tls-cert/--tls-key (the cookie then `Secure`), and the refusal to serve
/// plaintext beyond loopback, naming the flags.
#[test]
fn https_and_plaintext_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let cert = edge_tls::DevCert::self_signed(&["127.0.0.1"]).unwrap();
    let (c, k) = (dir.path().join("mc.pem"), dir.path().join("mc.key"));
    std::fs::write(&c, &cert.cert_pem).unwrap();
    std::fs::write(&k, &cert.key_pem).unwrap();
    let (cs, ks) = (c.display().to_string(), k.display().to_string());
    let mut mc = Mc::start_in(dir, Backend::Redb, &["--tls-cert", &cs, "--tls-key", &ks]);
    assert!(mc.url.starts_with("https://127.0.0.1:"), "{}", mc.url);
    mc.curl_args = vec!["--cacert".into(), cs];
    let (s, headers, r) = mc.post_raw(
        "/api/v1/login",
        None,
        &json!({"username": "admin", "password": mc.admin_password()}).to_string(),
        &[],
    );
    assert_eq!(s, 200, "{r}");
    assert!(
        headers.contains("HttpOnly; SameSite=Strict; Secure"),
        "{headers}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(["mc", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("refusing to serve plaintext HTTP on 0.0.0.0:0"),
        "{err}"
    );
    assert!(err.contains("--tls-cert/--tls-key"), "{err}");
}
