//! Active health checks: one task per backend that probes every `interval` (with `timeout`) and
//! feeds the sans-IO [`HealthTracker`]; flips are published to the backend's state and as
//! [`HealthEvent`]s for the upstream reporter. TCP backends are checked with a connect; UDP
//! backends with a probe datagram from a fresh connected socket, judged by
//! [`udp_probe_ok`] (an ICMP port unreachable fails it).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::decide::health::{HealthTracker, ProbeOutcome, udp_probe_ok};
use crate::runtime::{BackendRt, HealthEvent, Shared};
use crate::table::{HealthCheck, Proto, Route, UdpProbe};

pub(crate) fn spawn(
    b: Arc<BackendRt>,
    route: Arc<Route>,
    hc: HealthCheck,
    shared: Arc<Shared>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tracker = HealthTracker::new(hc.rise, hc.fall);
        let mut tick = tokio::time::interval(hc.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let ok = match route.key.proto {
                Proto::Tcp => matches!(
                    tokio::time::timeout(hc.timeout, TcpStream::connect(b.addr)).await,
                    Ok(Ok(_))
                ),
                Proto::Udp => udp_check(b.addr, &hc.udp, hc.timeout).await,
            };
            if let Some(healthy) = tracker.observe(ok) {
                b.set_checked_health(healthy);
                tracing::info!(listener = %route.key, app = %route.name, backend = %b.addr, healthy, "backend health changed");
                let _ = shared.health_events.send(HealthEvent {
                    listener: route.key,
                    app: route.name.clone(),
                    backend: b.addr,
                    healthy,
                });
            }
        }
    })
}

/// One UDP probe of `backend`.
async fn udp_check(backend: SocketAddr, probe: &UdpProbe, timeout: Duration) -> bool {
    let mut buf = [0u8; UdpProbe::MAX_LEN * 4];
    let outcome = match tokio::time::timeout(timeout, udp_exchange(backend, probe, &mut buf)).await
    {
        Err(_) => ProbeOutcome::Silent,
        Ok(Err(_)) => ProbeOutcome::Failed,
        Ok(Ok(n)) => ProbeOutcome::Reply(&buf[..n]),
    };
    udp_probe_ok(probe.expect.as_deref(), outcome)
}

/// Send the probe and wait for the first reply (its length in `buf`). A port unreachable comes
/// back as `ECONNREFUSED` on the connected socket.
async fn udp_exchange(backend: SocketAddr, probe: &UdpProbe, buf: &mut [u8]) -> io::Result<usize> {
    let s = crate::sockets::connected_udp(backend)?;
    s.send(&probe.send).await?;
    s.recv(buf).await
}
