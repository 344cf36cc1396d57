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
