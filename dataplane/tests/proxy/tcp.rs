use std::sync::atomic::Ordering::Relaxed;

use dataplane::CopyMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::*;

async fn forwards_both_ways_and_half_closes(mode: CopyMode) {
    let (b, _, _t) = echo_backend().await;
    let mut p = Proxy::new(mode);
    let port = p.tcp_port();
    let r = p
        .apply_yaml(&format!(
            "listeners: [{{proto: tcp, port: {port}, bind: 127.0.0.1, backends: [\"{b}\"]}}]"
        ))
        .await;
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    let mut s = connect(port).await;
    assert_eq!(roundtrip(&mut s, b"hello").await, b"hello");
    // 1 MiB through, then half-close: the echo must finish and close its side.
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = s.into_split();
    let sent = big.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap();
        w
    });
    let mut got = Vec::new();
    within(r.read_to_end(&mut got)).await.unwrap();
    let _w = writer.await.unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got == big, "payload corrupted");
    let m = dataplane::metrics::render(&p.server.shared().snapshot());
    assert_eq!(
        metric(&m, "rootlb_listener_accepted_total", "tcp:"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "rootlb_backend_connections_total", &b.to_string()),
        Some(1.0)
    );
}

#[tokio::test]
async fn tcp_forwarding_splice() {
    forwards_both_ways_and_half_closes(CopyMode::Splice).await;
}

#[tokio::test]
async fn tcp_forwarding_auto() {
    forwards_both_ways_and_half_closes(CopyMode::Auto).await;
}

#[tokio::test]
async fn tcp_forwarding_copy() {
    forwards_both_ways_and_half_closes(CopyMode::Copy).await;
}

#[tokio::test]
async fn connect_failure_retries_another_backend_and_ejects() {
    let (live, live_count, _t) = echo_backend().await;
    let dead = dead_addr();
    let mut p = Proxy::new(CopyMode::Splice);
    let port = p.tcp_port();
    p.apply_yaml(&format!(
        "listeners: [{{proto: tcp, port: {port}, bind: 127.0.0.1, backends: [\"{dead}\", \"{live}\"], eject_for: 1m}}]"
    )).await;
    for i in 0..6u8 {
        let mut s = connect(port).await;
        assert_eq!(roundtrip(&mut s, &[i]).await, [i], "connection {i} failed");
    }
    assert_eq!(live_count.load(Relaxed), 6);
    let m = dataplane::metrics::render(&p.server.shared().snapshot());
    // The dead backend was tried once, then ejected for a minute: exactly one connect error.
    assert_eq!(
        metric(&m, "rootlb_backend_connect_errors_total", &dead.to_string()),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "rootlb_backend_healthy", &dead.to_string()),
        Some(0.0)
    );
}

#[tokio::test]
async fn all_backends_down_closes_the_client_and_counts_it() {
    let mut p = Proxy::new(CopyMode::Splice);
    let port = p.tcp_port();
    let (d1, d2) = (dead_addr(), dead_addr());
    p.apply_yaml(&format!(
        "listeners: [{{proto: tcp, port: {port}, bind: 127.0.0.1, backends: [\"{d1}\", \"{d2}\"]}}]"
    ))
    .await;
    assert!(closed_without_data(port).await);
    // Both are ejected now; fail-open still tries them rather than refusing outright.
    assert!(closed_without_data(port).await);
    let m = dataplane::metrics::render(&p.server.shared().snapshot());
    assert_eq!(
        metric(&m, "rootlb_listener_no_backend_total", "tcp:"),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "rootlb_backend_connect_errors_total", &d1.to_string()),
        Some(2.0),
        "{m}"
    );
}

#[tokio::test]
async fn per_backend_connection_cap() {
    let (b, _, _t) = echo_backend().await;
    let mut p = Proxy::new(CopyMode::Splice);
    let port = p.tcp_port();
    p.apply_yaml(&format!(
        "listeners: [{{proto: tcp, port: {port}, bind: 127.0.0.1, backends: [\"{b}\"], max_conns_per_backend: 2}}]"
    )).await;
    let mut a = connect(port).await;
    let mut c = connect(port).await;
    assert_eq!(roundtrip(&mut a, b"a").await, b"a");
    assert_eq!(roundtrip(&mut c, b"c").await, b"c");
    assert!(
        closed_without_data(port).await,
        "third connection must be refused by the cap"
    );
    drop(a);
    // The slot frees once the proxy sees the close; retry a bounded number of times.
    let mut ok = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let mut s = connect(port).await;
        s.write_all(b"z").await.unwrap();
        let mut one = [0u8; 1];
        if matches!(within(s.read(&mut one)).await, Ok(1)) {
            ok = true;
            break;
        }
    }
    assert!(ok, "slot never freed");
    let m = dataplane::metrics::render(&p.server.shared().snapshot());
    assert!(metric(&m, "rootlb_backend_cap_rejects_total", &b.to_string()).unwrap() >= 1.0);
}

#[tokio::test]
async fn metrics_endpoint_serves_prometheus_text() {
    let (b, _, _t) = echo_backend().await;
    let mut p = Proxy::new(CopyMode::Splice);
    let port = p.tcp_port();
    p.apply_yaml(&format!("listeners: [{{proto: tcp, port: {port}, bind: 127.0.0.1, name: app1, backends: [\"{b}\"]}}]")).await;
    let mut s = connect(port).await;
    roundtrip(&mut s, b"12345").await;
    drop(s);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let maddr = l.local_addr().unwrap();
    tokio::spawn(dataplane::metrics::serve(
        l,
        p.server.shared(),
        std::future::pending(),
    ));
    let mut text = String::new();
    for _ in 0..100 {
        let mut m = tokio::net::TcpStream::connect(maddr).await.unwrap();
        m.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        text.clear();
        within(m.read_to_string(&mut text)).await.unwrap();
        // Bytes are counted when the relay ends; wait for the proxy to see the close.
        if metric(&text, "rootlb_backend_bytes_out_total", "app1").unwrap_or(0.0) >= 5.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("# TYPE rootlb_backend_connect_seconds histogram"));
    assert_eq!(
        metric(&text, "rootlb_backend_bytes_in_total", "app=\"app1\""),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "rootlb_backend_bytes_out_total", "app=\"app1\""),
        Some(5.0)
    );
    assert_eq!(
        metric(&text, "rootlb_backend_connect_seconds_count", "app1"),
        Some(1.0)
    );
}
