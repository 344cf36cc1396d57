//! The DME's copy of the region's objects, kept up to date object by object (from a document or
//! the controller's notify stream), and the incremental build of table snapshots from it: only
//! apps touched since the last build are rebuilt; every other app's table is shared with the
//! previous snapshot.
//!
//! Fixes upstream defects by construction: an instance's health is always the object's own
//! (a newly learned failing instance is not treated as healthy); a cloudlet's online state comes
//! from its CloudletInfo and its maintenance state from the Cloudlet object, so neither clobbers
//! the other; a CloudletInfo that arrives before its Cloudlet is kept, not dropped.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use edge_model::{
    App, AppInst, AppInstKey, AppKey, AppPort, Cloudlet, CloudletKey, CloudletState, Deployment,
    Object, ObjectKey, OperatorCode, Settings,
};
use geodata::{LatLon, SiteIndex};

use crate::tables::{
    AppTable, AuthKey, Bucket, CloudletRec, Inst, InstIds, MatchSettings, NO_ID, Tables, Usable,
    is_usable,
};

/// The region as last told, plus what changed since the last build.
#[derive(Default)]
pub struct Mirror {
    settings: Settings,
    operator_codes: HashMap<String, String>,
    cloudlets: HashMap<CloudletKey, Cloudlet>,
    cloudlet_states: HashMap<CloudletKey, CloudletState>,
    apps: HashMap<AppKey, App>,
    insts: HashMap<AppInstKey, AppInst>,
    insts_by_app: HashMap<AppKey, BTreeSet<AppInstKey>>,
    /// Apps with instances on each cloudlet, with instance counts.
    apps_by_cloudlet: HashMap<CloudletKey, HashMap<AppKey, u32>>,
    dirty_all: bool,
    dirty_apps: HashSet<AppKey>,
    /// Instances whose state or health alone changed: patched in place, no rebuild.
    state_changes: Vec<AppInstKey>,
    operator_codes_changed: bool,
    last_operator_codes: Arc<HashMap<String, String>>,
}

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
            m.upsert_operator_code(oc.clone());
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
        m
    }

    pub fn set_settings(&mut self, settings: Settings) {
        if self.settings != settings {
            self.settings = settings;
            self.dirty_all = true;
        }
    }

    pub fn upsert_operator_code(&mut self, oc: OperatorCode) {
        self.operator_codes.insert(oc.code, oc.organization);
        self.operator_codes_changed = true;
    }

    pub fn remove_operator_code(&mut self, code: &str) {
        if self.operator_codes.remove(code).is_some() {
            self.operator_codes_changed = true;
        }
    }

    fn touch_cloudlet(&mut self, key: &CloudletKey) {
        if let Some(apps) = self.apps_by_cloudlet.get(key) {
            self.dirty_apps.extend(apps.keys().cloned());
        }
    }

    pub fn upsert_cloudlet(&mut self, c: Cloudlet) {
        self.touch_cloudlet(&c.key);
        self.cloudlets.insert(c.key.clone(), c);
    }

    pub fn remove_cloudlet(&mut self, key: &CloudletKey) {
        self.touch_cloudlet(key);
        self.cloudlets.remove(key);
    }

    /// The cloudlet's online state as its CRM reports it (CloudletInfo).
    pub fn set_cloudlet_state(&mut self, key: &CloudletKey, state: CloudletState) {
        self.touch_cloudlet(key);
        self.cloudlet_states.insert(key.clone(), state);
    }

    /// CloudletInfo deleted: the cloudlet counts as not present.
    pub fn remove_cloudlet_state(&mut self, key: &CloudletKey) {
        self.touch_cloudlet(key);
        self.cloudlet_states
            .insert(key.clone(), CloudletState::NotPresent);
    }

    pub fn upsert_app(&mut self, app: App) {
        self.dirty_apps.insert(app.key.clone());
        self.apps.insert(app.key.clone(), app);
    }

    pub fn remove_app(&mut self, key: &AppKey) {
        self.dirty_apps.insert(key.clone());
        self.apps.remove(key);
    }

    pub fn upsert_inst(&mut self, inst: AppInst) {
        if let Some(old) = self.insts.get_mut(&inst.key)
            && same_placement(old, &inst)
        {
            if old.state != inst.state || old.health != inst.health {
                self.state_changes.push(inst.key.clone());
            }
            *old = inst;
            return;
        }
        self.remove_inst(&inst.key.clone());
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
        self.insts.insert(inst.key.clone(), inst);
    }

    pub fn remove_inst(&mut self, key: &AppInstKey) {
        let Some(old) = self.insts.remove(key) else {
            return;
        };
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
            Object::OperatorCode(oc) => self.upsert_operator_code(oc),
            Object::Cloudlet(c) => self.upsert_cloudlet(c),
            Object::CloudletInfo(i) => self.set_cloudlet_state(&i.key, i.state),
            Object::App(a) => self.upsert_app(a),
            Object::AppInst(i) => self.upsert_inst(i),
            Object::Flavor(_) | Object::ClusterInst(_) => {}
        }
    }

    /// Removes one object.
    pub fn remove(&mut self, key: &ObjectKey) {
        match key {
            ObjectKey::Settings => self.set_settings(Settings::default()),
            ObjectKey::OperatorCode(code) => self.remove_operator_code(code),
            ObjectKey::Cloudlet(k) => self.remove_cloudlet(k),
            ObjectKey::CloudletInfo(k) => self.remove_cloudlet_state(k),
            ObjectKey::App(k) => self.remove_app(k),
            ObjectKey::AppInst(k) => self.remove_inst(k),
            ObjectKey::Flavor(_) | ObjectKey::ClusterInst(_) => {}
        }
    }

    /// Every key held now, so a resync can prune what the controller no longer has.
    pub fn keys(&self) -> Vec<ObjectKey> {
        let mut out = vec![ObjectKey::Settings];
        out.extend(
            self.operator_codes
                .keys()
                .cloned()
                .map(ObjectKey::OperatorCode),
        );
        out.extend(self.cloudlets.keys().cloned().map(ObjectKey::Cloudlet));
        out.extend(
            self.cloudlet_states
                .iter()
                .filter(|(_, s)| **s != CloudletState::NotPresent)
                .map(|(k, _)| ObjectKey::CloudletInfo(k.clone())),
        );
        out.extend(self.apps.keys().cloned().map(ObjectKey::App));
        out.extend(self.insts.keys().cloned().map(ObjectKey::AppInst));
        out
    }

    pub fn inst_count(&self) -> usize {
        self.insts.len()
    }

    /// Forces the next build to publish (e.g. after a resync that changed nothing).
    pub fn mark_dirty(&mut self) {
        self.operator_codes_changed = true;
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
            let Some(inst) = self.insts.get(&key) else {
                continue;
            };
            let app = crate::tables::AppKeyRef {
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

    /// Builds a snapshot: apps changed since the last build are rebuilt, the others are shared
    /// with `prev`.
    pub fn build(&mut self, prev: Option<&Tables>, version: u64) -> Tables {
        let settings = MatchSettings::from_settings(&self.settings);
        let mut ctx = BuildCtx {
            mirror: self,
            settings: &settings,
            interner: Interner::default(),
            cloudlets: HashMap::new(),
        };
        let mut apps = hashbrown::HashMap::with_capacity(ctx.mirror.apps.len());
        for (key, app) in &ctx.mirror.apps {
            let clean = !ctx.mirror.dirty_all && !ctx.mirror.dirty_apps.contains(key);
            if let (true, Some(t)) = (clean, prev.and_then(|p| p.app_by_key(key))) {
                apps.insert(key.clone(), t.clone());
                continue;
            }
            let table = ctx.build_app(app);
            if let AuthKey::Invalid(reason) = &table.auth_key {
                tracing::warn!(app = %key, %reason, "unusable auth public key");
            }
            apps.insert(key.clone(), Arc::new(table));
        }
        if self.operator_codes_changed || prev.is_none() {
            self.last_operator_codes = Arc::new(self.operator_codes.clone());
        }
        self.dirty_all = false;
        self.dirty_apps.clear();
        self.operator_codes_changed = false;
        let tables = Tables::assemble(
            version,
            apps,
            self.last_operator_codes.clone(),
            settings,
            self.settings.network_location.clone(),
        );
        self.patch_states(&tables);
        tables
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

/// Per-build caches: cloudlet records shared by all instances on a cloudlet, interned strings.
struct BuildCtx<'m> {
    mirror: &'m Mirror,
    settings: &'m MatchSettings,
    interner: Interner,
    cloudlets: HashMap<&'m CloudletKey, Option<Arc<CloudletRec>>>,
}

impl<'m> BuildCtx<'m> {
    fn cloudlet(&mut self, key: &'m CloudletKey) -> Option<Arc<CloudletRec>> {
        let m = self.mirror;
        self.cloudlets
            .entry(key)
            .or_insert_with(|| {
                let c = m.cloudlets.get(key)?;
                // Online state from CloudletInfo when a CRM reported one, else the object's own
                // (standalone documents state it directly).
                let state = m.cloudlet_states.get(key).copied().unwrap_or(c.state);
                Some(Arc::new(CloudletRec {
                    key: c.key.clone(),
                    location: c.location,
                    state,
                    maintenance: c.maintenance_state,
                }))
            })
            .clone()
    }

    fn build_app(&mut self, app: &App) -> AppTable {
        let m = self.mirror;
        let keys = m.insts_by_app.get(&app.key);
        let mut recs = Vec::with_capacity(keys.map_or(0, BTreeSet::len));
        let mut usable_flags = Vec::with_capacity(recs.capacity());
        let mut local = LocalIds::default();
        let mut names = String::new();
        let mut own: HashMap<&str, Vec<(LatLon, u32)>> = HashMap::new();
        let mut allied: HashMap<&str, Vec<(LatLon, u32)>> = HashMap::new();
        for key in keys.into_iter().flatten() {
            let Some(inst) = m.insts.get(key) else {
                continue;
            };
            // An instance on a cloudlet the DME does not know cannot be located: skip it.
            let Some(cloudlet) = self.cloudlet(&inst.cloudlet) else {
                continue;
            };
            let Ok(id) = u32::try_from(recs.len()) else {
                break;
            };
            let usable = is_usable(
                inst.state,
                inst.health,
                cloudlet.state,
                cloudlet.maintenance,
            );
            // Names and URIs longer than the arena's 16-bit lengths are not plausible.
            let (Ok(name_len), Ok(uri_len)) = (
                u16::try_from(inst.key.name.len()),
                u16::try_from(inst.uri.len()),
            ) else {
                tracing::warn!(inst = %inst.key, "instance name or URI too long to serve; skipped");
                continue;
            };
            let name_at = u32::try_from(names.len()).unwrap_or(u32::MAX);
            names.push_str(&inst.key.name);
            names.push_str(&inst.uri);
            let ids = InstIds {
                name_at,
                name_len,
                uri_len,
                organization: local.str(self.interner.str(&inst.key.organization)),
                cluster: inst
                    .cluster
                    .as_deref()
                    .map_or(NO_ID, |c| local.str(self.interner.str(c))),
                ports: local.ports(self.interner.ports(&inst.mapped_ports)),
            };
            let rec = Inst::new(cloudlet, ids);
            usable_flags.push(usable);

            own.entry(inst.cloudlet.organization.as_str())
                .or_default()
                .push((rec.location, id));
            if let Some(c) = m.cloudlets.get(&inst.cloudlet) {
                for org in &c.alliance_orgs {
                    allied
                        .entry(org.as_str())
                        .or_default()
                        .push((rec.location, id));
                }
            }
            recs.push(rec);
        }
        let mut orgs: Vec<&str> = own.keys().chain(allied.keys()).copied().collect();
        orgs.sort_unstable();
        orgs.dedup();
        let buckets = orgs
            .into_iter()
            .map(|org| Bucket {
                org: org.into(),
                public_cloud: self.settings.is_public_cloud(org),
                own: SiteIndex::build(own.remove(org).unwrap_or_default()),
                alliance: SiteIndex::build(allied.remove(org).unwrap_or_default()),
            })
            .collect();
        AppTable {
            app: app.clone(),
            auth_key: AuthKey::parse(app.auth_public_key.as_deref()),
            insts: recs,
            usable: Usable::from_flags(&usable_flags),
            buckets,
            strs: local.strs,
            port_lists: local.port_lists,
            names,
        }
    }
}

/// An app table's own list of shared strings and port lists, with the ids instances use.
#[derive(Default)]
struct LocalIds {
    strs: Vec<Arc<str>>,
    str_ids: HashMap<Arc<str>, u32>,
    port_lists: Vec<Arc<[AppPort]>>,
    port_ids: HashMap<Arc<[AppPort]>, u32>,
}

impl LocalIds {
    fn str(&mut self, s: Arc<str>) -> u32 {
        if let Some(&id) = self.str_ids.get(&s) {
            return id;
        }
        let id = u32::try_from(self.strs.len()).unwrap_or(NO_ID);
        self.strs.push(s.clone());
        self.str_ids.insert(s, id);
        id
    }

    fn ports(&mut self, p: Arc<[AppPort]>) -> u32 {
        if let Some(&id) = self.port_ids.get(&p) {
            return id;
        }
        let id = u32::try_from(self.port_lists.len()).unwrap_or(NO_ID);
        self.port_lists.push(p.clone());
        self.port_ids.insert(p, id);
        id
    }
}

/// Shares equal strings and port lists between instances while a snapshot is built.
#[derive(Default)]
struct Interner {
    strs: HashMap<Box<str>, Arc<str>>,
    ports: HashMap<Vec<AppPort>, Arc<[AppPort]>>,
}

impl Interner {
    fn str(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strs.get(s) {
            return a.clone();
        }
        let a: Arc<str> = s.into();
        self.strs.insert(s.into(), a.clone());
        a
    }

    fn ports(&mut self, p: &[AppPort]) -> Arc<[AppPort]> {
        if let Some(a) = self.ports.get(p) {
            return a.clone();
        }
        let a: Arc<[AppPort]> = p.into();
        self.ports.insert(p.to_vec(), a.clone());
        a
    }
}
