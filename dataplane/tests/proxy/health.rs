use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use dataplane::{CopyMode, HealthEvent};
use tokio::net::TcpListener;

use crate::util::*;

async fn next_event(rx: &mut tokio::sync::broadcast::Receiver<HealthEvent>) -> HealthEvent {
    within(rx.recv()).await.unwrap()
}

#[tokio::test]
async fn active_check_takes_backend_down_and_back_up() {
    let (a, a_count, a_task) = echo_backend().await;
    let (b, b_count, _bt) = echo_backend().await;
    let mut p = Proxy::new(CopyMode::Splice);
    let mut events = p.server.health_events();
    let port = p.tcp_port();
    p.apply_yaml(&format!(
        "listeners: [{{proto: tcp, port: {port}, bind: 127.0.0.1, name: app9, backends: [\"{a}\", \"{b}\"],
           health_check: {{interval: 30ms, timeout: 30ms, rise: 2, fall: 2}}}}]"
    ))
    .await;
    a_task.abort();
    let _ = a_task.await; // listener closed: checks now fail
    let e = next_event(&mut events).await;
    assert_eq!((e.backend, e.healthy, &*e.app), (a, false, "app9"));
    let before = a_count.load(Relaxed);
    for i in 0..4u8 {
        let mut s = connect(port).await;
        assert_eq!(roundtrip(&mut s, &[i]).await, [i]);
    }
    let m = dataplane::metrics::render(&p.server.shared().snapshot());
    // Health-checked out: no client connection even tried `a`.
    assert_eq!(
        metric(&m, "rootlb_backend_connect_errors_total", &a.to_string()),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "rootlb_backend_healthy", &a.to_string()),
        Some(0.0)
    );
    assert!(b_count.load(Relaxed) >= 4);

    // Same port back up: two good checks bring it back into rotation.
    let l = TcpListener::bind(a).await.unwrap();
    let _keep = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            drop(s);
        }
    });
    let e = next_event(&mut events).await;
    assert_eq!((e.backend, e.healthy), (a, true));
    assert_eq!(before, a_count.load(Relaxed));
    let m = dataplane::metrics::render(&p.server.shared().snapshot());
    assert_eq!(
        metric(&m, "rootlb_backend_healthy", &a.to_string()),
        Some(1.0)
    );
    let _ = Duration::ZERO;
}

/// A UDP port nothing listens on (bound, read back, released): datagrams to it come back as
/// ICMP port unreachable.
fn dead_udp_addr() -> std::net::SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

/// A UDP socket that reads and never answers.
async fn silent_udp_backend() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while s.recv_from(&mut buf).await.is_ok() {}
    });
    (addr, task)
}

#[tokio::test]
async fn udp_probe_takes_an_unreachable_port_down_and_back_up() {
    let dead = dead_udp_addr();
    let (good, _g) = udp_echo_backend().await;
    let mut p = Proxy::new(CopyMode::Splice);
    let mut events = p.server.health_events();
    let port = p.udp_port();
    p.apply_yaml(&format!(
        "listeners: [{{proto: udp, port: {port}, bind: 127.0.0.1, name: game, backends: [\"{dead}\", \"{good}\"],
           health_check: {{interval: 100ms, timeout: 80ms, rise: 2, fall: 2}}}}]"
    ))
    .await;
    // The refusal comes back at once; the generous timeout keeps a busy machine from failing
    // the live backend's probes.
    let e = next_event(&mut events).await;
    assert_eq!((e.backend, e.healthy, &*e.app), (dead, false, "game"));
    let m = dataplane::metrics::render(&p.server.shared().snapshot());
    assert_eq!(
        metric(&m, "rootlb_backend_healthy", &dead.to_string()),
        Some(0.0)
    );
    assert_eq!(
        metric(&m, "rootlb_backend_healthy", &good.to_string()),
        Some(1.0)
    );

    // A service on the port again (silence would pass too; this one echoes the probe).
    let s = tokio::net::UdpSocket::bind(dead).await.unwrap();
    let _echo = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let _ = s.send_to(&buf[..n], from).await;
        }
    });
    let e = next_event(&mut events).await;
    assert_eq!((e.backend, e.healthy), (dead, true));
}

#[tokio::test]
async fn udp_probe_with_expect_needs_a_matching_reply() {
    let (silent, _s) = silent_udp_backend().await;
    let (echo, _e) = udp_echo_backend().await;
    let mut p = Proxy::new(CopyMode::Splice);
    let mut events = p.server.health_events();
    let port = p.udp_port();
    p.apply_yaml(&format!(
        "listeners: [{{proto: udp, port: {port}, bind: 127.0.0.1, backends: [\"{silent}\", \"{echo}\"],
           health_check: {{interval: 120ms, timeout: 100ms, rise: 1, fall: 2, send: ping-pong, expect: pong}}}}]"
    ))
    .await;
    let e = next_event(&mut events).await;
    assert_eq!(
        (e.backend, e.healthy),
        (silent, false),
        "silence fails when a reply is expected"
    );
    // The echo's reply contains `pong`: several more probes later it is still up.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let m = dataplane::metrics::render(&p.server.shared().snapshot());
    assert_eq!(
        metric(&m, "rootlb_backend_healthy", &echo.to_string()),
        Some(1.0),
        "{m}"
    );
    assert!(events.try_recv().is_err(), "no other health change");
}

#[tokio::test]
async fn udp_flow_to_an_unreachable_backend_is_ejected_and_the_client_moves_on() {
    let dead = dead_udp_addr();
    let (good, _g) = udp_echo_backend().await;
    let mut p = Proxy::new(CopyMode::Splice);
    let port = p.udp_port();
    p.apply_yaml(&format!(
        "listeners: [{{proto: udp, port: {port}, bind: 127.0.0.1, backends: [\"{dead}\", \"{good}\"],
           health_check: {{enabled: false}}, eject_for: 30s}}]"
    ))
    .await;
    // Round robin puts one of the first two clients on the dead backend. Its datagrams get no
    // answer until a send comes back refused; then the flow ends and the next datagram opens a
    // flow to the other backend.
    let mut buf = [0u8; 64];
    for i in 0..4u8 {
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut answered = false;
        for _ in 0..10 {
            c.send_to(&[i], ("127.0.0.1", port)).await.unwrap();
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(200), c.recv(&mut buf)).await
            {
                assert_eq!(&buf[..n], [i]);
                answered = true;
                break;
            }
        }
        assert!(answered, "client {i} never reached the live backend");
    }
    let m = dataplane::metrics::render(&p.server.shared().snapshot());
    assert!(
        metric(&m, "rootlb_backend_connect_errors_total", &dead.to_string()) >= Some(1.0),
        "{m}"
    );
}
