//! Shepherd as a notify subscriber of the controller, filtered to its cloudlet, on the shared
//! subscriber driver (`edge_api::subscriber`): the session keeps the objects in a [`Replica`],
//! and each published version is handed to the collection loop as an `Arc<Replica>` through a
//! `watch` channel (the loop reads the latest at every round). Shepherd reports nothing back.
//! While disconnected the last objects keep being used.

use std::sync::Arc;

use edge_api::notify::{Role, Subscription};
use edge_api::subscriber::{self, DriverConfig, Replica, Subscriber};
use edge_model::{CloudletKey, ObjectKind};
use tokio::sync::watch;

/// What Shepherd asks the controller for: the cloudlet and its CRM's report (utilisation), and
/// the apps, clusters and instances that give series their tags.
pub const WANT: [ObjectKind; 5] = [
    ObjectKind::Cloudlet,
    ObjectKind::CloudletInfo,
    ObjectKind::App,
    ObjectKind::ClusterInst,
    ObjectKind::AppInst,
];

/// Where and as whom to subscribe.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Controller notify addresses (`host:port`), tried in turn.
    pub addrs: Vec<String>,
    /// Mutual TLS with the controller's notify endpoint (`None`: plaintext).
    pub tls: Option<edge_tls::MtlsClient>,
    /// Subscriber name (the controller records acknowledgements under it).
    pub name: String,
    pub cloudlet: CloudletKey,
}

/// Subscribes until `objects` has no receiver, publishing every version into it.
pub async fn run(config: NotifyConfig, objects: watch::Sender<Arc<Replica>>) {
    let subscription = Subscription {
        cloudlet_filter: Some(config.cloudlet),
        ..Subscription::new(config.name, Role::Shepherd, WANT.to_vec())
    };
    let mut driver = DriverConfig::new(config.addrs, subscription);
    driver.tls = config.tls;
    let me = ShepherdSubscriber {
        objects: Replica::new(),
        out: objects,
    };
    subscriber::run(driver, me).await;
}

struct ShepherdSubscriber {
    objects: Replica,
    out: watch::Sender<Arc<Replica>>,
}

impl Subscriber for ShepherdSubscriber {
    type Target = Replica;

    fn target(&mut self) -> &mut Replica {
        &mut self.objects
    }

    async fn publish(&mut self, version: u64) {
        tracing::debug!(
            version,
            objects = self.objects.len(),
            "objects from the controller"
        );
        // One cloudlet's objects: a copy per version is cheap, and the loop never waits on us.
        self.out.send_replace(Arc::new(self.objects.clone()));
    }

    fn done(&self) -> bool {
        self.out.is_closed()
    }
}
