//! Binary upgrade: a new root LB takes over the running one's listeners through
//! `--upgrade-socket` while clients keep connecting, twice in a row.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use clap::Parser as _;
use dataplane::RootLbArgs;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::util::*;

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: RootLbArgs,
}

/// One short connection: connect, echo, close. Errors count as refused or broken.
async fn one_exchange(port: u16) -> std::io::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"x").await?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await?;
    Ok(())
}

/// Whether `GET /metrics` on `addr` answers 200.
async fn metrics_answer(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return false;
    };
    if s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await.is_err() {
        return false;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    out.starts_with(b"HTTP/1.1 200") || out.starts_with(b"HTTP/1.0 200")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_hands_over_listeners_without_refusing_a_connection() {
    let (backend, _, _b) = echo_backend().await;
    let (udp_backend, _u) = udp_echo_backend().await;
    let uport = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let port = dead_addr().port();
    let routes = dir.path().join("routes.yaml");
    std::fs::write(
        &routes,
        format!(
            "drain_grace: 3s\nlisteners:\n  - {{proto: tcp, port: {port}, bind: 127.0.0.1, backends: [\"{backend}\"]}}\n  - {{proto: udp, port: {uport}, bind: 127.0.0.1, backends: [\"{udp_backend}\"]}}\n"
        ),
    )
    .unwrap();
    let sock = dir.path().join("upgrade.sock");
    // Every generation serves metrics on the same address (the successor takes it over when
    // its predecessor ends).
    let metrics = dead_addr().to_string();
    let start = || {
        let args = Cli::parse_from([
            "rootlb".as_ref(),
            "--routes".as_ref(),
            routes.as_os_str(),
            "--upgrade-socket".as_ref(),
            sock.as_os_str(),
            "--metrics-addr".as_ref(),
            metrics.as_ref(),
        ])
        .args;
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(dataplane::run_rootlb_until(args, async move {
            let _ = rx.await;
        }));
        (stop, task)
    };

    let (first_stop, mut running) = start();
    let mut stops = vec![first_stop];
    within(async {
        while one_exchange(port).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // Clients connect and echo without pause for the whole test (bounded by `stop` and 2000).
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        tokio::spawn(async move {
            for _ in 0..2000 {
                if stop.load(Relaxed) {
                    break;
                }
                match tokio::time::timeout(WAIT, one_exchange(port)).await {
                    Ok(Ok(())) => ok.fetch_add(1, Relaxed),
                    _ => failed.fetch_add(1, Relaxed),
                };
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    for round in 0..2 {
        let mut held = connect(port).await;
        assert_eq!(roundtrip(&mut held, b"before").await, b"before");
        let (next_stop, next) = start();
        stops.push(next_stop);
        // The old process lets go once the new one serves, and drains: the held connection
        // is still carried meanwhile.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(roundtrip(&mut held, b"draining").await, b"draining");
        drop(held);
        within(&mut running)
            .await
            .expect("old process task")
            .unwrap_or_else(|e| panic!("round {round}: old process failed: {e:#}"));
        running = next;
        // The successor now answers on the metrics address.
        within(async {
            while !metrics_answer(&metrics).await {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        // UDP was handed over too: the new process answers on the same port.
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(b"dgram", ("127.0.0.1", uport)).await.unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = within(c.recv_from(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"dgram", "round {round}");
        let before = ok.load(Relaxed);
        within(async {
            while ok.load(Relaxed) < before + 20 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
    stop.store(true, Relaxed);
    within(load).await.unwrap();
    let (ok, failed) = (ok.load(Relaxed), failed.load(Relaxed));
    assert_eq!(
        failed, 0,
        "refused or broken exchanges during two upgrades ({ok} ok)"
    );
    assert!(ok >= 40, "{ok} exchanges");
    for s in stops {
        let _ = s.send(());
    }
    within(running).await.unwrap().unwrap();
}
