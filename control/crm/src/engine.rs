//! One cloudlet's CRM at run time: what it knows locally (the platform's inventory, the
//! operations running, the failures), the platform operations as tasks, and the reports and
//! progress lines waiting to go up. It asks [`crate::plan::decide`] what to do after every
//! change and carries that out; it decides nothing itself.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use edge_api::notify::Progress;
use edge_api::subscriber::Replica;
use edge_model::{
    AppInstKey, CloudletInfo, CloudletKey, CloudletState, ClusterKey, Object, ObjectKey,
};
use tokio::sync::mpsc;

use crate::plan::{self, Action, Failure, Local, Op};
use crate::platform::{ClusterStatus, Platform, PlatformInfo, ProgressSink};

/// What happened, sent to the subscriber's loop by tasks and the platform.
#[derive(Debug)]
pub enum Event {
    /// An operation ended.
    Done {
        cloudlet: CloudletKey,
        op: Box<Op>,
        result: Result<Option<ClusterStatus>, String>,
    },
    Progress {
        cloudlet: CloudletKey,
        key: ObjectKey,
        line: String,
    },
    /// The platform's health of an instance changed.
    Health(CloudletKey, AppInstKey),
    /// The platform's inventory, read once at start.
    Inventory {
        cloudlet: CloudletKey,
        clusters: Vec<(ClusterKey, ClusterStatus)>,
        insts: Vec<AppInstKey>,
        /// Not an inventory: only "look at everything again" (health changes were missed).
        full_only: bool,
    },
    Info {
        cloudlet: CloudletKey,
        info: PlatformInfo,
    },
    /// Reading the inventory or the info failed; the CRM cannot go on for this cloudlet.
    Fatal {
        cloudlet: CloudletKey,
        error: String,
    },
}

/// The CRM of one cloudlet.
pub struct Engine {
    pub cloudlet: CloudletKey,
    platform: Arc<dyn Platform>,
    rootlb_address: Option<IpAddr>,
    events: mpsc::UnboundedSender<Event>,
    busy: HashSet<ObjectKey>,
    clusters: HashMap<ClusterKey, ClusterStatus>,
    insts: HashSet<AppInstKey>,
    failed: HashMap<ObjectKey, Failure>,
    info: Option<PlatformInfo>,
    /// Nothing is decided before the inventory is known (it would create twice).
    ready: bool,
    /// Objects to decide about at the next reconcile (what changed since the last one).
    dirty: HashSet<ObjectKey>,
    /// Decide about everything at the next reconcile (a new connection, the inventory).
    full: bool,
    /// Compare the CloudletInfo to report with the controller's at the next reconcile.
    info_dirty: bool,
    outbox: Vec<Object>,
    progress: Vec<Progress>,
    /// What was reported on this connection, so a report is not repeated while the
    /// controller's answer is on its way.
    sent: HashMap<ObjectKey, Object>,
}

impl Engine {
    /// Starts reading the platform's inventory and info; decisions begin once it arrives.
    pub fn start(
        cloudlet: CloudletKey,
        platform: Arc<dyn Platform>,
        rootlb_address: Option<IpAddr>,
        events: mpsc::UnboundedSender<Event>,
    ) -> Self {
        let (p, tx, c) = (platform.clone(), events.clone(), cloudlet.clone());
        tokio::spawn(async move {
            let ev = match (p.inventory().await, p.info().await) {
                (Ok(inv), Ok(info)) => {
                    let _ = tx.send(Event::Info {
                        cloudlet: c.clone(),
                        info,
                    });
                    Event::Inventory {
                        cloudlet: c,
                        clusters: inv.clusters,
                        insts: inv.insts,
                        full_only: false,
                    }
                }
                (Err(e), _) | (_, Err(e)) => Event::Fatal {
                    cloudlet: c,
                    error: e.to_string(),
                },
            };
            let _ = tx.send(ev);
        });
        let mut changes = platform.health_changes();
        let (tx, c) = (events.clone(), cloudlet.clone());
        tokio::spawn(async move {
            loop {
                let key = match changes.recv().await {
                    Ok(key) => Some(key),
                    // Missed some: every instance is looked at again.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let ev = match key {
                    Some(k) => Event::Health(c.clone(), k),
                    None => Event::Inventory {
                        cloudlet: c.clone(),
                        clusters: Vec::new(),
                        insts: Vec::new(),
                        full_only: true,
                    },
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
        });
        Self {
            cloudlet,
            platform,
            rootlb_address,
            events,
            busy: HashSet::new(),
            clusters: HashMap::new(),
            insts: HashSet::new(),
            failed: HashMap::new(),
            info: None,
            ready: false,
            dirty: HashSet::new(),
            full: true,
            info_dirty: true,
            outbox: Vec::new(),
            progress: Vec::new(),
            sent: HashMap::new(),
        }
    }

    pub fn platform(&self) -> &Arc<dyn Platform> {
        &self.platform
    }

    /// A new connection: everything may need reporting again.
    pub fn connected(&mut self) {
        self.sent.clear();
        self.full = true;
    }

    /// Objects that changed: they are decided about at the next reconcile.
    pub fn mark(&mut self, keys: impl IntoIterator<Item = ObjectKey>) {
        self.dirty.extend(keys);
    }

    /// Decide about everything at the next reconcile.
    pub fn mark_all(&mut self) {
        self.full = true;
    }

    /// The controller's copy of the cloudlet (or its info) changed.
    pub fn mark_info(&mut self) {
        self.info_dirty = true;
    }

    /// Whether a reconcile has anything to do (so a CRM serving many cloudlets touches only
    /// those that changed).
    pub fn pending(&self) -> bool {
        self.ready && (self.full || self.info_dirty || !self.dirty.is_empty())
    }

    /// Applies an event about this cloudlet.
    pub fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Done { op, result, .. } => self.done(*op, result),
            Event::Progress { key, line, .. } => self.progress.push(Progress {
                key,
                message: line,
                error: false,
            }),
            Event::Health(_, key) => {
                self.dirty.insert(ObjectKey::AppInst(key));
            }
            Event::Fatal { .. } => {}
            Event::Inventory {
                full_only: true, ..
            } => self.full = true,
            Event::Inventory {
                clusters, insts, ..
            } => {
                self.clusters = clusters.into_iter().collect();
                self.insts = insts.into_iter().collect();
                self.ready = true;
                self.full = true;
            }
            Event::Info { info, .. } => {
                self.info = Some(info);
                self.info_dirty = true;
            }
        }
    }

    fn done(&mut self, op: Op, result: Result<Option<ClusterStatus>, String>) {
        let key = op.key();
        self.busy.remove(&key);
        self.dirty.insert(key.clone());
        if matches!(key, ObjectKey::ClusterInst(_)) {
            // Instances may have been waiting for this cluster (clusters are few).
            self.full = true;
        }
        let (_, error_state) = op.states();
        match (result, op) {
            (Err(reason), _) => {
                tracing::warn!(cloudlet = %self.cloudlet, object = %key, %reason, "operation failed");
                self.failed.insert(
                    key,
                    Failure {
                        state: error_state,
                        reason,
                    },
                );
            }
            (Ok(status), Op::CreateCluster(s) | Op::UpdateCluster(s)) => {
                if let Some(st) = status {
                    self.clusters.insert(s.key, st);
                }
            }
            (Ok(_), Op::DeleteCluster(k)) => {
                self.clusters.remove(&k);
            }
            (Ok(_), Op::CreateInst(s) | Op::UpdateInst(s)) => {
                self.insts.insert(s.key);
            }
            (Ok(_), Op::DeleteInst(k)) => {
                self.insts.remove(&k);
            }
        }
        self.refresh_info();
    }

    /// Decides and acts on what the controller wants now (`synced`: its snapshot is complete).
    pub fn reconcile(&mut self, want: &Replica, synced: bool) {
        if !self.ready {
            return;
        }
        if self.info_dirty || self.full {
            self.cloudlet_info(want);
            self.info_dirty = false;
        }
        if !self.full && self.dirty.is_empty() {
            return;
        }
        let platform = self.platform.clone();
        let health = |k: &AppInstKey| platform.health(k);
        let local = Local {
            busy: &self.busy,
            clusters: &self.clusters,
            insts: &self.insts,
            failed: &self.failed,
            health: &health,
            synced,
        };
        let actions = if self.full {
            plan::decide(&self.cloudlet, want, &local)
        } else {
            let keys: Vec<ObjectKey> = self.dirty.iter().cloned().collect();
            plan::decide_for(&self.cloudlet, want, &local, &keys)
        };
        self.full = false;
        self.dirty.clear();
        for a in actions {
            match a {
                Action::Start(op) => self.spawn(op),
                Action::Report { object, error } => self.report(object, error),
                Action::Forget(key) => {
                    self.failed.remove(&key);
                }
            }
        }
    }

    /// Reports the cloudlet READY with what the platform offers, when the controller's copy
    /// differs.
    fn cloudlet_info(&mut self, want: &Replica) {
        let Some(info) = &self.info else {
            return;
        };
        let mine = CloudletInfo {
            rootlb_address: self.rootlb_address,
            flavors: info.flavors.clone(),
            resources: info.resources,
            ..CloudletInfo::with_state(self.cloudlet.clone(), CloudletState::Ready)
        };
        let same = want.cloudlet_info(&self.cloudlet).is_some_and(|c| {
            CloudletInfo {
                notify_id: 0,
                errors: Vec::new(),
                ..c.clone()
            } == mine
        });
        if !same {
            self.report(Object::CloudletInfo(mine), None);
        }
    }

    fn report(&mut self, object: Object, error: Option<String>) {
        let key = object.key();
        if self.sent.get(&key) == Some(&object) {
            return;
        }
        if let Some(reason) = error {
            self.progress.push(Progress {
                key: key.clone(),
                message: reason,
                error: true,
            });
        }
        self.sent.insert(key, object.clone());
        self.outbox.push(object);
    }

    fn spawn(&mut self, op: Op) {
        let key = op.key();
        if !self.busy.insert(key.clone()) {
            return;
        }
        tracing::info!(cloudlet = %self.cloudlet, object = %key, op = ?std::mem::discriminant(&op), "starting");
        let (platform, events, cloudlet) = (
            self.platform.clone(),
            self.events.clone(),
            self.cloudlet.clone(),
        );
        tokio::spawn(async move {
            let sink = Relay {
                events: events.clone(),
                cloudlet: cloudlet.clone(),
                key,
            };
            let result = run_op(platform.as_ref(), &op, &sink).await;
            let _ = events.send(Event::Done {
                cloudlet,
                op: Box::new(op),
                result,
            });
        });
    }

    fn refresh_info(&self) {
        let (p, tx, c) = (
            self.platform.clone(),
            self.events.clone(),
            self.cloudlet.clone(),
        );
        tokio::spawn(async move {
            if let Ok(info) = p.info().await {
                let _ = tx.send(Event::Info { cloudlet: c, info });
            }
        });
    }

    pub fn take_reports(&mut self) -> Vec<Object> {
        std::mem::take(&mut self.outbox)
    }

    pub fn take_progress(&mut self) -> Vec<Progress> {
        std::mem::take(&mut self.progress)
    }

    /// Operations running now.
    pub fn busy(&self) -> usize {
        self.busy.len()
    }
}

async fn run_op(
    p: &dyn Platform,
    op: &Op,
    sink: &dyn ProgressSink,
) -> Result<Option<ClusterStatus>, String> {
    let r = match op {
        Op::CreateCluster(s) => p.create_cluster(s, sink).await.map(Some),
        Op::UpdateCluster(s) => p.update_cluster(s, sink).await.map(Some),
        Op::DeleteCluster(k) => p.delete_cluster(k, sink).await.map(|()| None),
        Op::CreateInst(s) => p.create_app_inst(s, sink).await.map(|()| None),
        Op::UpdateInst(s) => p.update_app_inst(s, sink).await.map(|()| None),
        Op::DeleteInst(k) => p.delete_app_inst(k, sink).await.map(|()| None),
    };
    r.map_err(|e| e.to_string())
}

/// Progress lines of one operation, as events.
struct Relay {
    events: mpsc::UnboundedSender<Event>,
    cloudlet: CloudletKey,
    key: ObjectKey,
}

impl ProgressSink for Relay {
    fn line(&self, line: String) {
        let _ = self.events.send(Event::Progress {
            cloudlet: self.cloudlet.clone(),
            key: self.key.clone(),
            line,
        });
    }
}

impl Event {
    pub fn cloudlet(&self) -> &CloudletKey {
        match self {
            Self::Done { cloudlet, .. }
            | Self::Progress { cloudlet, .. }
            | Self::Inventory { cloudlet, .. }
            | Self::Info { cloudlet, .. }
            | Self::Fatal { cloudlet, .. } => cloudlet,
            Self::Health(c, _) => c,
        }
    }
}
