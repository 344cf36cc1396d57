//! HTTP/3 test harness: a DME's engine served over QUIC with a fresh self-signed certificate,
//! and a UDP relay that delays a client's datagrams (to make 0-RTT observable on loopback).

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dme::h3_client::{H3Client, client_config, client_endpoint};
use edge_tls::ServerCert;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::Server;

pub struct H3 {
    pub cert_pem: String,
    pub addr: SocketAddr,
    pub roots: Vec<CertificateDer<'static>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Serves HTTP/3 for `s`'s engine on 127.0.0.1:0 with a fresh self-signed certificate.
pub fn start_h3(s: &Server) -> H3 {
    let (cert, dev) = ServerCert::dev_self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let roots = CertificateDer::pem_slice_iter(dev.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let endpoint = dme::h3::endpoint(socket, cert, None).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(dme::h3::run(endpoint, s.dme.clone(), async move {
        let _ = rx.await;
    }));
    H3 {
        cert_pem: dev.cert_pem.clone(),
        addr,
        roots,
        _stop: tx,
    }
}

impl H3 {
    pub fn endpoint(&self) -> quinn::Endpoint {
        let config = client_config(&self.roots).unwrap();
        client_endpoint("127.0.0.1:0".parse().unwrap(), config).unwrap()
    }

    pub async fn connect(&self, ep: &quinn::Endpoint) -> H3Client {
        H3Client::connect(ep, self.addr, "localhost", false)
            .await
            .unwrap()
            .0
    }
}

/// The app's FindCloudlet count (the fixture app), as the API counters have it.
pub fn finds(s: &Server) -> u64 {
    let tables = s.dme.tables();
    let k = dme::fixture::app_key();
    let key = dme::tables::AppKeyRef {
        organization: &k.organization,
        name: &k.name,
        version: &k.version,
    };
    let app = tables.app(&key).expect("the fixture app");
    app.stats
        .totals(dme::api_stats::Method::FindCloudlet)
        .requests()
}

/// A UDP relay between one client and the server that delays the client's datagrams by
/// `delay` (so a 0-RTT request reaches the server well before the client's Finished can: on
/// loopback the handshake would otherwise race the request), keeping their order (one queue:
/// a client's close must not overtake its Finished), and records them.
pub struct Relay {
    pub addr: SocketAddr,
    pub sent: Arc<Mutex<Vec<Vec<u8>>>>,
}

pub async fn relay(server: SocketAddr, delay: Duration) -> Relay {
    let front = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let back = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = front.local_addr().unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let client = Arc::new(Mutex::new(None::<SocketAddr>));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let (f, rec, cl) = (front.clone(), sent.clone(), client.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = f.recv_from(&mut buf).await {
            *cl.lock().unwrap() = Some(from);
            rec.lock().unwrap().push(buf[..n].to_vec());
            let _ = tx.send((tokio::time::Instant::now() + delay, buf[..n].to_vec()));
        }
    });
    let b = back.clone();
    tokio::spawn(async move {
        while let Some((at, d)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            let _ = b.send_to(&d, server).await;
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, _)) = back.recv_from(&mut buf).await {
            let to = *client.lock().unwrap();
            if let Some(to) = to {
                let _ = front.send_to(&buf[..n], to).await;
            }
        }
    });
    Relay { addr, sent }
}
