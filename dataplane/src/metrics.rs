//! The counters of [`crate::stats`] rendered in Prometheus text format from the published
//! snapshot, and a tiny HTTP endpoint serving them.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::runtime::{BackendRt, RouteRt, Shared, Snapshot};
use crate::stats::LATENCY_BOUNDS;
use crate::stats::ListenerStats;
use crate::table::Proto;

/// Render the current snapshot's counters in Prometheus text format.
pub fn render(snap: &Snapshot) -> String {
    let mut o = String::with_capacity(4096);
    type LFn = fn(&ListenerStats) -> i64;
    let lmetrics: [(&str, &str, &str, LFn); 8] = [
        (
            "rootlb_listener_accepted_total",
            "counter",
            "TCP connections accepted",
            |s| s.accepted.get() as i64,
        ),
        (
            "rootlb_listener_active",
            "gauge",
            "TCP connections open",
            |s| s.active.get(),
        ),
        (
            "rootlb_listener_no_backend_total",
            "counter",
            "connections with no reachable backend",
            |s| s.no_backend.get() as i64,
        ),
        (
            "rootlb_listener_tls_errors_total",
            "counter",
            "failed TLS handshakes",
            |s| s.tls_handshake_errors.get() as i64,
        ),
        ("rootlb_udp_flows_active", "gauge", "UDP flows open", |s| {
            s.udp_flows_active.get()
        }),
        (
            "rootlb_udp_flows_total",
            "counter",
            "UDP flows created",
            |s| s.udp_flows_created.get() as i64,
        ),
        (
            "rootlb_udp_drops_full_total",
            "counter",
            "datagrams dropped: flow table full",
            |s| s.udp_drops_full.get() as i64,
        ),
        (
            "rootlb_udp_drops_send_total",
            "counter",
            "datagrams dropped: send failed",
            |s| s.udp_drops_send.get() as i64,
        ),
    ];
    for (name, kind, help, f) in lmetrics {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for rt in snap.routes() {
            let r = &rt.route;
            // listener_* series describe TCP listeners, udp_* series UDP ones.
            if name.starts_with("rootlb_udp") != (r.key.proto == Proto::Udp) {
                continue;
            }
            let _ = writeln!(
                o,
                "{name}{{listener=\"{}\",app=\"{}\"}} {}",
                r.key,
                r.name,
                f(&rt.stats)
            );
        }
    }
    type BFn = fn(&BackendRt) -> String;
    let bmetrics: [(&str, &str, &str, BFn); 9] = [
        (
            "rootlb_backend_connections_total",
            "counter",
            "connections (TCP) or flows (UDP) sent",
            |b| b.stats.connections.get().to_string(),
        ),
        (
            "rootlb_backend_active",
            "gauge",
            "open connections or flows",
            |b| b.active().to_string(),
        ),
        (
            "rootlb_backend_connect_errors_total",
            "counter",
            "failed connects",
            |b| b.stats.connect_errors.get().to_string(),
        ),
        (
            "rootlb_backend_cap_rejects_total",
            "counter",
            "skipped: connection cap reached",
            |b| b.stats.cap_rejects.get().to_string(),
        ),
        (
            "rootlb_backend_bytes_in_total",
            "counter",
            "bytes client to backend",
            |b| b.stats.bytes_in.get().to_string(),
        ),
        (
            "rootlb_backend_bytes_out_total",
            "counter",
            "bytes backend to client",
            |b| b.stats.bytes_out.get().to_string(),
        ),
        (
            "rootlb_backend_packets_in_total",
            "counter",
            "UDP datagrams client to backend",
            |b| b.stats.packets_in.get().to_string(),
        ),
        (
            "rootlb_backend_packets_out_total",
            "counter",
            "UDP datagrams backend to client",
            |b| b.stats.packets_out.get().to_string(),
        ),
        (
            "rootlb_backend_healthy",
            "gauge",
            "1 when the backend takes new traffic",
            |b| u8::from(b.is_healthy_now()).to_string(),
        ),
    ];
    for (name, kind, help, f) in bmetrics {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for rt in snap.routes() {
            for b in &rt.backends {
                let _ = writeln!(o, "{name}{{{}}} {}", labels(rt, b), f(b));
            }
        }
    }
    let name = "rootlb_backend_connect_seconds";
    let _ = writeln!(
        o,
        "# HELP {name} TCP connect latency to the backend\n# TYPE {name} histogram"
    );
    for rt in snap.routes() {
        for b in &rt.backends {
            let h = &b.stats.connect_latency;
            let l = labels(rt, b);
            let mut cum = 0;
            for (bound, c) in LATENCY_BOUNDS.iter().zip(&h.buckets) {
                cum += c.get();
                let _ = writeln!(o, "{name}_bucket{{{l},le=\"{bound}\"}} {cum}");
            }
            let _ = writeln!(o, "{name}_bucket{{{l},le=\"+Inf\"}} {}", h.count.get());
            let _ = writeln!(o, "{name}_sum{{{l}}} {}", h.sum_us.get() as f64 / 1e6);
            let _ = writeln!(o, "{name}_count{{{l}}} {}", h.count.get());
        }
    }
    o
}

fn labels(rt: &RouteRt, b: &BackendRt) -> String {
    format!(
        "listener=\"{}\",app=\"{}\",backend=\"{}\"",
        rt.route.key, rt.route.name, b.addr
    )
}

/// Serve `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => {
                let Ok((mut s, _)) = r else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let mut req = Vec::with_capacity(512);
                    let mut buf = [0u8; 512];
                    let read = tokio::time::timeout(Duration::from_secs(5), async {
                        while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => return false,
                                Ok(n) => req.extend_from_slice(&buf[..n]),
                            }
                        }
                        true
                    });
                    if !matches!(read.await, Ok(true)) {
                        return;
                    }
                    let (status, body) = if req.starts_with(b"GET /metrics ") || req.starts_with(b"GET / ") {
                        ("200 OK", render(&shared.snapshot()))
                    } else {
                        ("404 Not Found", "not found\n".to_string())
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(body.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        }
    }
}
