//! The DNS as a notify subscriber of the controller, on the shared subscriber driver
//! (`edge_api::subscriber`): the session keeps the objects in a [`Replica`]; after the snapshot
//! and after each batch of changes the zone is rebuilt ([`zone::build`], pure) and, when its
//! records changed, published through the provider under a newer serial. With the embedded
//! provider that is one atomic swap: queries never wait for it.
//!
//! While disconnected the last zone keeps serving; a zone that cannot be built (a bad
//! `app_dns_root`) is logged and the previous one keeps serving too.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use edge_api::notify::{Role, Subscription};
use edge_api::subscriber::{self, DriverConfig, Replica, Subscriber};
use edge_model::ObjectKind;

use crate::provider::DnsProvider;
use crate::zone::{self, Zone, ZoneOptions};

/// What the DNS asks the controller for: everything a name or an address comes from.
pub const WANT: [ObjectKind; 6] = [
    ObjectKind::Settings,
    ObjectKind::Cloudlet,
    ObjectKind::CloudletInfo,
    ObjectKind::App,
    ObjectKind::ClusterInst,
    ObjectKind::AppInst,
];

/// Where and as whom to subscribe, and how to build the zone.
#[derive(Debug, Clone)]
pub struct SubscribeConfig {
    /// Controller notify addresses (`host:port`), tried in turn.
    pub addrs: Vec<String>,
    /// Mutual TLS with the controller's notify endpoint (`None`: plaintext).
    pub tls: Option<edge_tls::MtlsClient>,
    /// Subscriber name (the controller records acknowledgements under it).
    pub name: String,
    pub zone: ZoneOptions,
}

/// Subscribes (unfiltered, as [`Role::Dns`]) and publishes every new zone through `provider`,
/// reconnecting for ever; abort the task to stop.
pub async fn run<P: DnsProvider + 'static>(config: SubscribeConfig, provider: Arc<P>) {
    let subscription = Subscription::new(config.name.clone(), Role::Dns, WANT.to_vec());
    let mut driver = DriverConfig::new(config.addrs.clone(), subscription);
    driver.tls = config.tls.clone();
    let me = DnsSubscriber {
        options: config.zone,
        provider,
        objects: Replica::new(),
        published: None,
        last_skipped: Vec::new(),
    };
    subscriber::run(driver, me).await;
}

struct DnsSubscriber<P> {
    options: ZoneOptions,
    provider: Arc<P>,
    objects: Replica,
    /// The zone last published successfully (its serial is the one to beat).
    published: Option<Arc<Zone>>,
    last_skipped: Vec<String>,
}

impl<P: DnsProvider + 'static> Subscriber for DnsSubscriber<P> {
    type Target = Replica;

    fn target(&mut self) -> &mut Replica {
        &mut self.objects
    }

    async fn publish(&mut self, _version: u64) {
        self.rebuild().await;
    }
}

impl<P: DnsProvider> DnsSubscriber<P> {
    async fn rebuild(&mut self) {
        let zone = match zone::build(&self.objects, &self.options) {
            Ok(z) => z,
            Err(e) => {
                tracing::error!("{e}; the previous zone keeps serving");
                return;
            }
        };
        if zone.skipped() != self.last_skipped.as_slice() {
            for s in zone.skipped() {
                tracing::warn!("left out of the zone: {s}");
            }
            self.last_skipped = zone.skipped().to_vec();
        }
        let previous = self.published.as_ref();
        if previous.is_some_and(|p| p.same_records(&zone)) {
            return;
        }
        let serial = zone::next_serial(previous.map_or(0, |p| p.serial()), now_unix());
        let zone = Arc::new(zone.with_serial(serial));
        match self.provider.publish(zone.clone()).await {
            Ok(()) => {
                tracing::info!(
                    origin = zone.origin(),
                    names = zone.len(),
                    serial,
                    "zone published"
                );
                self.published = Some(zone);
            }
            Err(e) => tracing::error!("publishing the zone: {e}; the previous zone keeps serving"),
        }
    }
}

fn now_unix() -> u64 {
    // A clock before 1970 only makes serials count up from the previous one.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
