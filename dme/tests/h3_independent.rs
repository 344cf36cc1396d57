//! The DME's HTTP/3 endpoint with independent clients over real QUIC sockets: Python's aioquic
//! (`tests/python/h3_client.py`) and ngtcp2's example client `gtlsclient` (Debian's
//! `ngtcp2-client`, built on GnuTLS). REST over HTTP/3 answers as REST over TCP; a resumed client's
//! lookup runs in 0-RTT and counts once, a state change in 0-RTT is Too Early; a replayed first
//! flight or a reused ticket is not served early again; a wrong ALPN is refused.
//!
//! `scripts/test.sh` installs aioquic into `.venv` and `ngtcp2-client`; set `EDGEPLANE_PYTHON`
//! to use another interpreter. A missing tool fails the test, naming what to install.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::edge_py::python;
use common::h3::{H3, finds, relay, start_h3};
use common::*;
use dme::fixture;
use serde_json::{Value, json};
use tokio::process::Command;

/// How long one run of an external client may take, in all.
const CLIENT_LIMIT: Duration = Duration::from_secs(40);

/// How much a relay delays a client's datagrams, so a 0-RTT request reaches the server well
/// before the client's Finished does (see `common::h3::relay`).
const RELAY_DELAY: Duration = Duration::from_millis(50);

/// Waits (bounded) for the FindCloudlet counter to reach `want`, then a little longer to see
/// that it stays there; returns its value.
async fn settle_finds(s: &Server, want: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while finds(s) < want && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    finds(s)
}

fn find_body(cookie: &str) -> Value {
    json!({"session_cookie": cookie, "carrier_name": "orange",
           "gps_location": {"latitude": 48.85, "longitude": 2.35}})
}

fn register_body() -> Value {
    json!({"org_name": "devorg", "app_name": "app", "app_vers": "1.0"})
}

/// Removes the fields that are freshly made for every answer.
fn strip(mut v: Value, fields: &[&str]) -> Value {
    if let Some(o) = v.as_object_mut() {
        for f in fields {
            o.remove(*f);
        }
    }
    v
}

/// A scratch directory with the server's certificate in it.
fn scratch(h3: &H3) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &h3.cert_pem).unwrap();
    (dir, ca)
}

async fn output(cmd: &mut Command, what: &str) -> std::process::Output {
    cmd.kill_on_drop(true);
    tokio::time::timeout(CLIENT_LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {CLIENT_LIMIT:?}"))
        .unwrap_or_else(|e| panic!("{what} could not start: {e}"))
}

// ---- aioquic ----

/// The Python interpreter, checked to have aioquic.
async fn aioquic_python() -> PathBuf {
    let py = python();
    let out = output(
        Command::new(&py).args(["-c", "import aioquic; print(aioquic.__version__)"]),
        "python",
    )
    .await;
    assert!(
        out.status.success(),
        "{} has no aioquic: run scripts/test.sh (it installs aioquic into .venv) or set \
         EDGEPLANE_PYTHON to a Python that has it: {}",
        py.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    py
}

/// Runs `h3_client.py` against `port` on 127.0.0.1 with `opts` and one `--request` per entry of
/// `requests`; returns its JSON report.
async fn aioquic(port: u16, ca: &Path, opts: &[&str], requests: &[Value]) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/h3_client.py");
    let mut cmd = Command::new(aioquic_python().await);
    cmd.arg(script)
        .args(["127.0.0.1", &port.to_string(), "--ca"])
        .arg(ca)
        .args(["--timeout", "15"])
        .args(opts);
    for r in requests {
        cmd.arg("--request").arg(r.to_string());
    }
    let out = output(&mut cmd, "h3_client.py").await;
    assert!(
        out.status.success(),
        "h3_client.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON from h3_client.py ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A POST request for `h3_client.py`.
fn post(path: &str, body: Value) -> Value {
    let mut r = json!({"method": "POST", "path": path});
    r["body"] = body;
    r
}

/// A first, full connection that leaves a resumption ticket in `ticket`.
async fn aioquic_ticket(h3: &H3, ca: &Path, ticket: &Path) {
    let v = aioquic(
        h3.addr.port(),
        ca,
        &["--ticket-out", ticket.to_str().unwrap()],
        &[json!({"method": "GET", "path": "/metrics"})],
    )
    .await;
    assert_eq!(v["error"], Value::Null, "{v}");
    assert_eq!(v["responses"][0]["status"], 200, "{v}");
    assert_eq!(v["handshake"]["session_resumed"], false, "{v}");
    assert!(ticket.exists(), "no session ticket arrived: {v}");
}

/// Asserts that the client offered a ticket allowing early data and sent request `i` before
/// the handshake completed.
fn assert_sent_early(v: &Value, i: usize) {
    assert_eq!(v["error"], Value::Null, "{v}");
    assert_eq!(v["ticket_allows_early_data"], true, "{v}");
    let r = &v["responses"][i];
    assert_eq!(r["sent_before_handshake"], true, "{v}");
    assert_eq!(
        r["packet_types"][0], "0RTT",
        "the request was not first sent in 0-RTT packets: {v}"
    );
}

/// Asserts that request `i` went out in 0-RTT and the server accepted the early data. (A copy
/// may follow in 1-RTT: the client retransmits what is not yet acknowledged when its probe
/// timer fires, and the server can acknowledge 0-RTT packets only once the client has 1-RTT
/// keys.)
fn assert_accepted_early(v: &Value, i: usize) {
    assert_sent_early(v, i);
    assert_eq!(v["handshake"]["session_resumed"], true, "{v}");
    assert_eq!(v["handshake"]["early_data_accepted"], true, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aioquic_rest_answers_as_rest_over_tcp() {
    let s = start(region()).await;
    let h3 = start_h3(&s);
    let (_dir, ca) = scratch(&h3);
    let v = aioquic(
        h3.addr.port(),
        &ca,
        &[],
        &[
            post("/v1/registerclient", register_body()),
            post("/v1/findcloudlet", find_body("$session_cookie")),
            post("/v1/findcloudlet", json!({"session_cookie": "garbage"})),
            post("/v1/nosuchrpc", json!({})),
        ],
    )
    .await;
    assert_eq!(v["error"], Value::Null, "{v}");
    assert_eq!(v["handshake"]["alpn"], "h3", "{v}");
    let r = &v["responses"];
    // RegisterClient: the same answer but for the fresh cookie and id.
    let (st1, reg_tcp) = s
        .post("/v1/registerclient", &register_body().to_string())
        .await;
    assert_eq!((r[0]["status"].as_u64(), st1), (Some(200), 200), "{v}");
    assert_eq!(r[0]["headers"]["content-type"], "application/json");
    let cookie = r[0]["body"]["session_cookie"].as_str().unwrap().to_string();
    assert!(!cookie.is_empty());
    let fresh = ["session_cookie", "unique_id"];
    assert_eq!(
        strip(r[0]["body"].clone(), &fresh),
        strip(reg_tcp, &fresh),
        "{v}"
    );
    // FindCloudlet with that cookie: over TCP the same answer, but for the freshly signed
    // edge-events cookie.
    let (st1, find_tcp) = s
        .post("/v1/findcloudlet", &find_body(&cookie).to_string())
        .await;
    assert_eq!((r[1]["status"].as_u64(), st1), (Some(200), 200), "{v}");
    assert_eq!(r[1]["body"]["status"], "FIND_FOUND");
    assert_eq!(
        r[1]["body"]["fqdn"],
        "paris.paris-orange.local.edge.example.net"
    );
    assert_eq!(
        strip(r[1]["body"].clone(), &["edge_events_cookie"]),
        strip(find_tcp, &["edge_events_cookie"])
    );
    // Errors: the same status and body.
    let (st1, bad_tcp) = s
        .post(
            "/v1/findcloudlet",
            &json!({"session_cookie": "garbage"}).to_string(),
        )
        .await;
    assert_eq!(
        (r[2]["status"].as_u64(), &r[2]["body"]),
        (Some(401), &bad_tcp)
    );
    assert_eq!(st1, 401);
    let (st1, none_tcp) = s.post("/v1/nosuchrpc", "{}").await;
    assert_eq!(
        (r[3]["status"].as_u64(), &r[3]["body"]),
        (Some(404), &none_tcp)
    );
    assert_eq!(st1, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aioquic_zero_rtt_find_cloudlet_is_served_and_counted_once() {
    let s = start(region()).await;
    let h3 = start_h3(&s);
    let (dir, ca) = scratch(&h3);
    let cookie = s.register(&fixture::app_key()).await;
    let ticket = dir.path().join("ticket");
    aioquic_ticket(&h3, &ca, &ticket).await;
    let before = finds(&s);
    let relay = relay(h3.addr, RELAY_DELAY).await;
    let v = aioquic(
        relay.addr.port(),
        &ca,
        &["--early", "--ticket-in", ticket.to_str().unwrap()],
        &[post("/v1/findcloudlet", find_body(&cookie))],
    )
    .await;
    assert_accepted_early(&v, 0);
    let r = &v["responses"][0];
    assert_eq!(r["status"], 200, "{v}");
    assert_eq!(r["body"]["status"], "FIND_FOUND", "{v}");
    assert_eq!(
        r["body"]["fqdn"],
        "paris.paris-orange.local.edge.example.net"
    );
    assert_eq!(
        settle_finds(&s, before + 1).await,
        before + 1,
        "FindCloudlet counted other than once (before: {before}): {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aioquic_zero_rtt_state_change_is_too_early_then_runs() {
    let s = start(region()).await;
    let h3 = start_h3(&s);
    let (dir, ca) = scratch(&h3);
    let cookie = s.register(&fixture::app_key()).await;
    let ticket = dir.path().join("ticket");
    aioquic_ticket(&h3, &ca, &ticket).await;
    let relay = relay(h3.addr, RELAY_DELAY).await;
    let qos = json!({"session_cookie": cookie});
    let mut after = post("/v1/qosprioritysessioncreate", qos.clone());
    after["after_handshake"] = json!(true);
    let v = aioquic(
        relay.addr.port(),
        &ca,
        &["--early", "--ticket-in", ticket.to_str().unwrap()],
        &[post("/v1/qosprioritysessioncreate", qos.clone()), after],
    )
    .await;
    assert_accepted_early(&v, 0);
    let r = &v["responses"];
    assert_eq!(r[0]["status"], 425, "{v}");
    assert!(
        r[0]["body"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Too Early")),
        "{v}"
    );
    // After the handshake the same call runs: this DME does not implement it, as over TCP.
    assert_eq!(r[1]["sent_before_handshake"], false, "{v}");
    assert_eq!(r[1]["packet_types"], json!(["1RTT"]), "{v}");
    let (st1, tcp) = s
        .post("/v1/qosprioritysessioncreate", &qos.to_string())
        .await;
    assert_eq!((r[1]["status"].as_u64(), &r[1]["body"]), (Some(501), &tcp));
    assert_eq!(st1, 501);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aioquic_replayed_zero_rtt_is_not_served_early_again() {
    let s = start(region()).await;
    let h3 = start_h3(&s);
    let (dir, ca) = scratch(&h3);
    let cookie = s.register(&fixture::app_key()).await;
    let ticket = dir.path().join("ticket");
    aioquic_ticket(&h3, &ca, &ticket).await;
    let before = finds(&s);
    let find = [post("/v1/findcloudlet", find_body(&cookie))];
    let early = ["--early", "--ticket-in", ticket.to_str().unwrap()];
    let first = relay(h3.addr, RELAY_DELAY).await;
    let v = aioquic(first.addr.port(), &ca, &early, &find).await;
    assert_accepted_early(&v, 0);
    assert_eq!(v["responses"][0]["status"], 200, "{v}");
    assert_eq!(settle_finds(&s, before + 1).await, before + 1);
    // An attacker re-sends everything the client sent (its first flight of ClientHello and
    // 0-RTT request, and the rest) from elsewhere, once the genuine connection has gone: the
    // ticket was used, so the early data is refused and nothing is counted again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let flight: Vec<Vec<u8>> = first.sent.lock().unwrap().clone();
    assert!(!flight.is_empty());
    let attacker = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for d in &flight {
        attacker.send_to(d, h3.addr).await.unwrap();
    }
    // The server took it for a new connection and answered (with a full handshake).
    let mut buf = [0u8; 2048];
    tokio::time::timeout(Duration::from_secs(5), attacker.recv_from(&mut buf))
        .await
        .expect("the server answers the replayed ClientHello")
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(finds(&s), before + 1, "a replayed 0-RTT flight was counted");
    // The client itself reuses the same ticket: the server no longer holds its session, so the
    // handshake is a full one, the early data is refused, and the client sends the request again
    // in 1-RTT, where it is answered and counted once.
    let second = relay(h3.addr, RELAY_DELAY).await;
    let v = aioquic(second.addr.port(), &ca, &early, &find).await;
    assert_sent_early(&v, 0);
    assert_eq!(v["handshake"]["session_resumed"], false, "{v}");
    assert_eq!(v["handshake"]["early_data_accepted"], false, "{v}");
    let r = &v["responses"][0];
    assert!(
        r["packet_types"]
            .as_array()
            .unwrap()
            .contains(&json!("1RTT")),
        "the refused request was not sent again in 1-RTT: {v}"
    );
    assert_eq!(
        (r["status"].as_u64(), r["body"]["status"].as_str()),
        (Some(200), Some("FIND_FOUND"))
    );
    assert_eq!(
        settle_finds(&s, before + 2).await,
        before + 2,
        "the request sent in 0-RTT and again in 1-RTT was counted twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aioquic_wrong_alpn_or_untrusted_certificate_is_refused_and_the_server_keeps_serving() {
    let s = start(region()).await;
    let h3 = start_h3(&s);
    let (dir, ca) = scratch(&h3);
    let metrics = [json!({"method": "GET", "path": "/metrics"})];
    let v = aioquic(h3.addr.port(), &ca, &["--alpn", "h2"], &metrics).await;
    assert!(v["error"].is_string(), "{v}");
    assert_eq!(v["handshake"], Value::Null, "{v}");
    assert_eq!(v["responses"], json!([]), "{v}");
    // CRYPTO_ERROR with TLS alert 120, no_application_protocol (RFC 9001 §4.8, RFC 7301).
    assert_eq!(v["terminated"]["error_code"], 0x100 + 120, "{v}");
    assert!(v["elapsed_s"].as_f64().unwrap() < 5.0, "{v}");
    // The client checks the server's certificate: trusting another CA, it refuses the server
    // (TLS alert 42, bad_certificate).
    let (_, other) = edge_tls::ServerCert::dev_self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, &other.cert_pem).unwrap();
    let v = aioquic(h3.addr.port(), &other_ca, &[], &metrics).await;
    assert!(v["error"].is_string(), "{v}");
    assert_eq!(v["handshake"], Value::Null, "{v}");
    assert_eq!(v["terminated"]["error_code"], 0x100 + 42, "{v}");
    // The server keeps serving the next good client.
    let cookie = s.register(&fixture::app_key()).await;
    let v = aioquic(
        h3.addr.port(),
        &ca,
        &[],
        &[post("/v1/findcloudlet", find_body(&cookie))],
    )
    .await;
    assert_eq!(v["error"], Value::Null, "{v}");
    assert_eq!(v["responses"][0]["status"], 200, "{v}");
    assert_eq!(v["responses"][0]["body"]["status"], "FIND_FOUND", "{v}");
}

// ---- ngtcp2 (gtlsclient) ----

/// ngtcp2's example HTTP/3 client (GnuTLS build), from Debian's `ngtcp2-client`.
fn gtlsclient() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("gtlsclient"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "gtlsclient not found on PATH: run scripts/test.sh (it installs Debian's \
             ngtcp2-client) or `apt-get install ngtcp2-client`"
        )
    })
}

/// What one `gtlsclient` run got: the status and body of its one request, and its log.
struct Ngtcp2 {
    status: u16,
    body: Vec<u8>,
    log: String,
}

impl Ngtcp2 {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?}\n{}",
                String::from_utf8_lossy(&self.body),
                self.log
            )
        })
    }

    /// Index of the first log line containing `needle`.
    fn line(&self, needle: &str) -> Option<usize> {
        self.log.lines().position(|l| l.contains(needle))
    }
}

/// Runs `gtlsclient` once against `port` on 127.0.0.1 for `https://localhost:{port}{path}`,
/// with `method` and the body in `data`, resuming from and saving to `dir`'s session and
/// transport-parameter files.
async fn ngtcp2(port: u16, dir: &Path, method: &str, path: &str, data: Option<&Value>) -> Ngtcp2 {
    let download = tempfile::tempdir_in(dir).unwrap();
    let mut cmd = Command::new(gtlsclient());
    cmd.args([
        "--exit-on-all-streams-close",
        "--no-quic-dump",
        "--no-http-dump",
        "--timeout=10s",
        "--handshake-timeout=10s",
        "--sni=localhost",
        "-m",
        method,
    ])
    .arg(format!("--session-file={}", dir.join("session").display()))
    .arg(format!("--tp-file={}", dir.join("tp").display()))
    .arg(format!("--download={}", download.path().display()));
    if let Some(data) = data {
        let file = dir.join("body.json");
        std::fs::write(&file, data.to_string()).unwrap();
        cmd.arg(format!("--data={}", file.display()));
    }
    cmd.args([
        "127.0.0.1".to_string(),
        port.to_string(),
        format!("https://localhost:{port}{path}"),
    ]);
    let out = output(&mut cmd, "gtlsclient").await;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "gtlsclient failed: {log}");
    // `http: stream 0x0 [:status: 200]`
    let status = log
        .lines()
        .find_map(|l| l.split("[:status: ").nth(1))
        .and_then(|rest| rest.trim_end_matches(']').parse().ok())
        .unwrap_or_else(|| panic!("no :status in gtlsclient's log: {log}"));
    // --download names the file after the path's last segment.
    let name = path.rsplit('/').next().unwrap();
    let body = std::fs::read(download.path().join(name)).unwrap_or_default();
    Ngtcp2 { status, body, log }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ngtcp2_get_and_post_answer_as_over_tcp() {
    let s = start(region()).await;
    let h3 = start_h3(&s);
    let dir = tempfile::tempdir().unwrap();
    let port = h3.addr.port();
    let m = ngtcp2(port, dir.path(), "GET", "/metrics", None).await;
    assert_eq!(m.status, 200, "{}", m.log);
    let text = String::from_utf8_lossy(&m.body);
    assert!(text.contains("# TYPE "), "not Prometheus text: {text}");
    assert!(
        m.log.contains("content-type: text/plain; version=0.0.4"),
        "{}",
        m.log
    );
    assert!(m.log.contains("Negotiated ALPN is h3"), "{}", m.log);
    let cookie = s.register(&fixture::app_key()).await;
    let f = ngtcp2(
        port,
        dir.path(),
        "POST",
        "/v1/findcloudlet",
        Some(&find_body(&cookie)),
    )
    .await;
    let (st1, tcp) = s
        .post("/v1/findcloudlet", &find_body(&cookie).to_string())
        .await;
    assert_eq!((f.status, st1), (200, 200), "{}", f.log);
    assert_eq!(f.json()["status"], "FIND_FOUND");
    assert_eq!(
        strip(f.json(), &["edge_events_cookie"]),
        strip(tcp, &["edge_events_cookie"])
    );
    let bad = json!({"session_cookie": "garbage"});
    let e = ngtcp2(port, dir.path(), "POST", "/v1/findcloudlet", Some(&bad)).await;
    let (st1, tcp) = s.post("/v1/findcloudlet", &bad.to_string()).await;
    assert_eq!((e.status, e.json()), (st1, tcp), "{}", e.log);
    assert_eq!(e.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ngtcp2_resumes_and_sends_its_request_in_0rtt() {
    let s = start(region()).await;
    let h3 = start_h3(&s);
    let dir = tempfile::tempdir().unwrap();
    let cookie = s.register(&fixture::app_key()).await;
    // First run: a full handshake, which leaves a session and the transport parameters.
    let first = ngtcp2(h3.addr.port(), dir.path(), "GET", "/metrics", None).await;
    assert_eq!(first.status, 200, "{}", first.log);
    assert!(first.line(" 0RTT ").is_none(), "{}", first.log);
    assert!(
        std::fs::metadata(dir.path().join("session")).is_ok_and(|m| m.len() > 0),
        "no session saved: {}",
        first.log
    );
    assert!(dir.path().join("tp").exists(), "{}", first.log);
    // Second run, through the delaying relay: the request goes out in 0-RTT before the
    // handshake completes, the server accepts it, and answers.
    let before = finds(&s);
    let relay = relay(h3.addr, RELAY_DELAY).await;
    let r = ngtcp2(
        relay.addr.port(),
        dir.path(),
        "POST",
        "/v1/findcloudlet",
        Some(&find_body(&cookie)),
    )
    .await;
    // The request stream (id 0) with its FIN, headers and body, in a 0-RTT packet.
    let sent = r
        .line("0RTT STREAM(0x0b) id=0x0 fin=1")
        .unwrap_or_else(|| panic!("the request was not sent in 0-RTT: {}", r.log));
    let done = r
        .line("QUIC handshake has completed")
        .unwrap_or_else(|| panic!("no handshake: {}", r.log));
    assert!(sent < done, "{}", r.log);
    assert!(
        r.line("submit request headers").is_some_and(|l| l < done),
        "{}",
        r.log
    );
    assert!(
        r.line("Early data was rejected").is_none(),
        "the server refused the early data: {}",
        r.log
    );
    assert_eq!(r.status, 200, "{}", r.log);
    assert_eq!(r.json()["status"], "FIND_FOUND", "{}", r.log);
    assert_eq!(
        r.json()["fqdn"],
        "paris.paris-orange.local.edge.example.net"
    );
    assert_eq!(
        settle_finds(&s, before + 1).await,
        before + 1,
        "FindCloudlet counted other than once (before: {before}): {}",
        r.log
    );
}
