//! The CRM as a notify subscriber (the one shared driver in `edge-api`): it mirrors the
//! objects of its cloudlet — or of every cloudlet of its platform — into a [`Replica`], keeps an
//! [`Engine`] per cloudlet, reconciles after every publish and every event, and hands the
//! engines' reports and progress lines to the driver.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use edge_api::notify::{Progress, Role, Subscription};
use edge_api::subscriber::{self, Apply, DriverConfig, Replica, Subscriber, Wake};
use edge_model::{Cloudlet, CloudletKey, Object, ObjectKey, ObjectKind};
use tokio::sync::{mpsc, watch};

use crate::engine::{Engine, Event};
use crate::platform::Platform;

/// What a CRM asks the controller for.
pub const WANT: [ObjectKind; 6] = [
    ObjectKind::Flavor,
    ObjectKind::Cloudlet,
    ObjectKind::CloudletInfo,
    ObjectKind::App,
    ObjectKind::ClusterInst,
    ObjectKind::AppInst,
];

/// Makes the platform of a cloudlet (or says why it cannot).
pub type PlatformFactory = Box<dyn Fn(&Cloudlet) -> Result<Arc<dyn Platform>, String> + Send>;

/// Which cloudlets this CRM serves.
pub enum Scope {
    /// One cloudlet (upstream's CRM on the edge site).
    Cloudlet(CloudletKey),
    /// Every cloudlet whose `platform_type` is this (like EdgeXR's central CRM).
    Platform(String),
}

pub struct CrmConfig {
    /// Controller notify addresses, tried in turn.
    pub addrs: Vec<String>,
    /// Mutual TLS with the controller's notify endpoint (`None`: plaintext).
    pub tls: Option<edge_tls::MtlsClient>,
    pub name: String,
    pub scope: Scope,
    pub platforms: PlatformFactory,
    /// Public address of the cloudlet's shared root LB, reported in CloudletInfo.
    pub rootlb_address: Option<IpAddr>,
}

/// Why a CRM stopped.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    #[error("{0}")]
    Fatal(String),
}

/// Serves until `stop` turns true (Ok) or something makes going on pointless (Err: a cloudlet
/// that does not exist, a platform that cannot start).
pub async fn run(config: CrmConfig, stop: watch::Receiver<bool>) -> Result<(), CrmError> {
    let mut subscription = Subscription::new(config.name.clone(), Role::Crm, WANT.to_vec());
    match &config.scope {
        Scope::Cloudlet(c) => subscription.cloudlet_filter = Some(c.clone()),
        Scope::Platform(p) => subscription.platform_filter = Some(p.clone()),
    }
    let mut driver = DriverConfig::new(config.addrs.clone(), subscription);
    driver.tls = config.tls.clone();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut me = Crm {
        config,
        objects: Objects::default(),
        engines: HashMap::new(),
        events_tx: tx,
        events: rx,
        synced: false,
        outbox: Vec::new(),
        progress: Vec::new(),
        fatal: None,
        stop,
    };
    let sub = subscriber::run(driver, &mut me);
    sub.await;
    for e in me.engines.values() {
        if e.busy() > 0 {
            tracing::info!(cloudlet = %e.cloudlet, running = e.busy(), "stopping with operations running");
        }
    }
    match me.fatal {
        Some(e) => Err(CrmError::Fatal(e)),
        None => Ok(()),
    }
}

/// The replica, and which keys changed since the CRM last looked.
#[derive(Default)]
struct Objects {
    replica: Replica,
    changed: Vec<ObjectKey>,
}

impl Apply for Objects {
    fn upsert(&mut self, object: Object) -> bool {
        let key = object.key();
        let changed = Apply::upsert(&mut self.replica, object);
        if changed {
            self.changed.push(key);
        }
        changed
    }

    fn remove(&mut self, key: &ObjectKey) -> bool {
        let changed = Apply::remove(&mut self.replica, key);
        if changed {
            self.changed.push(key.clone());
        }
        changed
    }

    fn keys(&self) -> Vec<ObjectKey> {
        Apply::keys(&self.replica)
    }
}

struct Crm {
    config: CrmConfig,
    objects: Objects,
    engines: HashMap<CloudletKey, Engine>,
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
    /// A snapshot has been completed: what the replica lacks is really gone.
    synced: bool,
    /// What the engines have to send up, collected as they produce it (a CRM serving many
    /// cloudlets does not visit every engine for each message).
    outbox: Vec<Object>,
    progress: Vec<Progress>,
    fatal: Option<String>,
    stop: watch::Receiver<bool>,
}

impl Subscriber for &mut Crm {
    type Target = Objects;

    fn target(&mut self) -> &mut Objects {
        &mut self.objects
    }

    async fn publish(&mut self, _version: u64) {
        let first = !self.synced;
        self.synced = true;
        // Engines follow the cloudlets: looked at only when a cloudlet changed.
        let cloudlets_changed = self
            .objects
            .changed
            .iter()
            .any(|k| matches!(k, ObjectKey::Cloudlet(_)));
        if first || cloudlets_changed {
            self.sync_engines();
        }
        self.route_changes();
        for e in self.engines.values_mut().filter(|e| e.pending()) {
            e.reconcile(&self.objects.replica, true);
            self.outbox.extend(e.take_reports());
            self.progress.extend(e.take_progress());
        }
    }

    fn connected(&mut self) {
        for e in self.engines.values_mut() {
            e.connected();
        }
    }

    fn reports(&mut self) -> Vec<Object> {
        std::mem::take(&mut self.outbox)
    }

    fn progress(&mut self) -> Vec<Progress> {
        std::mem::take(&mut self.progress)
    }

    async fn wake(&mut self) -> Wake {
        let stop = &mut self.stop;
        let ev = tokio::select! {
            ev = self.events.recv() => ev,
            // A stop sender that went away means "never".
            stopped = async { stop.wait_for(|s| *s).await.is_ok() } => {
                if stopped { None } else { std::future::pending().await }
            }
        };
        let Some(ev) = ev else { return Wake::Stop };
        self.on_event(ev);
        while let Ok(ev) = self.events.try_recv() {
            self.on_event(ev);
        }
        if self.fatal.is_some() {
            Wake::Stop
        } else {
            Wake::Report
        }
    }

    fn done(&self) -> bool {
        self.fatal.is_some() || *self.stop.borrow()
    }
}

impl Crm {
    fn on_event(&mut self, ev: Event) {
        let cloudlet = ev.cloudlet().clone();
        if let Event::Fatal { error, .. } = &ev {
            let msg = format!("cloudlet {cloudlet}: the platform cannot start: {error}");
            match self.config.scope {
                Scope::Cloudlet(_) => self.fatal = Some(msg),
                Scope::Platform(_) => {
                    tracing::error!("{msg}");
                    self.engines.remove(&cloudlet);
                }
            }
            return;
        }
        let Some(e) = self.engines.get_mut(&cloudlet) else {
            return;
        };
        e.on_event(ev);
        e.reconcile(&self.objects.replica, self.synced);
        self.outbox.extend(e.take_reports());
        self.progress.extend(e.take_progress());
    }

    /// Hands each changed key to the engines it concerns.
    fn route_changes(&mut self) {
        let replica = &self.objects.replica;
        for key in std::mem::take(&mut self.objects.changed) {
            let cloudlet = match &key {
                ObjectKey::AppInst(k) => replica.app_inst(k).map(|i| &i.cloudlet),
                ObjectKey::ClusterInst(k) => replica.cluster_inst(k).map(|c| &c.cloudlet),
                // An App's instances wait for it; a flavor sizes clusters (both rare).
                ObjectKey::App(app) => {
                    for i in replica.app_insts().filter(|i| i.app == *app) {
                        if let Some(e) = self.engines.get_mut(&i.cloudlet) {
                            e.mark([ObjectKey::AppInst(i.key.clone())]);
                        }
                    }
                    continue;
                }
                ObjectKey::Flavor(_) => {
                    self.engines.values_mut().for_each(Engine::mark_all);
                    continue;
                }
                ObjectKey::Cloudlet(c) | ObjectKey::CloudletInfo(c) => {
                    if let Some(e) = self.engines.get_mut(c) {
                        e.mark_info();
                    }
                    continue;
                }
                _ => continue,
            };
            match cloudlet {
                Some(c) => {
                    if let Some(e) = self.engines.get_mut(c) {
                        e.mark([key]);
                    }
                }
                // Gone: whichever engine still runs it deletes it.
                None => {
                    for e in self.engines.values_mut() {
                        e.mark([key.clone()]);
                    }
                }
            }
        }
    }

    /// Starts an engine for every cloudlet in scope, drops those of cloudlets gone.
    fn sync_engines(&mut self) {
        let wanted: Vec<Cloudlet> = match &self.config.scope {
            Scope::Cloudlet(key) => match self.objects.replica.cloudlet(key) {
                Some(c) => vec![c.clone()],
                None => {
                    // The subscription is filtered to this cloudlet: the controller's snapshot
                    // is complete, and it has no such cloudlet.
                    self.fatal = Some(format!(
                        "cloudlet {key} does not exist in the region: check --cloudlet, or \
                         create the cloudlet first"
                    ));
                    return;
                }
            },
            Scope::Platform(p) => self
                .objects
                .replica
                .cloudlets()
                .filter(|c| c.platform_type == *p)
                .cloned()
                .collect(),
        };
        self.engines
            .retain(|k, _| wanted.iter().any(|c| c.key == *k));
        for c in wanted {
            if self.engines.contains_key(&c.key) {
                continue;
            }
            match (self.config.platforms)(&c) {
                Ok(platform) => {
                    tracing::info!(cloudlet = %c.key, platform = platform.kind(), "serving cloudlet");
                    let e = Engine::start(
                        c.key.clone(),
                        platform,
                        self.config.rootlb_address,
                        self.events_tx.clone(),
                    );
                    self.engines.insert(c.key, e);
                }
                Err(e) => {
                    let msg = format!("cloudlet {}: {e}", c.key);
                    match self.config.scope {
                        Scope::Cloudlet(_) => {
                            self.fatal = Some(msg);
                            return;
                        }
                        Scope::Platform(_) => tracing::error!("{msg}"),
                    }
                }
            }
        }
    }
}
