//! The DME over TLS, on real sockets: a certificate issued by a test CA (generated here, never
//! committed) on both listeners; Python grpcio and Python's ssl + http.client trusting only that
//! CA (`scripts/test.sh` installs grpcio into `.venv`; `EDGEPLANE_PYTHON` overrides); a
//! plaintext client on a TLS port; certificate rotation; plaintext refused off loopback.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, FromArgMatches};
use common::edge_py::python;
use dme::cli::DmeArgs;
use dme::proto::RegisterClientRequest;
use dme::proto::match_engine_api_client::MatchEngineApiClient;
use dme::server::Listeners;
use dme::{Dme, DmeConfig, Tables};
use edge_tls::ServerCert;
use edge_tls::dev::{DevCa, DevCert};
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

const LIMIT: Duration = Duration::from_secs(30);

/// One engine served twice: over TLS and in plaintext.
struct TlsDme {
    grpc: SocketAddr,
    rest: SocketAddr,
    plain_rest: SocketAddr,
    cert: Arc<ServerCert>,
    ca: DevCa,
    dir: tempfile::TempDir,
    _stop: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// Writes a pair the way rotation tools do: new files renamed over the old ones.
fn write_pair(dir: &Path, pair: &DevCert) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    for (path, text) in [(&cert, &pair.cert_pem), (&key, &pair.key_pem)] {
        std::fs::write(path.with_extension("new"), text).unwrap();
        std::fs::rename(path.with_extension("new"), path).unwrap();
    }
    (cert, key)
}

async fn serve(
    dme: &Arc<Dme>,
    tls: Option<Arc<ServerCert>>,
) -> (SocketAddr, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addrs = (grpc.local_addr().unwrap(), rest.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let listeners = Listeners {
        grpc,
        rest,
        tls,
        h3: None,
    };
    tokio::spawn(dme::server::run(listeners, dme.clone(), async move {
        let _ = rx.await;
    }));
    (addrs.0, addrs.1, tx)
}

async fn start() -> TlsDme {
    let ca = DevCa::new("edgeplane test CA").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    let (cert, key) = write_pair(dir.path(), &ca.issue(&["localhost", "127.0.0.1"]).unwrap());
    let cert = ServerCert::from_files(&cert, &key).unwrap();
    let tables = Tables::from_deployment(&common::region().build(), 1).unwrap();
    let dme = Arc::new(Dme::new(tables, common::keys(), DmeConfig::default(), None));
    let (grpc, rest, stop_tls) = serve(&dme, Some(cert.clone())).await;
    let (_, plain_rest, stop_plain) = serve(&dme, None).await;
    TlsDme {
        grpc,
        rest,
        plain_rest,
        cert,
        ca,
        dir,
        _stop: vec![stop_tls, stop_plain],
    }
}

impl TlsDme {
    fn rustls_client(&self) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.cert_der()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(edge_tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsConnector::from(Arc::new(config))
    }

    /// An HTTP/1.1 connection to the REST TLS port and the fingerprint the server presented.
    async fn rest_conn(&self) -> (SendRequest<Full<Bytes>>, String) {
        let tcp = TcpStream::connect(self.rest).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = self.rustls_client().connect(name, tcp).await.unwrap();
        let leaf = &tls.get_ref().1.peer_certificates().unwrap()[0];
        let fingerprint = edge_tls::fingerprint(leaf);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        (send, fingerprint)
    }

    async fn grpc_client(&self) -> MatchEngineApiClient<Channel> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.ca.cert_pem()))
            .domain_name("localhost");
        let channel = Channel::from_shared(format!("https://{}", self.grpc))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        MatchEngineApiClient::new(channel)
    }
}

/// RegisterClient over REST on `send`; the HTTP status.
async fn register(send: &mut SendRequest<Full<Bytes>>) -> u16 {
    let body = r#"{"org_name":"devorg","app_name":"app","app_vers":"1.0"}"#;
    let req = http::Request::post("/v1/registerclient")
        .header(http::header::HOST, "localhost")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    send.send_request(req).await.unwrap().status().as_u16()
}

async fn grpc_register(client: &mut MatchEngineApiClient<Channel>) -> Result<(), tonic::Status> {
    let req = RegisterClientRequest {
        org_name: "devorg".into(),
        app_name: "app".into(),
        app_vers: "1.0".into(),
        ..Default::default()
    };
    client.register_client(req).await.map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_over_tls_get_what_plaintext_gets() {
    let s = start().await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/tls_client.py");
    let ca = s.dir.path().join("ca.pem");
    let out = tokio::process::Command::new(python())
        .arg(script)
        .args([
            &s.grpc.to_string(),
            &s.rest.to_string(),
            &s.plain_rest.to_string(),
        ])
        .arg(&ca)
        .args(["devorg", "app", "1.0", "26201", "52.4", "13.3"])
        .output();
    let out = tokio::time::timeout(LIMIT, out)
        .await
        .unwrap()
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python failed: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from the client");
    assert_eq!(v["register_status"], "RS_SUCCESS", "{v}");
    assert_eq!(v["find_status"], "FIND_FOUND", "{v}");
    assert_eq!(v["fqdn"], "berlin.berlin-telekom.local.edge.example.net");
    assert_eq!(v["rest_register_status"], 200, "{v}");
    assert_eq!(v["rest_register"], "RS_SUCCESS", "{v}");
    assert_eq!(v["rest_fingerprint"], s.cert.fingerprint().as_str());
    // The same engine answers the same over both: only the freshly minted edge-events cookie
    // may differ.
    let mut find = [v["tls_find"].clone(), v["plain_find"].clone()];
    for f in &mut find {
        assert_eq!(f[0], 200, "{v}");
        let reply = f[1].as_object_mut().unwrap();
        assert!(reply.remove("edge_events_cookie").is_some(), "{v}");
    }
    assert_eq!(find[0], find[1]);
    assert_eq!(find[0][1]["status"], "FIND_FOUND");
    assert_eq!(v["tls_list"], v["plain_list"]);
    assert_eq!(v["tls_list"][0], 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_clients_on_tls_ports_fail_cleanly_and_others_are_served() {
    let s = start().await;
    // A client that connects and never says anything: nobody waits for its handshake.
    let _silent = TcpStream::connect(s.rest).await.unwrap();
    let _silent_grpc = TcpStream::connect(s.grpc).await.unwrap();
    // Plain HTTP to the REST TLS port: no HTTP reply, the connection is closed.
    let mut plain = TcpStream::connect(s.rest).await.unwrap();
    plain
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    // Closed (end of stream, or reset after the TLS alert): either way within the limit.
    let _closed = tokio::time::timeout(LIMIT, plain.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Plaintext gRPC to the TLS port: the call fails.
    let plain_grpc = tokio::time::timeout(LIMIT, async {
        let channel = Channel::from_shared(format!("http://{}", s.grpc)).unwrap();
        let channel = channel.connect().await.map_err(|e| e.to_string())?;
        grpc_register(&mut MatchEngineApiClient::new(channel))
            .await
            .map_err(|e| e.to_string())
    });
    assert!(plain_grpc.await.unwrap().is_err());
    // Both TLS ports still serve.
    let (mut rest, _) = tokio::time::timeout(LIMIT, s.rest_conn()).await.unwrap();
    assert_eq!(register(&mut rest).await, 200);
    let mut grpc = tokio::time::timeout(LIMIT, s.grpc_client()).await.unwrap();
    grpc_register(&mut grpc).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_reaches_new_connections_and_old_ones_keep_working() {
    let s = start().await;
    let (mut old, first) = s.rest_conn().await;
    assert_eq!(first, s.cert.fingerprint());
    assert_eq!(register(&mut old).await, 200);
    let mut old_grpc = s.grpc_client().await;

    let next = s.ca.issue(&["localhost", "127.0.0.1"]).unwrap();
    write_pair(s.dir.path(), &next);
    assert!(s.cert.reload_if_changed().unwrap(), "the new pair is read");
    assert_eq!(s.cert.fingerprint(), next.fingerprint);

    let (mut new, second) = s.rest_conn().await;
    assert_eq!(
        second, next.fingerprint,
        "a new connection gets the new certificate"
    );
    assert_ne!(second, first);
    assert_eq!(register(&mut new).await, 200);
    assert_eq!(
        register(&mut old).await,
        200,
        "the old connection keeps working"
    );
    grpc_register(&mut old_grpc).await.unwrap();
    grpc_register(&mut s.grpc_client().await).await.unwrap();
}

fn dme_args(args: &[&str]) -> Result<DmeArgs, clap::Error> {
    let cmd = DmeArgs::augment_args(clap::Command::new("dme").no_binary_name(true));
    DmeArgs::from_arg_matches(&cmd.try_get_matches_from(args)?)
}

#[tokio::test]
async fn plaintext_off_loopback_is_refused_naming_the_flags() {
    let doc = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/region.yaml");
    let args = dme_args(&[
        "--standalone",
        doc,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "0.0.0.0:0",
    ])
    .unwrap();
    let e = tokio::time::timeout(LIMIT, dme::cli::run_dme(args))
        .await
        .expect("refused at start")
        .unwrap_err()
        .to_string();
    assert!(e.contains("plaintext") && e.contains("0.0.0.0"), "{e}");
    for flag in ["--tls-cert/--tls-key", "--dev-tls", "--insecure-plaintext"] {
        assert!(e.contains(flag), "{e}");
    }
    // Contradictory or half-given TLS flags are refused by the parser.
    let base = ["--standalone", doc];
    for extra in [
        &["--insecure-plaintext", "--dev-tls"][..],
        &["--tls-cert", "c.pem"],
        &["--tls-key", "k.pem"],
        &["--dev-tls", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
        &["--dev-tls-out", "x.pem"],
    ] {
        let all: Vec<&str> = base.iter().chain(extra).copied().collect();
        assert!(dme_args(&all).is_err(), "{all:?} should be refused");
    }
    assert!(dme_args(&[&base[..], &["--insecure-plaintext"]].concat()).is_ok());
}
