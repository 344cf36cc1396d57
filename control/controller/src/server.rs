//! Serving: the controller API and the notify stream over bound listeners, until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use edge_api::pb;
use edge_store::Store;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::api::{ControllerService, Core};
use crate::notify::{Acks, NotifyService};
use crate::planner::Region;
use crate::sync::{self, Shared};

/// A running controller's shared parts (tests and `edgeplane up` reach into them).
#[derive(Clone)]
pub struct Handle {
    pub core: Arc<Core>,
    pub acks: Arc<Acks>,
    /// How long a cloudlet may be without a connected root LB before the instances it carries
    /// are marked `RootlbOffline` (upstream alerts after 15 s without the LB's metrics).
    pub rootlb_grace: Duration,
    /// HTTP/2 keep-alive PING interval on notify connections, and how long a PING may go
    /// unanswered before the connection is closed. A subscriber behind a silent partition (or
    /// a frozen process) keeps its TCP connection open; without this it would count as
    /// connected for ever, and its cloudlet's instances would never be marked offline.
    pub notify_keepalive: Duration,
}

/// Loads the model from `store` and starts the sync task. No platform is driven here: CRMs
/// (the `crm` crate) connect to the notify stream and report back.
pub async fn start(store: Arc<dyn Store>, region: &str) -> Result<Handle, edge_store::StoreError> {
    let shared = Arc::new(Shared::default());
    sync::start(store.clone(), shared.clone()).await?;
    let acks = Arc::new(Acks::default());
    let core = Arc::new(Core {
        store,
        shared,
        acks: acks.clone(),
        region: Region {
            name: region.to_string(),
        },
        settle_timeout: Duration::from_secs(30),
    });
    Ok(Handle {
        core,
        acks,
        rootlb_grace: Duration::from_secs(15),
        notify_keepalive: Duration::from_secs(10),
    })
}

/// Serves the API on `api` and notify on `notify` until `shutdown` resolves.
pub async fn run(
    api: TcpListener,
    notify: TcpListener,
    handle: Handle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut api_rx = rx.clone();
    let mut notify_rx = rx;
    let api_srv = tonic::transport::Server::builder()
        .add_service(pb::controller_server::ControllerServer::new(
            ControllerService(handle.core.clone()),
        ))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(api).with_nodelay(Some(true)),
            async move {
                let _ = api_rx.wait_for(|s| *s).await;
            },
        );
    let notify_svc = NotifyService::new(
        handle.core.store.clone(),
        handle.core.shared.clone(),
        handle.acks.clone(),
        handle.rootlb_grace,
    );
    let notify_srv = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(handle.notify_keepalive))
        .http2_keepalive_timeout(Some(handle.notify_keepalive))
        .add_service(
            pb::notify_server::NotifyServer::new(notify_svc).max_decoding_message_size(16 << 20),
        )
        .serve_with_incoming_shutdown(
            TcpIncoming::from(notify).with_nodelay(Some(true)),
            async move {
                let _ = notify_rx.wait_for(|s| *s).await;
            },
        );
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let (a, n) = tokio::join!(api_srv, notify_srv);
    a?;
    n?;
    Ok(())
}

/// Serves the REST/JSON mirror of the API on `http` in a task until `shutdown` resolves (kept
/// apart from [`run`] so callers that need no REST keep their signature).
pub fn spawn_rest(
    http: TcpListener,
    handle: &Handle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(crate::rest::serve(http, handle.core.clone(), shutdown))
}
