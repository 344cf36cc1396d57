//! Mutual TLS over real sockets (127.0.0.1, port 0): a small echo server requiring client
//! certificates of the region CA with role `mc`, and clients of every kind it must accept or
//! refuse, each refusal with its own words on the server side; and reloads of the server
//! certificate, the client certificate and the CA.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use edge_tls::{
    ClientCert, IssuedCert, LeafRequest, MtlsClient, MtlsError, MtlsServer, PeerIdentity,
    PeerPolicy, RegionCa, RegionTrust, Role, ServerCert, Side,
};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const REGION: &str = "eu-test";
const BOUND: Duration = Duration::from_secs(10);

/// Whatever the server made of each connection: the client's identity, or why it was refused.
type Outcomes = mpsc::UnboundedReceiver<Result<PeerIdentity, MtlsError>>;

struct Region {
    dir: tempfile::TempDir,
    ca: RegionCa,
    trust: Arc<RegionTrust>,
}

impl Region {
    fn new() -> Region {
        let dir = tempfile::tempdir().unwrap();
        let ca = RegionCa::generate(REGION).unwrap();
        ca.save(dir.path(), false).unwrap();
        let trust = RegionTrust::from_file(&dir.path().join("ca.pem")).unwrap();
        Region { dir, ca, trust }
    }

    fn issue(&self, role: Role, name: &str) -> IssuedCert {
        let issued = self.ca.issue(&LeafRequest::new(role, name)).unwrap();
        issued.save(self.dir.path()).unwrap();
        issued
    }

    fn paths(&self, role: Role, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        edge_tls::pki::leaf_paths(self.dir.path(), role, name)
    }

    /// A client holding the certificate files of `role`/`name` (issued first), trusting this
    /// region, expecting a controller.
    fn client(&self, role: Role, name: &str) -> (MtlsClient, Arc<ClientCert>) {
        self.issue(role, name);
        let (cert, key) = self.paths(role, name);
        let cert = ClientCert::from_files(&cert, &key).unwrap();
        let client = MtlsClient::new(
            cert.clone(),
            self.trust.clone(),
            PeerPolicy::roles(&[Role::Controller]),
            &[],
        )
        .unwrap();
        (client, cert)
    }
}

/// The echo server: greets an accepted client with "hello <its identity> <its leaf
/// fingerprint>", then echoes lines; reports every connection's outcome.
async fn echo_server(server: MtlsServer) -> (std::net::SocketAddr, Outcomes) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (server, tx) = (server.clone(), tx.clone());
            tokio::spawn(async move {
                let (tls, identity) = match server.accept(tcp).await {
                    Ok(ok) => ok,
                    Err(e) => return drop(tx.send(Err(e))),
                };
                let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
                let _ = tx.send(Ok(identity.clone()));
                let (read, mut write) = tokio::io::split(tls);
                let greeting = format!("hello {identity} {}\n", edge_tls::fingerprint(&leaf));
                if write.write_all(greeting.as_bytes()).await.is_err() {
                    return;
                }
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if write
                        .write_all(format!("{line}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

async fn next_outcome(outcomes: &mut Outcomes) -> Result<PeerIdentity, MtlsError> {
    tokio::time::timeout(BOUND, outcomes.recv())
        .await
        .expect("the server decides within the bound")
        .expect("the server runs")
}

/// What a client saw: the server's identity and leaf fingerprint, and the greeting.
struct Dialled {
    server: PeerIdentity,
    server_fingerprint: String,
    greeting: String,
}

/// Connects, sends "ping", reads the greeting and the echo.
async fn dial(client: &MtlsClient, addr: std::net::SocketAddr) -> Result<Dialled, MtlsError> {
    let region = client.trust().region();
    tokio::time::timeout(BOUND, async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let (tls, server) = client.connect(tcp, name).await?;
        let server_fingerprint =
            edge_tls::fingerprint(&tls.get_ref().1.peer_certificates().unwrap()[0]);
        let io = |e: std::io::Error| MtlsError::from_io(&e, Side::Client, &region);
        let mut tls = BufReader::new(tls);
        tls.get_mut().write_all(b"ping\n").await.map_err(io)?;
        let mut greeting = String::new();
        tls.read_line(&mut greeting).await.map_err(io)?;
        if greeting.is_empty() {
            return Err(MtlsError::Handshake("closed without a greeting".into()));
        }
        let mut echo = String::new();
        tls.read_line(&mut echo).await.map_err(io)?;
        assert_eq!(echo, "ping\n");
        Ok(Dialled {
            server,
            server_fingerprint,
            greeting: greeting.trim_end().to_owned(),
        })
    })
    .await
    .expect("the client is done within the bound")
}

/// The region with a controller's echo server admitting only `mc`.
async fn controller(region: &Region) -> (std::net::SocketAddr, Outcomes, Arc<ServerCert>) {
    region.issue(Role::Controller, "ctl-1");
    let (cert, key) = region.paths(Role::Controller, "ctl-1");
    let cert = ServerCert::from_files(&cert, &key).unwrap();
    let server = MtlsServer::new(
        cert.clone(),
        region.trust.clone(),
        PeerPolicy::roles(&[Role::Mc]),
        &[],
    )
    .unwrap();
    let (addr, outcomes) = echo_server(server).await;
    (addr, outcomes, cert)
}

fn shutdown() -> (
    tokio::sync::oneshot::Sender<()>,
    impl Future<Output = ()> + Send,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

#[tokio::test]
async fn an_allowed_role_is_identified_both_ways() {
    let region = Region::new();
    let (addr, mut outcomes, _) = controller(&region).await;
    let (client, cert) = region.client(Role::Mc, "mc-1");
    let dialled = dial(&client, addr).await.unwrap();
    let want = PeerIdentity::new(REGION, Role::Mc, "mc-1").unwrap();
    assert_eq!(next_outcome(&mut outcomes).await.unwrap(), want);
    assert_eq!(
        dialled.greeting,
        format!("hello edgeplane://eu-test/mc/mc-1 {}", cert.fingerprint())
    );
    assert_eq!(
        dialled.server,
        PeerIdentity::new(REGION, Role::Controller, "ctl-1").unwrap()
    );
}

#[tokio::test]
async fn a_disallowed_role_is_refused_with_the_reason() {
    let region = Region::new();
    let (addr, mut outcomes, _) = controller(&region).await;
    let (client, _) = region.client(Role::Dme, "dme-1");
    let client_error = dial(&client, addr).await.err().expect("refused");
    let e = next_outcome(&mut outcomes).await.unwrap_err();
    assert!(
        matches!(&e, MtlsError::RoleNotAllowed { side: Side::Client, identity, .. } if identity.role == Role::Dme),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("client certificate role dme is not allowed here (allowed: mc"),
        "{e}"
    );
    // The client learns only that it was refused.
    assert!(
        matches!(client_error, MtlsError::Refused(_)),
        "{client_error:?}"
    );
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let region = Region::new();
    let (addr, mut outcomes, _) = controller(&region).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(region.ca.cert_der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(edge_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    // TLS 1.3: the client's side of the handshake completes; the refusal comes after.
    if let Ok(mut tls) = connector.connect(name, tcp).await {
        let mut line = String::new();
        let mut reader = BufReader::new(&mut tls);
        let read = tokio::time::timeout(BOUND, reader.read_line(&mut line)).await;
        assert!(matches!(read, Ok(Err(_)) | Ok(Ok(0))), "{line}");
    }
    let e = next_outcome(&mut outcomes).await.unwrap_err();
    assert_eq!(e, MtlsError::NoCertificate(Side::Client));
    assert_eq!(e.to_string(), "no client certificate");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let region = Region::new();
    let (addr, mut outcomes, _) = controller(&region).await;
    // Same region name, same role, another CA.
    let other = RegionCa::generate(REGION).unwrap();
    let (certs, key) = other
        .issue(&LeafRequest::new(Role::Mc, "mc-1"))
        .unwrap()
        .pair()
        .unwrap();
    let client = MtlsClient::new(
        ClientCert::from_pair(certs, key).unwrap(),
        region.trust.clone(),
        PeerPolicy::any_role(),
        &[],
    )
    .unwrap();
    let client_error = dial(&client, addr).await.err().expect("refused");
    let e = next_outcome(&mut outcomes).await.unwrap_err();
    assert!(
        matches!(
            e,
            MtlsError::OtherCa {
                side: Side::Client,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("certificate from another CA"), "{e}");
    assert!(
        matches!(client_error, MtlsError::Refused(_)),
        "{client_error:?}"
    );

    // And a client trusting another CA does not accept our server.
    let (certs, key) = region.issue(Role::Mc, "mc-2").pair().unwrap();
    let client = MtlsClient::new(
        ClientCert::from_pair(certs, key).unwrap(),
        RegionTrust::from_der(other.cert_der().clone()).unwrap(),
        PeerPolicy::any_role(),
        &[],
    )
    .unwrap();
    let e = dial(&client, addr).await.err().expect("refused");
    assert!(
        matches!(
            e,
            MtlsError::OtherCa {
                side: Side::Server,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_client_refuses_a_server_of_another_role() {
    let region = Region::new();
    region.issue(Role::Dme, "dme-1");
    let (cert, key) = region.paths(Role::Dme, "dme-1");
    let server = MtlsServer::new(
        ServerCert::from_files(&cert, &key).unwrap(),
        region.trust.clone(),
        PeerPolicy::any_role(),
        &[],
    )
    .unwrap();
    let (addr, _outcomes) = echo_server(server).await;
    let (client, _) = region.client(Role::Mc, "mc-1");
    let e = dial(&client, addr).await.err().expect("refused");
    assert!(
        e.to_string()
            .starts_with("server certificate role dme is not allowed here (allowed: controller"),
        "{e}"
    );
}

#[tokio::test]
async fn a_plaintext_client_is_told_apart() {
    let region = Region::new();
    let (addr, mut outcomes, _) = controller(&region).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let e = next_outcome(&mut outcomes).await.unwrap_err();
    assert_eq!(e, MtlsError::NotTls, "{e}");
    assert!(e.to_string().contains("not TLS"), "{e}");
}

#[tokio::test]
async fn server_and_client_certificates_rotate_without_restart() {
    let region = Region::new();
    let (addr, mut outcomes, server_cert) = controller(&region).await;
    let (client, client_cert) = region.client(Role::Mc, "mc-1");
    let (stop, stopped) = shutdown();
    let (stop2, stopped2) = shutdown();
    let watchers = [
        server_cert.watch(Duration::from_millis(20), stopped),
        client_cert.watch(Duration::from_millis(20), stopped2),
    ];

    let before = dial(&client, addr).await.unwrap();
    next_outcome(&mut outcomes).await.unwrap();
    assert_eq!(before.server_fingerprint, server_cert.fingerprint());

    // Both re-issued in place (new keys), as `edgeplane pki issue` does.
    let new_server = region.issue(Role::Controller, "ctl-1");
    let new_client = region.issue(Role::Mc, "mc-1");
    tokio::time::timeout(BOUND, async {
        while server_cert.fingerprint() != new_server.fingerprint
            || client_cert.fingerprint() != new_client.fingerprint
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both watchers reload");

    let after = dial(&client, addr).await.unwrap();
    next_outcome(&mut outcomes).await.unwrap();
    assert_eq!(after.server_fingerprint, new_server.fingerprint);
    assert_ne!(after.server_fingerprint, before.server_fingerprint);
    assert!(
        after.greeting.ends_with(&new_client.fingerprint),
        "the server saw the new client certificate: {}",
        after.greeting
    );

    stop.send(()).unwrap();
    stop2.send(()).unwrap();
    for w in watchers {
        tokio::time::timeout(BOUND, w).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn the_ca_file_is_reloaded() {
    let region = Region::new();
    let (addr, mut outcomes, _) = controller(&region).await;
    // A second CA of the region (a CA rotation in progress) and a client it certified.
    let next = RegionCa::generate(REGION).unwrap();
    let (certs, key) = next
        .issue(&LeafRequest::new(Role::Mc, "mc-9"))
        .unwrap()
        .pair()
        .unwrap();
    let client = MtlsClient::new(
        ClientCert::from_pair(certs, key).unwrap(),
        region.trust.clone(),
        PeerPolicy::any_role(),
        &[],
    )
    .unwrap();
    assert!(dial(&client, addr).await.is_err());
    assert!(matches!(
        next_outcome(&mut outcomes).await,
        Err(MtlsError::OtherCa { .. })
    ));

    // Both CAs in ca.pem: the new one is trusted from the next handshake.
    let ca_pem = region.dir.path().join("ca.pem");
    write_atomically(
        &ca_pem,
        &format!("{}{}", region.ca.cert_pem(), next.cert_pem()),
    );
    assert!(region.trust.reload_if_changed().unwrap());
    dial(&client, addr).await.unwrap();
    assert_eq!(
        next_outcome(&mut outcomes).await.unwrap().name,
        "mc-9".to_owned()
    );

    // A CA of another region in the file is refused; the previous CAs stay.
    let stranger = RegionCa::generate("us-test").unwrap();
    write_atomically(
        &ca_pem,
        &format!("{}{}", region.ca.cert_pem(), stranger.cert_pem()),
    );
    let e = region.trust.reload_if_changed().unwrap_err().to_string();
    assert!(e.contains("CAs of two regions: eu-test and us-test"), "{e}");
    dial(&client, addr).await.unwrap();
    next_outcome(&mut outcomes).await.unwrap();
}

fn write_atomically(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
