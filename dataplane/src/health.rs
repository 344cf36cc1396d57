//! Active health checks: one task per TCP backend that connects every `interval` (with `timeout`)
//! and feeds the sans-IO [`HealthTracker`]; flips are published to the backend's state and as
//! [`HealthEvent`]s for the upstream reporter.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::decide::health::HealthTracker;
use crate::server::{BackendRt, HealthEvent, Shared};
use crate::table::{HealthCheck, Route};

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
            let ok = matches!(
                tokio::time::timeout(hc.timeout, TcpStream::connect(b.addr)).await,
                Ok(Ok(_))
            );
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
