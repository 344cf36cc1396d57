//! QUIC through a `quic` route: two quinn echo servers, each issuing connection ids with its
//! own server id, behind the proxy; a client changes its address mid-connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dataplane::CopyMode;
use quic_lb::{CidConfig, QuicLbCidGenerator, ServerId};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::util::*;

const SERVER_IDS: [&str; 2] = ["0a01", "0a02"];

fn cid_config() -> CidConfig {
    CidConfig::new(1, 2, 8).unwrap()
}

/// Short enough that a lost connection is noticed well within [`WAIT`].
fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(Some(Duration::from_secs(1).try_into().unwrap()));
    Arc::new(t)
}

/// A quinn server issuing CIDs with `server_id`; each stream is answered with
/// `"<server id>:<what was sent>"`.
fn echo_server(
    server_id: &str,
    cert: &CertificateDer<'static>,
    key: &PrivateKeyDer<'static>,
) -> (SocketAddr, quinn::Endpoint) {
    let generator = QuicLbCidGenerator::new(cid_config(), server_id.parse().unwrap()).unwrap();
    let mut ep_cfg = quinn::EndpointConfig::default();
    ep_cfg.cid_generator(move || Box::new(generator.clone()));
    let mut srv =
        quinn::ServerConfig::with_single_cert(vec![cert.clone()], key.clone_key()).unwrap();
    srv.transport_config(transport());
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ep = quinn::Endpoint::new(ep_cfg, Some(srv), sock, Arc::new(quinn::TokioRuntime)).unwrap();
    let addr = ep.local_addr().unwrap();
    let id = server_id.to_string();
    let server = ep.clone();
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let id = id.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                while let Ok((mut tx, mut rx)) = conn.accept_bi().await {
                    let Ok(msg) = rx.read_to_end(1024).await else {
                        return;
                    };
                    let reply = [id.as_bytes(), b":", &msg].concat();
                    let _ = tx.write_all(&reply).await;
                    let _ = tx.finish();
                }
            });
        }
    });
    (addr, ep)
}

struct Setup {
    proxy: Proxy,
    port: u16,
    backends: [SocketAddr; 2],
    cert: CertificateDer<'static>,
    _servers: Vec<quinn::Endpoint>,
}

/// Two echo servers behind a UDP route on a fresh port, in `quic` mode or plain.
async fn setup(quic: bool) -> Setup {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let (a, ea) = echo_server(SERVER_IDS[0], &cert, &key);
    let (b, eb) = echo_server(SERVER_IDS[1], &cert, &key);
    let mut proxy = Proxy::new(CopyMode::Auto);
    let port = proxy.udp_port();
    let mode = if quic {
        format!(
            r#", quic: {{config_id: 1, server_id_len: 2, nonce_len: 8,
                 server_ids: {{"{a}": "{}", "{b}": "{}"}}}}"#,
            SERVER_IDS[0], SERVER_IDS[1]
        )
    } else {
        String::new()
    };
    // No health checks: the round-robin pick alone decides a new flow's backend (the first
    // flow gets the first backend, the next flow the second).
    let r = proxy
        .apply_yaml(&format!(
            r#"listeners: [{{proto: udp, port: {port}, bind: 127.0.0.1,
                backends: ["{a}", "{b}"]{mode}}}]"#
        ))
        .await;
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    Setup {
        proxy,
        port,
        backends: [a, b],
        cert,
        _servers: vec![ea, eb],
    }
}

fn client(cert: &CertificateDer<'static>) -> quinn::Endpoint {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut cfg = quinn::ClientConfig::with_root_certificates(Arc::new(roots)).unwrap();
    cfg.transport_config(transport());
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(cfg);
    ep
}

/// One request on a new stream; the echo, or the error (bounded by the idle timeout).
async fn exchange(conn: &quinn::Connection, msg: &str) -> Result<String, String> {
    let (mut tx, mut rx) = conn.open_bi().await.map_err(|e| e.to_string())?;
    tx.write_all(msg.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    tx.finish().map_err(|e| e.to_string())?;
    let got = rx.read_to_end(1024).await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&got).into_owned())
}

async fn connect(ep: &quinn::Endpoint, port: u16) -> quinn::Connection {
    let lb: SocketAddr = ([127, 0, 0, 1], port).into();
    within(ep.connect(lb, "localhost").unwrap()).await.unwrap()
}

/// Datagrams the proxy forwarded to backend `i`.
fn packets_to(s: &Setup, i: usize) -> f64 {
    let m = dataplane::metrics::render(&s.proxy.server.shared().snapshot());
    let label = format!("backend=\"{}\"", s.backends[i]);
    metric(&m, "rootlb_backend_packets_in_total", &label).unwrap_or_else(|| panic!("{m}"))
}

/// Move the client endpoint to a new local port (as a phone going from Wi-Fi to cellular).
fn migrate(ep: &quinn::Endpoint) {
    let before = ep.local_addr().unwrap();
    ep.rebind(std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .unwrap();
    assert_ne!(ep.local_addr().unwrap(), before);
}

#[tokio::test]
async fn quic_mode_keeps_a_migrated_connection_on_its_server() {
    let s = setup(true).await;
    let ep = client(&s.cert);
    let conn = connect(&ep, s.port).await;
    let first = within(exchange(&conn, "hello")).await.unwrap();
    assert_eq!(first, format!("{}:hello", SERVER_IDS[0]));
    migrate(&ep);
    let second = within(exchange(&conn, "again")).await;
    assert_eq!(
        second,
        Ok(format!("{}:again", SERVER_IDS[0])),
        "same connection, same server, after the client's address changed"
    );
    let m = dataplane::metrics::render(&s.proxy.server.shared().snapshot());
    assert_eq!(
        metric(&m, "rootlb_udp_flows_total", "udp:"),
        Some(2.0),
        "{m}"
    );
    assert_eq!(packets_to(&s, 1), 0.0, "the other server saw nothing");
}

#[tokio::test]
async fn plain_udp_mode_loses_a_migrated_connection() {
    let s = setup(false).await;
    let ep = client(&s.cert);
    let conn = connect(&ep, s.port).await;
    let first = within(exchange(&conn, "hello")).await.unwrap();
    assert_eq!(first, format!("{}:hello", SERVER_IDS[0]));
    migrate(&ep);
    // The new address is a new flow, picked round robin: the other server, which does not know
    // the connection. The exchange fails once the idle timeout (1 s) passes.
    let second = within(exchange(&conn, "again")).await;
    assert!(second.is_err(), "{second:?}");
    assert!(
        packets_to(&s, 1) > 0.0,
        "the migrated client's packets went to the other server"
    );
}

#[tokio::test]
async fn garbage_does_not_wedge_a_quic_route() {
    let s = setup(true).await;
    let junk = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cfg = cid_config();
    let known =
        quic_lb::encode(&cfg, &SERVER_IDS[1].parse::<ServerId>().unwrap(), &[0; 8]).unwrap();
    let unknown = quic_lb::encode(&cfg, &"ffff".parse::<ServerId>().unwrap(), &[0; 8]).unwrap();
    let datagrams: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x40],
        vec![0xc0, 0, 0, 0, 1, 255],
        vec![0xc0, 0, 0, 0, 0, 11],
        [&[0x40][..], &known, &[0x55; 40]].concat(),
        [&[0x40][..], &unknown, &[0x55; 40]].concat(),
        [&[0xc0, 0, 0, 0, 1, 11][..], &known].concat(),
        (0..1200u32).map(|i| (i * 7919 % 251) as u8).collect(),
    ];
    for d in &datagrams {
        junk.send_to(d, ("127.0.0.1", s.port)).await.unwrap();
    }
    // The route still serves a real connection, and a migration on it.
    let ep = client(&s.cert);
    let conn = connect(&ep, s.port).await;
    let first = within(exchange(&conn, "after junk")).await.unwrap();
    let (sid, rest) = first.split_once(':').unwrap();
    assert_eq!(rest, "after junk");
    migrate(&ep);
    let second = within(exchange(&conn, "moved")).await.unwrap();
    assert_eq!(second, format!("{sid}:moved"));
}
