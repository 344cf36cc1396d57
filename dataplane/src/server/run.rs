//! The control loop: applies each table from the `watch` channel, retries listeners that failed,
//! answers upgrade hand-offs, and drains on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{ApplyReport, Server};
use crate::table::RouteTable;

/// How often [`run`] retries listeners that failed to start.
pub const RETRY_FAILED: Duration = Duration::from_secs(1);

/// Drive `server` from a table channel until `shutdown`, then drain for the last table's grace.
///
/// The channel's current value is applied first. Each later value is applied as a whole; the
/// producer is responsible for validation (see [`RouteTable::build`]).
pub async fn run(
    server: Server,
    tables: watch::Receiver<Arc<RouteTable>>,
    reports: Option<tokio::sync::mpsc::UnboundedSender<ApplyReport>>,
    shutdown: impl Future<Output = ()>,
) {
    run_with_handoff(server, tables, reports, shutdown, None).await;
}

/// [`run`], also answering hand-off requests (see [`crate::handoff`]): it gives a successor
/// its listening sockets and, once the successor serves, stops as on `shutdown`.
pub async fn run_with_handoff(
    mut server: Server,
    mut tables: watch::Receiver<Arc<RouteTable>>,
    reports: Option<tokio::sync::mpsc::UnboundedSender<ApplyReport>>,
    shutdown: impl Future<Output = ()>,
    mut handoff: Option<tokio::sync::mpsc::Receiver<crate::handoff::Request>>,
) {
    tokio::pin!(shutdown);
    let mut producer_gone = false;
    // Set while a successor holds our sockets and has not yet said it serves.
    let mut handing_over: Option<tokio::sync::oneshot::Receiver<()>> = None;
    'apply: loop {
        let table = tables.borrow_and_update().clone();
        let report = server.apply(table).await;
        for (k, e) in &report.failed {
            tracing::error!(listener = %k, "listener not serving: {e}");
        }
        let retry = !report.failed.is_empty();
        if let Some(tx) = &reports {
            let _ = tx.send(report);
        }
        // Listeners that failed (port in use, bad certificate) are retried every second.
        let retry_timer = async {
            if retry {
                tokio::time::sleep(RETRY_FAILED).await
            } else {
                std::future::pending().await
            }
        };
        tokio::pin!(retry_timer);
        loop {
            tokio::select! {
                _ = &mut shutdown => break 'apply,
                _ = &mut retry_timer => continue 'apply,
                r = tables.changed(), if !producer_gone => {
                    if r.is_ok() {
                        continue 'apply;
                    }
                    // Producer gone: keep serving the last table until shutdown.
                    producer_gone = true;
                }
                Some(req) = next_request(&mut handoff) => {
                    match server.listener_sockets() {
                        Ok(sockets) => {
                            if req.reply.send(sockets).is_ok() {
                                handing_over = Some(req.done);
                            }
                        }
                        Err(e) => tracing::warn!("upgrade: duplicating listeners: {e}"),
                    }
                }
                done = wait_done(&mut handing_over) => {
                    if done {
                        break 'apply;
                    }
                    handing_over = None;
                }
            }
        }
    }
    let grace = server.table().drain_grace;
    server.shutdown(grace).await;
}

async fn next_request(
    rx: &mut Option<tokio::sync::mpsc::Receiver<crate::handoff::Request>>,
) -> Option<crate::handoff::Request> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Whether the successor serves (false: the hand-off failed); pending while none is under way.
async fn wait_done(rx: &mut Option<tokio::sync::oneshot::Receiver<()>>) -> bool {
    match rx {
        Some(rx) => rx.await.is_ok(),
        None => std::future::pending().await,
    }
}
