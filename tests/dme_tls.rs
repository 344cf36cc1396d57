//! The `edgeplane dme` binary's TLS flags: `--dev-tls` prints the fingerprint of the certificate
//! it then serves and writes that certificate where a client can trust it; plaintext on a
//! non-loopback address is refused at start with an error naming the flags.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dme::proto::RegisterClientRequest;
use dme::proto::match_engine_api_client::MatchEngineApiClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

const REGION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/region.yaml");

/// Kills the DME when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dme(extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgeplane"));
    cmd.args(["dme", "--standalone", REGION]).args(extra);
    cmd
}

/// The text after `tag` up to the next ',', ' ' or ')'.
fn after<'a>(line: &'a str, tag: &str) -> &'a str {
    let rest = &line[line.find(tag).map_or(line.len(), |i| i + tag.len())..];
    rest.split([',', ' ', ')']).next().unwrap_or("")
}

/// SHA-256 of the certificate served on `addr`, read by Python's ssl module (no verification:
/// this only looks at what is presented).
fn served_fingerprint(addr: &str) -> String {
    let python = std::env::var("EDGEPLANE_PYTHON").unwrap_or_else(|_| "python3".into());
    let (host, port) = addr.rsplit_once(':').unwrap();
    let script = "import hashlib, ssl, sys\n\
        pem = ssl.get_server_certificate((sys.argv[1], int(sys.argv[2])), timeout=10)\n\
        der = ssl.PEM_cert_to_DER_cert(pem)\n\
        print(':'.join(f'{b:02X}' for b in hashlib.sha256(der).digest()))";
    let out = Command::new(python)
        .args(["-c", script, host, port])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn register_over_tls(grpc: &str, ca_pem: &Path) {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca_pem).unwrap()))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{grpc}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("a TLS connection trusting the written certificate");
    let reply = MatchEngineApiClient::new(channel)
        .register_client(RegisterClientRequest {
            org_name: "NimbusGames".into(),
            app_name: "arena-shooter".into(),
            app_vers: "2.3".into(),
            ..Default::default()
        })
        .await
        .expect("RegisterClient over TLS");
    assert!(!reply.into_inner().session_cookie.is_empty());
}

#[tokio::test]
async fn dev_tls_prints_the_fingerprint_of_the_certificate_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("dev/cert.pem");
    let out = pem.to_str().unwrap();
    let ports = ["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"];
    let mut child = dme(&[&ports[..], &["--dev-tls", "--dev-tls-out", out]].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    let next = || {
        rx.recv_timeout(Duration::from_secs(120))
            .expect("a line from the DME")
    };
    let dev = next();
    assert!(dev.starts_with("DME dev TLS"), "{dev}");
    assert!(dev.contains(out), "names where the certificate is: {dev}");
    let printed = after(&dev, "SHA-256 ");
    let banner = next();
    assert!(
        banner.contains(&format!("(TLS, certificate SHA-256 {printed})")),
        "{banner}"
    );
    let (grpc, rest) = (after(&banner, "gRPC on "), after(&banner, "REST on "));
    assert_eq!(served_fingerprint(rest), printed);
    assert_eq!(served_fingerprint(grpc), printed);
    register_over_tls(grpc, &pem).await;
    // With TLS, HTTP/3 is served too, by default on the REST address over UDP.
    let h3 = next();
    let h3 = after(&h3, "DME HTTP/3 on UDP ");
    assert_eq!(h3, rest, "HTTP/3 defaults to the REST address");
    fetch_metrics_over_h3(h3.parse().unwrap(), &pem).await;
}

async fn fetch_metrics_over_h3(addr: std::net::SocketAddr, ca_pem: &Path) {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let roots = CertificateDer::pem_file_iter(ca_pem)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let config = dme::h3_client::client_config(&roots).unwrap();
    let ep = dme::h3_client::client_endpoint("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let (c, _) = dme::h3_client::H3Client::connect(&ep, addr, "localhost", false)
        .await
        .expect("an HTTP/3 connection trusting the written certificate");
    let req = http::Request::get("https://localhost/metrics")
        .body(bytes::Bytes::new())
        .unwrap();
    let r = c.request(req).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("# TYPE"));
}

#[test]
fn h3_flags_without_tls_or_with_a_bad_server_id_are_refused() {
    let run = |args: &[&str]| {
        let out = dme(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("edgeplane dme runs");
        assert!(!out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let ports = ["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"];
    let e = run(&[&ports[..], &["--h3-addr", "127.0.0.1:0"]].concat());
    assert!(
        e.contains("HTTP/3 needs TLS") && e.contains("--dev-tls"),
        "{e}"
    );
    let e = run(&[&ports[..], &["--dev-tls", "--quic-server-id", "zz"]].concat());
    assert!(e.contains("--quic-server-id zz"), "{e}");
    let e = run(&[
        &ports[..],
        &[
            "--dev-tls",
            "--quic-server-id",
            "0a01",
            "--quic-cid-config",
            "1:3:8",
        ],
    ]
    .concat());
    assert!(
        e.contains("--quic-server-id 0a01 with --quic-cid-config 1:3:8"),
        "{e}"
    );
}

#[test]
fn plaintext_off_loopback_is_refused_at_start() {
    let out = dme(&["--grpc-addr", "0.0.0.0:0", "--http-addr", "127.0.0.1:0"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("edgeplane dme runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to serve gRPC in plaintext on 0.0.0.0:")
            && stderr.contains("--tls-cert/--tls-key")
            && stderr.contains("--dev-tls")
            && stderr.contains("--insecure-plaintext"),
        "{stderr}"
    );
}
