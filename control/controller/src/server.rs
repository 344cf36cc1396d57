//! Serving: the controller API and the notify stream over bound listeners, until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use edge_api::pb;
use edge_store::Store;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use edge_tls::cli::Mtls;
use edge_tls::serve::{Acceptor, accept};
use edge_tls::{MtlsServer, PeerPolicy, Role};

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
    /// Mutual TLS on the API, its REST mirror and notify (`None`: plaintext).
    pub tls: Option<ControllerTls>,
}

/// The controller's mutual-TLS servers: who may call what.
#[derive(Clone, Debug)]
pub struct ControllerTls {
    pub api: MtlsServer,
    pub rest: MtlsServer,
    pub notify: MtlsServer,
}

impl ControllerTls {
    /// Servers on the component's certificate and region CA, with [`api_policy`] and
    /// [`notify_policy`].
    pub fn new(mtls: &Mtls) -> Result<ControllerTls, edge_tls::TlsError> {
        Ok(ControllerTls {
            api: mtls.server(api_policy(), &[b"h2"])?,
            rest: mtls.server(api_policy(), &[b"h2", b"http/1.1"])?,
            notify: mtls.server(notify_policy(), &[b"h2"])?,
        })
    }
}

/// Who may call the API: the MC (speaking for its users) and `edgectl` with a certificate of
/// its own (an operator's direct access). Not a DME, a root LB or a CRM: they only subscribe.
pub fn api_policy() -> PeerPolicy {
    PeerPolicy::roles(&[Role::Mc, Role::Edgectl])
}

/// Who may subscribe: the components fed by the region's objects. `controller` is there for
/// the CRM of the fake platform that runs inside the controller's process, on its
/// certificate.
pub fn notify_policy() -> PeerPolicy {
    PeerPolicy::roles(&[
        Role::Dme,
        Role::Rootlb,
        Role::Crm,
        Role::Dns,
        Role::Shepherd,
        Role::Controller,
    ])
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
        tls: None,
    })
}

/// Why serving stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("serving gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("listening: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the API on `api` and notify on `notify` until `shutdown` resolves.
pub async fn run(
    api: TcpListener,
    notify: TcpListener,
    handle: Handle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let api_svc =
        pb::controller_server::ControllerServer::new(ControllerService(handle.core.clone()));
    let notify_svc = pb::notify_server::NotifyServer::new(NotifyService::new(
        handle.core.store.clone(),
        handle.core.shared.clone(),
        handle.acks.clone(),
        handle.rootlb_grace,
    ))
    .max_decoding_message_size(16 << 20);
    let mut api_srv = tonic::transport::Server::builder();
    let api_srv = api_srv.add_service(api_svc);
    let mut notify_srv = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(handle.notify_keepalive))
        .http2_keepalive_timeout(Some(handle.notify_keepalive));
    let notify_srv = notify_srv.add_service(notify_svc);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let served = match &handle.tls {
        None => {
            let a = api_srv.serve_with_incoming_shutdown(
                TcpIncoming::from(api).with_nodelay(Some(true)),
                stopped(rx.clone()),
            );
            let n = notify_srv.serve_with_incoming_shutdown(
                TcpIncoming::from(notify).with_nodelay(Some(true)),
                stopped(rx.clone()),
            );
            futures::future::Either::Left(async move { tokio::join!(a, n) })
        }
        Some(tls) => {
            let api = accept(api, Acceptor::Mtls(tls.api.clone()), rx.clone())?;
            let notify = accept(notify, Acceptor::Mtls(tls.notify.clone()), rx.clone())?;
            let a = api_srv.serve_with_incoming_shutdown(api.into_stream(), stopped(rx.clone()));
            let n =
                notify_srv.serve_with_incoming_shutdown(notify.into_stream(), stopped(rx.clone()));
            futures::future::Either::Right(async move { tokio::join!(a, n) })
        }
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let (a, n) = served.await;
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
    tokio::spawn(crate::rest::serve(
        http,
        handle.tls.as_ref().map(|t| t.rest.clone()),
        handle.core.clone(),
        shutdown,
    ))
}
