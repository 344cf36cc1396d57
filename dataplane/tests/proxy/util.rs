//! Backends, clients and table helpers for the socket tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use dataplane::{ApplyReport, CopyMode, RouteTable, Server, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Every network wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(5);

pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("timed out")
}

/// A TCP echo server; returns its address and a count of accepted connections.
pub async fn echo_backend() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            count.fetch_add(1, Relaxed);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (addr, n, task)
}

/// A UDP echo server.
pub async fn udp_echo_backend() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, from)) = s.recv_from(&mut buf).await else {
                return;
            };
            let _ = s.send_to(&buf[..n], from).await;
        }
    });
    (addr, task)
}

/// An address nothing listens on (bound, read back, released).
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A proxy server plus pre-bound public sockets (port 0, read back).
pub struct Proxy {
    pub server: Server,
}

impl Proxy {
    pub fn new(mode: CopyMode) -> Self {
        Self {
            server: Server::new(ServerOptions {
                copy_mode: mode,
                ..Default::default()
            }),
        }
    }

    /// Bind a TCP public port on 127.0.0.1 and hand it to the server; returns the port.
    pub fn tcp_port(&mut self) -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        self.server.adopt_tcp(l).unwrap();
        p
    }

    pub fn udp_port(&mut self) -> u16 {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port();
        self.server.adopt_udp(s).unwrap();
        p
    }

    pub async fn apply_yaml(&mut self, yaml: &str) -> ApplyReport {
        let t = RouteTable::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        self.server.apply(Arc::new(t)).await
    }
}

/// Send `msg` and read the same number of bytes back.
pub async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).await.unwrap();
    let mut got = vec![0u8; msg.len()];
    within(s.read_exact(&mut got)).await.unwrap();
    got
}

pub async fn connect(port: u16) -> TcpStream {
    within(TcpStream::connect(("127.0.0.1", port)))
        .await
        .unwrap()
}

/// True if the proxy closes the connection without data (no backend / removed route).
pub async fn closed_without_data(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return true;
    };
    let _ = s.write_all(b"x").await;
    let mut b = [0u8; 1];
    matches!(within(s.read(&mut b)).await, Ok(0) | Err(_))
}

pub fn metric(text: &str, name: &str, label_sub: &str) -> Option<f64> {
    text.lines()
        .filter(|l| {
            l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(label_sub)
        })
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}
