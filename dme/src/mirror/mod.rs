//! The DME's copy of the region's objects, kept up to date object by object (from a document or
//! the controller's notify stream), and the incremental build of table snapshots from it: only
//! apps touched since the last build are rebuilt; every other app's table is shared with the
//! previous snapshot.
//!
//! The objects themselves sit in the notify subscribers' shared [`Replica`]; the mirror adds the
//! indexes a build needs (instances by app, apps by cloudlet, each cloudlet's reported state)
//! and what changed since the last build. [`build`] turns it into [`Tables`].
//!
//! Fixes upstream defects by construction: an instance's health is always the object's own
//! (a newly learned failing instance is not treated as healthy); a cloudlet's online state comes
//! from its CloudletInfo and its maintenance state from the Cloudlet object, so neither clobbers
//! the other; a CloudletInfo that arrives before its Cloudlet is kept, not dropped.

mod build;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use edge_api::subscriber::{Apply, Replica};
use edge_model::{
    App, AppInst, AppInstKey, AppKey, Cloudlet, CloudletInfo, CloudletKey, CloudletState,
    Deployment, HealthCheck, MaintenanceState, Object, ObjectKey, Settings,
};

use crate::edge_events::Change;
use crate::tables::{AppKeyRef, Tables, is_usable};

/// The region as last told, plus what changed since the last build.
#[derive(Default)]
pub struct Mirror {
    objects: Replica,
    /// Each cloudlet's online state as its CRM reported it (CloudletInfo); `NotPresent` once
    /// that report is deleted, which is not the same as never having had one.
    cloudlet_states: HashMap<CloudletKey, CloudletState>,
    insts_by_app: HashMap<AppKey, BTreeSet<AppInstKey>>,
    /// Apps with instances on each cloudlet, with instance counts.
    apps_by_cloudlet: HashMap<CloudletKey, HashMap<AppKey, u32>>,
    dirty_all: bool,
    dirty_apps: HashSet<AppKey>,
    /// Instances whose state or health alone changed: patched in place, no rebuild.
    state_changes: Vec<AppInstKey>,
    operator_codes_changed: bool,
    last_operator_codes: Arc<HashMap<String, String>>,
    /// What edge-events streams may need to hear of, since the last [`Mirror::take_changes`].
    changes: Vec<Change>,
}

/// A cloudlet's online and maintenance state as instances on it see them.
type Condition = (CloudletState, MaintenanceState);

impl Mirror {
    pub fn new() -> Self {
        Self {
            dirty_all: true,
            operator_codes_changed: true,
            ..Self::default()
        }
    }

    /// A mirror holding everything in a document (cloudlet states from the document).
    pub fn from_deployment(doc: &Deployment) -> Self {
        let mut m = Self::new();
        m.set_settings(doc.settings.clone());
        for oc in &doc.operator_codes {
            m.apply(Object::OperatorCode(oc.clone()));
        }
        for c in &doc.cloudlets {
            m.upsert_cloudlet(c.clone());
        }
        for a in &doc.apps {
            m.upsert_app(a.clone());
        }
        for i in &doc.app_insts {
            m.upsert_inst(i.clone());
        }
        // Nothing listens yet: a document is the starting point, not a change.
        m.changes.clear();
        m
    }

    /// The changes applied since the last call, for the edge-events streams.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// The cloudlet's effective state: its CRM's report if any, else the object's own.
    fn condition(&self, key: &CloudletKey) -> Option<Condition> {
        let c = self.objects.cloudlet(key)?;
        let state = self.cloudlet_states.get(key).copied().unwrap_or(c.state);
        Some((state, c.maintenance_state))
    }

    fn inst_usable(&self, inst: &AppInst) -> bool {
        self.condition(&inst.cloudlet)
            .is_some_and(|(s, m)| is_usable(inst.state, inst.health, s, m))
    }

    /// The instances on a cloudlet.
    fn insts_on(&self, key: &CloudletKey) -> Vec<&AppInst> {
        let apps = self.apps_by_cloudlet.get(key).into_iter().flatten();
        apps.flat_map(|(app, _)| self.insts_by_app.get(app).into_iter().flatten())
            .filter_map(|k| self.objects.app_inst(k))
            .filter(|i| i.cloudlet == *key)
            .collect()
    }

    /// Records what a cloudlet's change from `before` means for streams.
    fn cloudlet_changed(
        &mut self,
        key: &CloudletKey,
        before: Option<Condition>,
        after: Option<Condition>,
    ) {
        let cloudlet = key.clone();
        let ready = |c: Option<Condition>| {
            c.is_some_and(|(s, m)| {
                s == CloudletState::Ready && m != MaintenanceState::UnderMaintenance
            })
        };
        match (before, after) {
            (Some(_), None) => self.changes.push(Change::CloudletState {
                cloudlet,
                state: CloudletState::NotPresent,
            }),
            (Some((bs, bm)), Some((s, m))) => {
                if s != bs && s != CloudletState::Ready {
                    self.changes.push(Change::CloudletState {
                        cloudlet: cloudlet.clone(),
                        state: s,
                    });
                }
                if m != bm && m != MaintenanceState::NormalOperation {
                    self.changes
                        .push(Change::Maintenance { cloudlet, state: m });
                }
            }
            (None, _) => {}
        }
        if !ready(before) && ready(after) {
            let available: Vec<Change> = self
                .insts_on(key)
                .into_iter()
                .filter(|i| self.inst_usable(i))
                .map(|i| Change::Available {
                    app: i.app.clone(),
                    inst: i.key.clone(),
                })
                .collect();
            self.changes.extend(available);
        }
    }

    /// The objects held.
    pub fn objects(&self) -> &Replica {
        &self.objects
    }

    pub fn set_settings(&mut self, settings: Settings) {
        if self.objects.settings() != Some(&settings) {
            self.objects.insert(Object::Settings(settings));
            self.dirty_all = true;
        }
    }

    fn touch_cloudlet(&mut self, key: &CloudletKey) {
        if let Some(apps) = self.apps_by_cloudlet.get(key) {
            self.dirty_apps.extend(apps.keys().cloned());
        }
    }

    pub fn upsert_cloudlet(&mut self, c: Cloudlet) {
        let key = c.key.clone();
        let before = self.condition(&key);
        self.touch_cloudlet(&key);
        self.objects.insert(Object::Cloudlet(c));
        self.cloudlet_changed(&key, before, self.condition(&key));
    }

    pub fn remove_cloudlet(&mut self, key: &CloudletKey) {
        let before = self.condition(key);
        self.touch_cloudlet(key);
        self.objects.remove(&ObjectKey::Cloudlet(key.clone()));
        self.cloudlet_changed(key, before, None);
    }

    /// The cloudlet's online state as its CRM reports it (CloudletInfo).
    pub fn set_cloudlet_state(&mut self, key: &CloudletKey, state: CloudletState) {
        self.upsert_cloudlet_info(CloudletInfo::with_state(key.clone(), state));
    }

    fn upsert_cloudlet_info(&mut self, info: CloudletInfo) {
        let key = info.key.clone();
        let before = self.condition(&key);
        self.touch_cloudlet(&key);
        self.cloudlet_states.insert(key.clone(), info.state);
        self.objects.insert(Object::CloudletInfo(info));
        self.cloudlet_changed(&key, before, self.condition(&key));
    }

    /// CloudletInfo deleted: the cloudlet counts as not present.
    pub fn remove_cloudlet_state(&mut self, key: &CloudletKey) {
        let before = self.condition(key);
        self.touch_cloudlet(key);
        self.cloudlet_states
            .insert(key.clone(), CloudletState::NotPresent);
        self.objects.remove(&ObjectKey::CloudletInfo(key.clone()));
        self.cloudlet_changed(key, before, self.condition(key));
    }

    pub fn upsert_app(&mut self, app: App) {
        self.dirty_apps.insert(app.key.clone());
        self.objects.insert(Object::App(app));
    }

    pub fn remove_app(&mut self, key: &AppKey) {
        self.dirty_apps.insert(key.clone());
        self.objects.remove(&ObjectKey::App(key.clone()));
    }

    pub fn upsert_inst(&mut self, inst: AppInst) {
        let usable = self.inst_usable(&inst);
        if let Some(old) = self.objects.app_inst(&inst.key)
            && same_placement(old, &inst)
        {
            let was_usable = self.inst_usable(old);
            if old.health != inst.health && inst.health != HealthCheck::Ok || was_usable && !usable
            {
                self.changes.push(Change::Health {
                    inst: inst.key.clone(),
                    health: inst.health,
                });
            }
            if !was_usable && usable {
                self.changes.push(Change::Available {
                    app: inst.app.clone(),
                    inst: inst.key.clone(),
                });
            }
            if old.state != inst.state || old.health != inst.health {
                self.state_changes.push(inst.key.clone());
            }
            self.objects.insert(Object::AppInst(inst));
            return;
        }
        self.remove_inst(&inst.key.clone());
        if usable {
            self.changes.push(Change::Available {
                app: inst.app.clone(),
                inst: inst.key.clone(),
            });
        }
        self.dirty_apps.insert(inst.app.clone());
        self.insts_by_app
            .entry(inst.app.clone())
            .or_default()
            .insert(inst.key.clone());
        *self
            .apps_by_cloudlet
            .entry(inst.cloudlet.clone())
            .or_default()
            .entry(inst.app.clone())
            .or_default() += 1;
        self.objects.insert(Object::AppInst(inst));
    }

    pub fn remove_inst(&mut self, key: &AppInstKey) {
        let Some(Object::AppInst(old)) = self.objects.remove(&ObjectKey::AppInst(key.clone()))
        else {
            return;
        };
        self.changes.push(Change::Health {
            inst: key.clone(),
            health: HealthCheck::ServerFail,
        });
        self.dirty_apps.insert(old.app.clone());
        if let Some(set) = self.insts_by_app.get_mut(&old.app) {
            set.remove(key);
            if set.is_empty() {
                self.insts_by_app.remove(&old.app);
            }
        }
        if let Some(apps) = self.apps_by_cloudlet.get_mut(&old.cloudlet) {
            if let Some(n) = apps.get_mut(&old.app) {
                *n -= 1;
                if *n == 0 {
                    apps.remove(&old.app);
                }
            }
            if apps.is_empty() {
                self.apps_by_cloudlet.remove(&old.cloudlet);
            }
        }
    }

    /// Applies one object as the controller sent it. Kinds the DME does not use are ignored.
    pub fn apply(&mut self, obj: Object) {
        match obj {
            Object::Settings(s) => self.set_settings(s),
            Object::OperatorCode(oc) => {
                self.objects.insert(Object::OperatorCode(oc));
                self.operator_codes_changed = true;
            }
            Object::Cloudlet(c) => self.upsert_cloudlet(c),
            Object::CloudletInfo(i) => self.upsert_cloudlet_info(i),
            Object::App(a) => self.upsert_app(a),
            Object::AppInst(i) => self.upsert_inst(i),
            Object::Flavor(_) | Object::ClusterInst(_) => {}
        }
    }

    /// Removes one object.
    pub fn remove(&mut self, key: &ObjectKey) {
        match key {
            ObjectKey::Settings => self.set_settings(Settings::default()),
            ObjectKey::OperatorCode(_) => {
                if self.objects.remove(key).is_some() {
                    self.operator_codes_changed = true;
                }
            }
            ObjectKey::Cloudlet(k) => self.remove_cloudlet(k),
            ObjectKey::CloudletInfo(k) => self.remove_cloudlet_state(k),
            ObjectKey::App(k) => self.remove_app(k),
            ObjectKey::AppInst(k) => self.remove_inst(k),
            ObjectKey::Flavor(_) | ObjectKey::ClusterInst(_) => {}
        }
    }

    pub fn inst_count(&self) -> usize {
        self.objects.app_insts().len()
    }

    /// Whether anything changed since the last build.
    pub fn is_dirty(&self) -> bool {
        self.dirty_all
            || !self.dirty_apps.is_empty()
            || self.operator_codes_changed
            || !self.state_changes.is_empty()
    }

    /// Patches the usability of instances whose state or health changed into `tables` (tables
    /// of apps rebuilt in this round are fresh already).
    fn patch_states(&mut self, tables: &Tables) {
        for key in std::mem::take(&mut self.state_changes) {
            let Some(inst) = self.objects.app_inst(&key) else {
                continue;
            };
            let app = AppKeyRef {
                organization: &inst.app.organization,
                name: &inst.app.name,
                version: &inst.app.version,
            };
            let Some(table) = tables.app(&app) else {
                continue;
            };
            let Some(id) = table.inst_id(&key.organization, &key.name) else {
                continue;
            };
            let c = &table.insts[id as usize].cloudlet;
            let usable = is_usable(inst.state, inst.health, c.state, c.maintenance);
            table.usable.set(id, usable);
        }
    }
}

/// The notify session's view of the mirror. An object stored again unchanged changes nothing,
/// so a batch of re-sent values is acknowledged without a build.
impl Apply for Mirror {
    fn upsert(&mut self, object: Object) -> bool {
        if self.objects.holds(&object) {
            return false;
        }
        self.apply(object);
        true
    }

    fn remove(&mut self, key: &ObjectKey) -> bool {
        // Settings are never absent to the DME: removing them restores the defaults.
        let held = *key == ObjectKey::Settings || self.objects.contains_key(key);
        Mirror::remove(self, key);
        held
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.objects.keys()
    }
}

/// Whether two versions of an instance sit in the same place in the tables (only their state
/// or health may differ).
fn same_placement(a: &AppInst, b: &AppInst) -> bool {
    a.app == b.app
        && a.cloudlet == b.cloudlet
        && a.cluster == b.cluster
        && a.uri == b.uri
        && a.mapped_ports == b.mapped_ports
}

#[cfg(test)]
mod tests;
