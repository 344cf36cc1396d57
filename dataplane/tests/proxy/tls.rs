use std::sync::Arc;

use dataplane::CopyMode;
use dataplane::decide::proxy_v2::{self, Header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};

use crate::util::*;

struct Cert {
    _dir: tempfile::TempDir,
    cert_path: std::path::PathBuf,
    key_path: std::path::PathBuf,
    der: rustls::pki_types::CertificateDer<'static>,
}

fn gen_cert(name: &str) -> Cert {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("c.pem");
    let key_path = dir.path().join("k.pem");
    std::fs::write(&cert_path, ck.cert.pem()).unwrap();
    std::fs::write(&key_path, ck.signing_key.serialize_pem()).unwrap();
    Cert {
        _dir: dir,
        cert_path,
        key_path,
        der: ck.cert.der().clone(),
    }
}

fn connector(c: &Cert) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(c.der.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(cfg))
}

#[tokio::test]
async fn tls_termination_with_generated_cert_and_rotation() {
    let (b, _, _t) = echo_backend().await;
    let c1 = gen_cert("localhost");
    let mut p = Proxy::new(CopyMode::Splice);
    let port = p.tcp_port();
    let yaml = |c: &Cert| {
        format!(
            "listeners: [{{proto: tcp, port: {port}, bind: 127.0.0.1, backends: [\"{b}\"], tls: {{cert: {}, key: {}}}}}]",
            c.cert_path.display(),
            c.key_path.display()
        )
    };
    let r = p.apply_yaml(&yaml(&c1)).await;
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    let name = ServerName::try_from("localhost").unwrap();
    let tcp = connect(port).await;
    let mut s = within(connector(&c1).connect(name.clone(), tcp))
        .await
        .unwrap();
    s.write_all(b"secret").await.unwrap();
    let mut got = [0u8; 6];
    within(s.read_exact(&mut got)).await.unwrap();
    assert_eq!(&got, b"secret");

    // Rotate: a new cert at new paths; new handshakes present it, the old session keeps going.
    let c2 = gen_cert("localhost");
    assert!(p.apply_yaml(&yaml(&c2)).await.failed.is_empty());
    let tcp = connect(port).await;
    assert!(
        within(connector(&c1).connect(name.clone(), tcp))
            .await
            .is_err(),
        "old cert still served"
    );
    let tcp = connect(port).await;
    let mut s2 = within(connector(&c2).connect(name.clone(), tcp))
        .await
        .unwrap();
    s2.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    within(s2.read_exact(&mut one)).await.unwrap();
    s.write_all(b"still").await.unwrap();
    let mut got = [0u8; 5];
    within(s.read_exact(&mut got)).await.unwrap();
    assert_eq!(&got, b"still");

    // A broken key file: the listener keeps its previous certificate and reports the error.
    std::fs::write(&c2.key_path, "not a key").unwrap();
    let r = p.apply_yaml(&yaml(&c2)).await;
    assert_eq!(r.failed.len(), 1);
    assert!(
        r.failed[0].1.to_string().contains("private key"),
        "{}",
        r.failed[0].1
    );
    let tcp = connect(port).await;
    assert!(within(connector(&c2).connect(name, tcp)).await.is_ok());
}

#[tokio::test]
async fn proxy_protocol_v2_header_reaches_the_backend() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = l.local_addr().unwrap();
    let backend = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        loop {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before header + payload");
            buf.extend_from_slice(&chunk[..n]);
            if let Ok((h, used)) = proxy_v2::decode(&buf)
                && buf.len() >= used + 4
            {
                return (h, buf[used..].to_vec());
            }
        }
    });
    let mut p = Proxy::new(CopyMode::Splice);
    let port = p.tcp_port();
    p.apply_yaml(&format!(
        "listeners: [{{proto: tcp, port: {port}, bind: 127.0.0.1, backends: [\"{b}\"], proxy_protocol: v2}}]"
    )).await;
    let mut c = connect(port).await;
    let me = c.local_addr().unwrap();
    c.write_all(b"ping").await.unwrap();
    let (h, rest) = within(backend).await.unwrap();
    let want_dst: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    assert_eq!(
        h,
        Header::Proxy {
            transport: proxy_v2::Transport::Stream,
            src: me,
            dst: want_dst
        }
    );
    assert_eq!(rest, b"ping");
}
