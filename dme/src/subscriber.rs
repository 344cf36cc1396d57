//! The DME as a notify subscriber of the controller, on the shared subscriber driver
//! (`edge_api::subscriber`): the session applies what it is sent to the [`Mirror`]; after each
//! batch that changed something the touched apps' tables are rebuilt off the async workers and
//! published with one swap, and the driver acknowledges the version the DME now serves. While
//! disconnected the DME keeps serving its last tables.

use std::sync::Arc;

use edge_api::notify::{Role, Subscription};
use edge_api::subscriber::{self, DriverConfig, Subscriber};
use edge_model::ObjectKind;

use crate::mirror::Mirror;
use crate::service::Dme;

/// What the DME asks the controller for.
pub const WANT: [ObjectKind; 6] = [
    ObjectKind::Settings,
    ObjectKind::OperatorCode,
    ObjectKind::Cloudlet,
    ObjectKind::CloudletInfo,
    ObjectKind::App,
    ObjectKind::AppInst,
];

/// Where and as whom to subscribe.
#[derive(Clone, Debug)]
pub struct SubscriberConfig {
    /// Controller notify addresses (`host:port`), tried in turn.
    pub addrs: Vec<String>,
    /// Mutual TLS with the controller's notify endpoint (`None`: plaintext).
    pub tls: Option<edge_tls::MtlsClient>,
    /// This DME's name, under which its acknowledgements are recorded.
    pub name: String,
}

/// An engine with empty tables and a random key ring (cookies end with the process), fed by the
/// controller's notify stream on a spawned task: a DME inside a single-process region (`edgeplane
/// up`), load tests and tests. Needs a tokio runtime.
pub fn spawn_local(config: SubscriberConfig) -> Arc<Dme> {
    let engine = Arc::new(Dme::new(
        crate::Tables::empty(),
        crate::cookie::KeyRing::random(),
        crate::DmeConfig::default(),
        None,
    ));
    tokio::spawn(run(engine.clone(), config));
    engine
}

/// Subscribes forever (until the task is dropped), feeding `dme`.
pub async fn run(dme: Arc<Dme>, config: SubscriberConfig) {
    let subscription = Subscription::new(config.name, Role::Dme, WANT.to_vec());
    let mut driver = DriverConfig::new(config.addrs, subscription);
    driver.tls = config.tls;
    driver.outbox = 64;
    let me = DmeSubscriber {
        dme,
        mirror: Mirror::new(),
    };
    subscriber::run(driver, me).await;
}

/// The mirror survives reconnects.
struct DmeSubscriber {
    dme: Arc<Dme>,
    mirror: Mirror,
}

impl Subscriber for DmeSubscriber {
    type Target = Mirror;

    fn request(&mut self, request: &edge_api::notify::Request) {
        match request {
            edge_api::notify::Request::AppInstLatency(key) => {
                let n = self.dme.request_latency(key);
                tracing::info!(inst = %key, streams = n, "latency requested");
            }
        }
    }

    fn target(&mut self) -> &mut Mirror {
        &mut self.mirror
    }

    /// Builds on a blocking thread (a big app takes milliseconds) and publishes.
    async fn publish(&mut self, version: u64) {
        let mirror = std::mem::take(&mut self.mirror);
        let prev = self.dme.tables();
        let built = tokio::task::spawn_blocking(move || {
            let mut mirror = mirror;
            let tables = mirror.build(Some(&prev), version);
            let changes = mirror.take_changes();
            (mirror, tables, changes)
        })
        .await;
        match built {
            Ok((mirror, tables, changes)) => {
                self.mirror = mirror;
                self.dme.publish_changes(tables, &changes);
            }
            Err(e) => tracing::error!(error = %e, "table build panicked; keeping the last tables"),
        }
    }
}
