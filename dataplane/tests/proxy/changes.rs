use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use dataplane::{CopyMode, ListenerError, Proto, Server, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::*;

#[tokio::test]
async fn route_add_remove_and_drain_while_traffic_flows() {
    let (b, _, _t) = echo_backend().await;
    let mut p = Proxy::new(CopyMode::Splice);
    let (pa, pb, pc) = (p.tcp_port(), p.tcp_port(), p.tcp_port());
    let table = |with_a: bool, with_b: bool| {
        let mut y = format!(
            "drain_grace: 300ms\nlisteners:\n  - {{proto: tcp, port: {pc}, bind: 127.0.0.1, backends: [\"{b}\"]}}\n"
        );
        if with_a {
            y += &format!("  - {{proto: tcp, port: {pa}, bind: 127.0.0.1, backends: [\"{b}\"]}}\n");
        }
        if with_b {
            y += &format!("  - {{proto: tcp, port: {pb}, bind: 127.0.0.1, backends: [\"{b}\"]}}\n");
        }
        y
    };
    assert!(p.apply_yaml(&table(true, true)).await.failed.is_empty());
    let mut long_a = connect(pa).await;
    assert_eq!(roundtrip(&mut long_a, b"a1").await, b"a1");

    // Steady traffic on the unchanged route C while the table changes 10 times.
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let traffic = {
        let (failures, done) = (failures.clone(), done.clone());
        tokio::spawn(async move {
            let mut keep = connect(pc).await;
            for i in 0..300u32 {
                let msg = i.to_be_bytes();
                let ok_keep = keep.write_all(&msg).await.is_ok() && {
                    let mut g = [0u8; 4];
                    matches!(
                        tokio::time::timeout(WAIT, keep.read_exact(&mut g)).await,
                        Ok(Ok(_))
                    ) && g == msg
                };
                let ok_new = match tokio::net::TcpStream::connect(("127.0.0.1", pc)).await {
                    Ok(mut s) => {
                        s.write_all(&msg).await.is_ok() && {
                            let mut g = [0u8; 4];
                            matches!(
                                tokio::time::timeout(WAIT, s.read_exact(&mut g)).await,
                                Ok(Ok(_))
                            ) && g == msg
                        }
                    }
                    Err(_) => false,
                };
                if !(ok_keep && ok_new) {
                    failures.fetch_add(1, Relaxed);
                }
                done.fetch_add(1, Relaxed);
            }
        })
    };
    for i in 0..10 {
        let with_b = i % 2 == 1;
        let r = p.apply_yaml(&table(true, with_b)).await;
        assert!(r.failed.is_empty(), "apply {i}: {:?}", r.failed);
        if with_b {
            let mut s = connect(pb).await;
            assert_eq!(roundtrip(&mut s, b"b").await, b"b");
        } else {
            assert!(
                closed_without_data(pb).await,
                "removed listener still accepting"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    within(traffic).await.unwrap();
    assert_eq!(done.load(Relaxed), 300);
    assert_eq!(
        failures.load(Relaxed),
        0,
        "requests failed on the unchanged route"
    );

    // Remove A: its open connection keeps working during the grace period, then is cut.
    p.apply_yaml(&table(false, false)).await;
    assert!(
        closed_without_data(pa).await,
        "removed listener still accepting"
    );
    assert_eq!(roundtrip(&mut long_a, b"a2").await, b"a2");
    let mut buf = [0u8; 1];
    let r = within(long_a.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(0) | Err(_)),
        "connection not cut after the grace period"
    );
}

#[tokio::test]
async fn port_in_use_is_reported_and_the_rest_keeps_running() {
    let (b, _, _t) = echo_backend().await;
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = holder.local_addr().unwrap().port();
    let mut p = Proxy::new(CopyMode::Splice);
    let ok = p.tcp_port();
    let yaml = format!(
        "listeners:\n  - {{proto: tcp, port: {busy}, bind: 127.0.0.1, backends: [\"{b}\"]}}\n  - {{proto: tcp, port: {ok}, bind: 127.0.0.1, backends: [\"{b}\"]}}\n"
    );
    let r = p.apply_yaml(&yaml).await;
    assert_eq!(r.failed.len(), 1);
    let (key, err) = &r.failed[0];
    assert_eq!((key.proto, key.port), (Proto::Tcp, busy));
    assert!(matches!(err, ListenerError::Bind { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{busy}")) && msg.contains("in use"),
        "{msg}"
    );
    let mut s = connect(ok).await;
    assert_eq!(roundtrip(&mut s, b"ok").await, b"ok");
    // Once the port is free, the next apply starts it.
    drop(holder);
    let r = p.apply_yaml(&yaml).await;
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    let mut s = connect(busy).await;
    assert_eq!(roundtrip(&mut s, b"now").await, b"now");
}

#[tokio::test]
async fn malformed_routes_file_is_rejected_and_the_old_table_keeps_serving() {
    let (b, _, _t) = echo_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.yaml");
    let mut server = Server::new(ServerOptions::default());
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    server.adopt_tcp(l).unwrap();
    let l2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port2 = l2.local_addr().unwrap().port();
    server.adopt_tcp(l2).unwrap();
    let good = format!(
        "listeners: [{{proto: tcp, port: {port}, bind: 127.0.0.1, backends: [\"{b}\"]}}]\n"
    );
    std::fs::write(&path, &good).unwrap();
    let table = dataplane::rootlb::load_routes(&path).unwrap();
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(table));
    let (rep_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let (force_tx, force_rx) = tokio::sync::mpsc::channel(1);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(dataplane::server::run(server, rx, Some(rep_tx), async {
        let _ = stop_rx.await;
    }));
    tokio::spawn(dataplane::rootlb::watch_routes(
        path.clone(),
        tx,
        Duration::from_millis(20),
        force_rx,
    ));
    assert!(within(reports.recv()).await.unwrap().failed.is_empty());

    // Half-valid file: the valid new listener must NOT appear; the old one keeps serving.
    std::fs::write(
        &path,
        format!("{good}  - {{proto: tcp, port: {port2}, bind: 127.0.0.1, backends: [\"{b}\"]}}\n  - {{proto: tcp, port: 99999, backends: [\"{b}\"]}}\n")
            .replace("listeners: [", "listeners:\n  - ")
            .replace("]}]\n", "]}\n"),
    )
    .unwrap();
    force_tx.send(()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        reports.try_recv().is_err(),
        "a rejected file must not be applied"
    );
    let mut s = connect(port).await;
    assert_eq!(roundtrip(&mut s, b"old").await, b"old");
    // (port2 is adopted but unrouted: it would accept into its backlog, so it is not probed.)

    // Fixed file: picked up by the change poll (no SIGHUP), both listeners serve.
    std::fs::write(
        &path,
        format!("drain_grace: 200ms\nlisteners:\n  - {{proto: tcp, port: {port}, bind: 127.0.0.1, backends: [\"{b}\"]}}\n  - {{proto: tcp, port: {port2}, bind: 127.0.0.1, backends: [\"{b}\"]}}\n"),
    )
    .unwrap();
    let r = within(reports.recv()).await.unwrap();
    assert_eq!(r.serving.len(), 2, "{:?}", r.failed);
    let mut s = connect(port2).await;
    assert_eq!(roundtrip(&mut s, b"new").await, b"new");
    let _ = stop_tx.send(());
    within(runner).await.unwrap();
}
