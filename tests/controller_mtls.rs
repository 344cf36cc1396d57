//! The controller as a real process with `--mtls-*`: its API admits only `mc` and `edgectl`
//! certificates of the region CA, its notify endpoint only subscribers' roles; plaintext
//! callers, certificates of another CA and wrong roles are refused, with a log line on both
//! sides saying why.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use edge_api::pb;
use edge_tls::{MtlsClient, PeerPolicy, Role};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A controller process and what it has logged so far.
struct Process {
    child: Child,
    api: String,
    rest: String,
    notify: String,
    log: Arc<Mutex<String>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Process {
    /// Waits (bounded) until the log has a line containing every one of `words`.
    async fn logged(&self, words: &[&str]) -> String {
        for _ in 0..100 {
            let log = self.log.lock().unwrap().clone();
            if let Some(line) = log.lines().find(|l| words.iter().all(|w| l.contains(w))) {
                return line.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no log line with {words:?} in:\n{}",
            self.log.lock().unwrap()
        );
    }
}

async fn start(dir: &std::path::Path) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(["controller", "--region", "eu", "--data-dir"])
        .arg(dir)
        .args(["--api-addr", "127.0.0.1:0", "--notify-addr", "127.0.0.1:0"])
        .args(["--http-addr", "127.0.0.1:0"])
        .args(pki().flags(Role::Controller))
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            let mut log = sink.lock().unwrap();
            log.push_str(&l);
            log.push('\n');
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), out.next_line())
        .await
        .expect("the controller starts")
        .unwrap()
        .expect("a line");
    // "controller: API on A, REST on R, notify on N (mutual TLS)"
    assert!(line.ends_with("(mutual TLS)"), "{line}");
    let word_after = |k: &str| {
        let rest = &line[line.find(k).unwrap_or_else(|| panic!("{k} in {line}")) + k.len()..];
        rest.split([',', ' ']).next().unwrap().to_owned()
    };
    Process {
        api: word_after("API on "),
        rest: word_after("REST on "),
        notify: word_after("notify on "),
        log,
        child,
    }
}

/// A TLS 1.3 client learns that the server refused its certificate from the server's alert
/// or, when its first request was already on its way, from the closed connection.
fn closed_on_us(err: &str) -> bool {
    [
        "refused the handshake",
        "broken pipe",
        "connection reset",
        "closed",
    ]
    .iter()
    .any(|w| err.contains(w))
}

/// Another CA of the same region name, with an `edgectl` and a `dme` certificate.
fn other_ca(dir: &std::path::Path) -> std::path::PathBuf {
    let d = dir.join("other-pki");
    std::fs::create_dir_all(&d).unwrap();
    edge_tls::pki::init(&d, "eu", false).unwrap();
    for role in [Role::Edgectl, Role::Dme] {
        edge_tls::pki::issue(&d, &edge_tls::LeafRequest::new(role, "test")).unwrap();
    }
    d
}

/// A client presenting the certificate of `role` from the PKI in `dir`, trusting the
/// region's real CA (so that it is the server that refuses it).
fn client_from(dir: &std::path::Path, role: Role) -> MtlsClient {
    let foreign = edge_tls::cli::MtlsArgs::from_pki_dir(dir, role, "test")
        .load()
        .unwrap()
        .unwrap();
    let real = pki().mtls(role);
    MtlsClient::new(
        foreign.cert,
        real.trust,
        PeerPolicy::roles(&[Role::Controller]),
        &[b"h2"],
    )
    .unwrap()
}

/// A Revision call on the API with `tls` (plaintext without): Ok, or the error chain.
async fn revision(api: &str, tls: Option<&MtlsClient>) -> Result<u64, String> {
    let endpoint = edge_tls::grpc::endpoint(api, Duration::from_secs(5)).unwrap();
    let channel = edge_tls::grpc::channel(endpoint, tls)
        .await
        .map_err(|e| edge_api::subscriber::error_chain(&e))?;
    pb::controller_client::ControllerClient::new(channel)
        .revision(pb::RevisionRequest {})
        .await
        .map(|r| r.into_inner().revision)
        .map_err(|s| {
            let mut t = s.to_string();
            if let Some(src) = std::error::Error::source(&s) {
                t = format!("{t}: {}", edge_api::subscriber::error_chain(src));
            }
            t
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_admits_only_mc_and_edgectl_of_the_region_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = start(dir.path()).await;
    let pki = pki();

    // The operator's edgectl and the MC are let in.
    revision(&ctl.api, Some(&pki.client(Role::Edgectl)))
        .await
        .expect("edgectl certificate");
    revision(&ctl.api, Some(&pki.client(Role::Mc)))
        .await
        .expect("mc certificate");

    // Plaintext: refused; the controller says it was not TLS.
    let err = revision(&ctl.api, None).await.unwrap_err();
    assert!(!err.is_empty());
    ctl.logged(&["refused a connection", "not TLS"]).await;

    // A DME's certificate of the right CA: the role is refused, on both sides.
    let err = revision(&ctl.api, Some(&pki.client(Role::Dme)))
        .await
        .unwrap_err();
    assert!(closed_on_us(&err), "{err}");
    ctl.logged(&["refused a connection", "role dme is not allowed here"])
        .await;

    // An edgectl certificate of another CA.
    let other = other_ca(dir.path());
    let err = revision(&ctl.api, Some(&client_from(&other, Role::Edgectl)))
        .await
        .unwrap_err();
    assert!(closed_on_us(&err), "{err}");
    ctl.logged(&["refused a connection", "from another CA"])
        .await;

    // The REST mirror is under the same rule: curl without a client certificate is refused.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(pki.dir.join("ca.pem"))
        .arg(format!("https://{}/api/v1/revision", ctl.rest))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(pki.dir.join("ca.pem"))
        .arg("--cert")
        .arg(pki.dir.join("edgectl-test.pem"))
        .arg("--key")
        .arg(pki.dir.join("edgectl-test.key"))
        .arg(format!("https://{}/api/v1/revision", ctl.rest))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && body.contains("revision"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_admits_only_subscribers_of_the_region_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = start(dir.path()).await;
    let pki = pki();
    let notify: std::net::SocketAddr = ctl.notify.parse().unwrap();

    // A document applied by the operator's edgectl.
    let endpoint = edge_tls::grpc::endpoint(&ctl.api, Duration::from_secs(5)).unwrap();
    let channel = edge_tls::grpc::channel(endpoint, Some(&pki.client(Role::Edgectl)))
        .await
        .unwrap();
    let mut client = pb::controller_client::ControllerClient::new(channel);
    edgectl::apply(&mut client, &example())
        .await
        .expect("apply");

    // A DME with its certificate is fed: it finds the instance.
    let good = start_dme_tls(&[notify], Some(pki.client(Role::Dme))).await;
    let mut fed = false;
    for _ in 0..100 {
        fed = knows_arena(&good).await;
        if fed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fed, "the DME with a dme certificate is fed");
    assert_eq!(
        good.find(&arena(), "26201", 52.3906, 13.0645).await,
        Some((52.52, 13.405))
    );

    // Plaintext, another CA, and an edgectl certificate on notify are refused.
    let plain = start_dme_tls(&[notify], None).await;
    ctl.logged(&["refused a connection", "not TLS"]).await;
    let other = other_ca(dir.path());
    let foreign = start_dme_tls(&[notify], Some(client_from(&other, Role::Dme))).await;
    ctl.logged(&["refused a connection", "from another CA"])
        .await;
    let wrong_role = start_dme_tls(&[notify], Some(pki.client(Role::Edgectl))).await;
    ctl.logged(&["refused a connection", "role edgectl is not allowed here"])
        .await;
    for dme in [&plain, &foreign, &wrong_role] {
        assert!(!knows_arena(dme).await, "a refused DME has no apps");
    }
}

/// Whether the DME knows the example's arena app (RegisterClient succeeds).
async fn knows_arena(dme: &Dme) -> bool {
    let app = arena();
    dme.client()
        .await
        .register_client(dme::proto::RegisterClientRequest {
            org_name: app.organization,
            app_name: app.name,
            app_vers: app.version,
            ..Default::default()
        })
        .await
        .is_ok()
}

#[test]
fn plaintext_off_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(["controller", "--data-dir"])
        .arg(dir.path())
        .args(["--api-addr", "0.0.0.0:0", "--notify-addr", "127.0.0.1:0"])
        .args(["--http-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("refusing to serve the API in plaintext on 0.0.0.0:")
            && err.contains("--mtls-ca"),
        "{err}"
    );
}

/// The fingerprint of the certificate the controller presents to a new connection.
async fn presented(api: &str) -> String {
    let tcp = tokio::net::TcpStream::connect(api).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let (tls, peer) = pki()
        .client(Role::Edgectl)
        .connect(tcp, name)
        .await
        .unwrap();
    assert_eq!(peer.role, Role::Controller);
    let certs = tls.get_ref().1.peer_certificates().unwrap();
    edge_tls::fingerprint(&certs[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reissued_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = start(dir.path()).await;
    let file = pki().dir.join("controller-test.pem");
    let on_file = || edge_tls::fingerprint(&edge_tls::load_certs(&file).unwrap()[0]);
    assert_eq!(presented(&ctl.api).await, on_file());
    // Re-issued in place (same CA, same role), as an operator rotates it.
    edge_tls::pki::issue(
        &pki().dir,
        &edge_tls::LeafRequest::new(Role::Controller, "test"),
    )
    .unwrap();
    let new = on_file();
    let mut served = String::new();
    for _ in 0..100 {
        served = presented(&ctl.api).await;
        if served == new {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served, new, "the new certificate is served within 10 s");
    // And it still admits its clients.
    revision(&ctl.api, Some(&pki().client(Role::Edgectl)))
        .await
        .expect("edgectl after the rotation");
}
