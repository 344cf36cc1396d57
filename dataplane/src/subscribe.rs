//! The root LB as a notify subscriber of the controller, filtered to its cloudlet, on the shared
//! subscriber driver (`edge_api::subscriber`): the session keeps the clusters and instances it
//! is sent in a [`Replica`]; after the snapshot and after each batch of changes the route table
//! is rebuilt ([`crate::notify_routes`], pure) and published into the same `watch` channel the
//! routes-file watcher feeds ([`crate::server::run`] applies it with one swap), and the driver
//! acknowledges the version. Health flips of the proxy's checked backends are turned into
//! AppInst health reports sent up the same stream.
//!
//! While disconnected the last table keeps serving; after a reconnect the snapshot ends with
//! SNAPSHOT_END and whatever the controller did not re-send is dropped.

use std::collections::HashMap;
use std::sync::Arc;

use edge_api::notify::{Role, Subscription};
use edge_api::subscriber::{self, DriverConfig, Replica, Subscriber, Wake};
use edge_model::{AppInstKey, CloudletKey, HealthCheck as InstHealth, Object, ObjectKind};
use tokio::sync::{broadcast, watch};

use crate::notify_routes::{self, BackendHealth, RouteOptions};
use crate::runtime::{HealthEvent, Shared};
use crate::table::{Proto, RouteTable};

/// What the root LB asks the controller for. Apps are not needed: an instance's mapped ports
/// carry protocol, ports and the TLS flag.
pub const WANT: [ObjectKind; 2] = [ObjectKind::ClusterInst, ObjectKind::AppInst];

/// Where and as whom to subscribe, and how to build routes.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Controller notify addresses (`host:port`), tried in turn.
    pub addrs: Vec<String>,
    /// Mutual TLS with the controller's notify endpoint (`None`: plaintext).
    pub tls: Option<edge_tls::MtlsClient>,
    /// Subscriber name (the controller records acknowledgements under it).
    pub name: String,
    pub cloudlet: CloudletKey,
    pub routes: RouteOptions,
}

/// Subscribes until `tables` has no receiver (the server stopped), publishing tables into it.
pub async fn run(
    config: NotifyConfig,
    tables: watch::Sender<Arc<RouteTable>>,
    proxy: Arc<Shared>,
    health: broadcast::Receiver<HealthEvent>,
) {
    let subscription = Subscription {
        cloudlet_filter: Some(config.cloudlet.clone()),
        ..Subscription::new(config.name.clone(), Role::RootLb, WANT.to_vec())
    };
    let mut driver = DriverConfig::new(config.addrs.clone(), subscription);
    driver.tls = config.tls.clone();
    let me = LbSubscriber {
        config,
        tables,
        proxy,
        health,
        objects: Replica::new(),
        instances: HashMap::new(),
        last_skipped: Vec::new(),
        sent: HashMap::new(),
    };
    subscriber::run(driver, me).await;
}

/// What survives reconnects (but `sent`, which is per connection).
struct LbSubscriber {
    config: NotifyConfig,
    tables: watch::Sender<Arc<RouteTable>>,
    proxy: Arc<Shared>,
    health: broadcast::Receiver<HealthEvent>,
    objects: Replica,
    /// Route name → instance, of the last published table.
    instances: HashMap<Arc<str>, AppInstKey>,
    last_skipped: Vec<String>,
    /// Health reports sent on the current connection.
    sent: HashMap<AppInstKey, InstHealth>,
}

impl Subscriber for LbSubscriber {
    type Target = Replica;

    fn target(&mut self) -> &mut Replica {
        &mut self.objects
    }

    async fn publish(&mut self, _version: u64) {
        self.rebuild();
    }

    fn connected(&mut self) {
        self.sent.clear();
    }

    fn reports(&mut self) -> Vec<Object> {
        self.health_reports()
    }

    async fn wake(&mut self) -> Wake {
        match self.health.recv().await {
            Ok(_) => Wake::Report,
            // Health is re-read from the proxy when reporting, so missed events lose nothing.
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(missed = n, "health events lagged");
                Wake::Report
            }
            Err(broadcast::error::RecvError::Closed) => Wake::Stop,
        }
    }

    fn done(&self) -> bool {
        self.tables.is_closed()
    }
}

impl LbSubscriber {
    /// Builds the table from the objects and publishes it when it differs from the live one. A
    /// rejected table is logged; the previous one keeps serving.
    fn rebuild(&mut self) {
        let (cloudlet, opts) = (&self.config.cloudlet, &self.config.routes);
        match notify_routes::routes_for(cloudlet, &self.objects, opts) {
            Ok(built) => {
                if built.skipped != self.last_skipped {
                    for s in &built.skipped {
                        tracing::warn!("no listener for {s}");
                    }
                    self.last_skipped = built.skipped;
                }
                self.instances = built.instances;
                let changed = **self.tables.borrow() != built.table;
                if changed {
                    tracing::info!(listeners = built.table.len(), "routes from the controller");
                    self.tables.send_replace(Arc::new(built.table));
                }
            }
            Err(e) => tracing::error!("{e}; the previous table keeps serving"),
        }
    }

    /// The health reports the proxy's current backend health calls for (recorded as sent: a
    /// failed send ends the connection, and a new one starts the record over).
    fn health_reports(&mut self) -> Vec<Object> {
        let snap = self.proxy.snapshot();
        let backends = snap
            .routes()
            .into_iter()
            .filter(|r| r.route.key.proto == Proto::Tcp && r.route.health_check.is_some())
            .flat_map(|r| {
                r.backends.iter().map(|b| BackendHealth {
                    route: &r.route.name,
                    healthy: b.checked_healthy(),
                })
            })
            .collect::<Vec<_>>();
        let wanted = notify_routes::instance_health(backends, &self.instances);
        let objects = &self.objects;
        let current = |k: &AppInstKey| objects.app_inst(k).map(|i| i.health);
        let mut out = Vec::new();
        for (key, health) in notify_routes::health_reports(&wanted, current, &self.sent) {
            let Some(inst) = objects.app_inst(&key) else {
                continue;
            };
            tracing::info!(app_inst = %notify_routes::route_name(&key), ?health, "reporting instance health");
            out.push(Object::AppInst(edge_model::AppInst {
                health,
                ..inst.clone()
            }));
            self.sent.insert(key, health);
        }
        out
    }
}
