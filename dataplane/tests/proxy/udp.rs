use std::time::Duration;

use dataplane::CopyMode;
use tokio::net::UdpSocket;

use crate::util::*;

async fn client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

/// Send and wait for a reply, retrying a few times (UDP may drop on a busy CI box).
async fn ask(c: &UdpSocket, port: u16, msg: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    for _ in 0..3 {
        c.send_to(msg, ("127.0.0.1", port)).await.unwrap();
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), c.recv(&mut buf)).await
        {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

fn flows(p: &Proxy) -> (f64, f64) {
    let m = dataplane::metrics::render(&p.server.shared().snapshot());
    (
        metric(&m, "rootlb_udp_flows_active", "udp:").unwrap(),
        metric(&m, "rootlb_udp_flows_total", "udp:").unwrap(),
    )
}

#[tokio::test]
async fn udp_flows_forward_and_return_per_client() {
    let (b, _t) = udp_echo_backend().await;
    let mut p = Proxy::new(CopyMode::Splice);
    let port = p.udp_port();
    let r = p
        .apply_yaml(&format!(
            "listeners: [{{proto: udp, port: {port}, bind: 127.0.0.1, backends: [\"{b}\"]}}]"
        ))
        .await;
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    let (c1, c2) = (client().await, client().await);
    assert_eq!(ask(&c1, port, b"one").await.as_deref(), Some(&b"one"[..]));
    assert_eq!(ask(&c2, port, b"two").await.as_deref(), Some(&b"two"[..]));
    let big = vec![7u8; 9000];
    assert_eq!(ask(&c1, port, &big).await.map(|v| v.len()), Some(9000));
    assert_eq!(flows(&p), (2.0, 2.0));
}

#[tokio::test]
async fn udp_flow_cap_sheds_new_clients() {
    let (b, _t) = udp_echo_backend().await;
    let mut p = Proxy::new(CopyMode::Splice);
    let port = p.udp_port();
    p.apply_yaml(&format!(
        "listeners: [{{proto: udp, port: {port}, bind: 127.0.0.1, backends: [\"{b}\"], udp: {{max_flows: 1}}}}]"
    )).await;
    let (c1, c2) = (client().await, client().await);
    assert!(ask(&c1, port, b"a").await.is_some());
    assert!(
        ask(&c2, port, b"b").await.is_none(),
        "second flow must be shed"
    );
    assert!(
        ask(&c1, port, b"c").await.is_some(),
        "existing flow keeps working"
    );
    let m = dataplane::metrics::render(&p.server.shared().snapshot());
    assert!(metric(&m, "rootlb_udp_drops_full_total", "udp:").unwrap() >= 1.0);
}

#[tokio::test]
async fn udp_idle_flows_expire() {
    let (b, _t) = udp_echo_backend().await;
    let mut p = Proxy::new(CopyMode::Splice);
    let port = p.udp_port();
    p.apply_yaml(&format!(
        "listeners: [{{proto: udp, port: {port}, bind: 127.0.0.1, backends: [\"{b}\"], udp: {{idle_timeout: 150ms}}}}]"
    )).await;
    let c = client().await;
    assert!(ask(&c, port, b"a").await.is_some());
    let mut expired = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if flows(&p).0 == 0.0 {
            expired = true;
            break;
        }
    }
    assert!(expired, "flow did not expire");
    // A new datagram opens a fresh flow.
    assert!(ask(&c, port, b"b").await.is_some());
    assert_eq!(flows(&p), (1.0, 2.0));
}

#[tokio::test]
async fn udp_bursts_keep_datagram_boundaries_and_order() {
    // A sink that records what arrives; the burst is coalesced by the proxy (GSO) on the way.
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = sink.local_addr().unwrap();
    let mut p = Proxy::new(CopyMode::Splice);
    let port = p.udp_port();
    p.apply_yaml(&format!(
        "listeners: [{{proto: udp, port: {port}, bind: 127.0.0.1, backends: [\"{b}\"]}}]"
    ))
    .await;
    // Drain the sink while sending so its socket buffer never overflows.
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        while let Ok(Ok(len)) =
            tokio::time::timeout(Duration::from_millis(500), sink.recv(&mut buf)).await
        {
            got.push(buf[..len].to_vec());
        }
        got
    });
    let c = client().await;
    let n = 300u32;
    for i in 0..n {
        // Mixed sizes: runs of equal size, then a short one, as a batch boundary test.
        let len = if i % 50 == 49 { 300 } else { 1200 };
        let mut d = vec![(i % 251) as u8; len];
        d[..4].copy_from_slice(&i.to_be_bytes());
        c.send_to(&d, ("127.0.0.1", port)).await.unwrap();
        if i % 50 == 49 {
            // Bursts of 50 (60 KB) fit the default socket buffers on the way.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut seen = Vec::new();
    for buf in within(reader).await.unwrap() {
        let len = buf.len();
        let i = u32::from_be_bytes(buf[..4].try_into().unwrap());
        let want = if i % 50 == 49 { 300 } else { 1200 };
        assert_eq!(len, want, "datagram {i} has the wrong size");
        assert!(
            buf[4..len].iter().all(|x| *x == (i % 251) as u8),
            "datagram {i} corrupted"
        );
        seen.push(i);
    }
    assert!(
        seen.len() as u32 >= n * 9 / 10,
        "only {} of {n} arrived: {seen:?}",
        seen.len()
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "reordered");
    // The backend counters count each datagram once, whatever the trains were.
    let m = dataplane::metrics::render(&p.server.shared().snapshot());
    let b = b.to_string();
    assert_eq!(
        metric(&m, "rootlb_backend_packets_in_total", &b),
        Some(f64::from(n)),
        "{m}"
    );
    assert_eq!(
        metric(&m, "rootlb_backend_bytes_in_total", &b),
        Some(f64::from(n / 50 * (49 * 1200 + 300))),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reuseport_group_serves_every_client_on_one_flow_each() {
    let (b, _t) = udp_echo_backend().await;
    let mut p = Proxy::new(CopyMode::Auto);
    p.server = dataplane::Server::new(dataplane::ServerOptions {
        udp_sockets: 4,
        ..Default::default()
    });
    // A free port (bound and released): the group binds it itself, four sockets deep.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = p
        .apply_yaml(&format!(
            "listeners: [{{proto: udp, port: {port}, bind: 127.0.0.1, backends: [\"{b}\"]}}]"
        ))
        .await;
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(
        p.server.listener_sockets().unwrap().len(),
        4,
        "four SO_REUSEPORT sockets"
    );
    let mut clients = Vec::new();
    for _ in 0..24 {
        clients.push(client().await);
    }
    for round in 0..3u8 {
        for (i, c) in clients.iter().enumerate() {
            let msg = [round, i as u8];
            assert_eq!(
                ask(c, port, &msg).await.as_deref(),
                Some(&msg[..]),
                "client {i}"
            );
        }
    }
    // The kernel keeps each client on one socket, so each client is one flow, whichever
    // socket it landed on.
    assert_eq!(flows(&p), (24.0, 24.0));
}

#[tokio::test]
async fn a_reuseport_group_does_not_join_another_process_sockets() {
    // Another process's SO_REUSEPORT socket on the port (say, a second root LB).
    let other = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    other.set_reuse_port(true).unwrap();
    other
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    let port = other.local_addr().unwrap().as_socket().unwrap().port();
    let mut p = Proxy::new(CopyMode::Auto);
    p.server = dataplane::Server::new(dataplane::ServerOptions {
        udp_sockets: 2,
        ..Default::default()
    });
    let r = p
        .apply_yaml(&format!(
            "listeners: [{{proto: udp, port: {port}, bind: 127.0.0.1, backends: [\"127.0.0.1:9\"]}}]"
        ))
        .await;
    assert_eq!(r.failed.len(), 1, "the port is taken: {:?}", r.failed);
    assert!(
        r.failed[0].1.to_string().contains("in use"),
        "{}",
        r.failed[0].1
    );
}

/// Sends `data` from `c` to `to` as one UDP GSO train of `seg`-byte datagrams.
fn send_gso_train(c: &std::net::UdpSocket, to: std::net::SocketAddr, data: &[u8], seg: u16) {
    use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};
    use std::os::fd::AsRawFd;
    let to = SockaddrStorage::from(to);
    let sent = sendmsg(
        c.as_raw_fd(),
        &[std::io::IoSlice::new(data)],
        &[ControlMessage::UdpGsoSegments(&seg)],
        MsgFlags::empty(),
        Some(&to),
    )
    .unwrap();
    assert_eq!(sent, data.len());
}

#[tokio::test]
async fn a_clients_gso_train_arrives_as_its_datagrams_both_ways() {
    // A backend that records every datagram and, once it has ten, answers with them as one GSO
    // train too (as a QUIC server would), which the root LB's flow socket reads with GRO.
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = s.local_addr().unwrap();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let _backend = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut train = Vec::new();
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let _ = seen_tx.send(buf[..n].to_vec());
            train.extend_from_slice(&buf[..n]);
            if train.len() == 9 * 1200 + 100 {
                let std = s.into_std().unwrap();
                send_gso_train(&std, from, &train, 1200);
                return;
            }
        }
    });
    let mut p = Proxy::new(CopyMode::Splice);
    let port = p.udp_port();
    p.apply_yaml(&format!(
        "listeners: [{{proto: udp, port: {port}, bind: 127.0.0.1, backends: [\"{b}\"]}}]"
    ))
    .await;
    // Ten datagrams: nine of 1200 bytes and a last one of 100, each with its own content. The
    // root LB reads the train with UDP GRO as one buffer; the backend must still get ten.
    let data: Vec<Vec<u8>> = (0..10u8)
        .map(|i| vec![i; if i == 9 { 100 } else { 1200 }])
        .collect();
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    send_gso_train(&c, ([127, 0, 0, 1], port).into(), &data.concat(), 1200);
    let mut at_backend = Vec::new();
    while at_backend.len() < data.len() {
        at_backend.push(within(seen.recv()).await.unwrap());
    }
    assert_eq!(at_backend, data, "datagram boundaries kept on the way in");
    let c = UdpSocket::from_std({
        c.set_nonblocking(true).unwrap();
        c
    })
    .unwrap();
    let mut back = Vec::new();
    let mut buf = vec![0u8; 65536];
    while back.len() < data.len() {
        let n = within(c.recv(&mut buf)).await.unwrap();
        back.push(buf[..n].to_vec());
    }
    assert_eq!(
        back, data,
        "and on the way back, from the backend's own train"
    );
}
