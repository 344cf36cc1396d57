//! Mirror → [`Tables`]: the incremental build (apps touched since the last build are rebuilt,
//! the others shared with the previous snapshot) and the one-shot build of a document.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use edge_model::{App, AppPort, CloudletKey, Deployment};
use geodata::{LatLon, SiteIndex};

use super::Mirror;
use crate::api_stats::AppStats;
use crate::tables::{
    AppTable, AuthKey, Bucket, BuildError, CloudletRec, Inst, InstIds, MatchSettings, NO_ID,
    Tables, Usable, Zones, is_usable,
};

impl Mirror {
    /// Builds a snapshot: apps changed since the last build are rebuilt, the others are shared
    /// with `prev`.
    pub fn build(&mut self, prev: Option<&Tables>, version: u64) -> Tables {
        let region = self.objects.settings().cloned().unwrap_or_default();
        let settings = MatchSettings::from_settings(&region);
        // Zones first: each cloudlet record carries its zone's answer JSON.
        let zones = Zones::build(
            self.objects.cloudlets().map(|c| {
                let state = self.cloudlet_states.get(&c.key).copied().unwrap_or(c.state);
                (c, state)
            }),
            self.objects.apps().map(|a| &a.key),
        );
        let mut ctx = BuildCtx {
            mirror: self,
            settings: &settings,
            zones: &zones,
            interner: Interner::default(),
            cloudlets: HashMap::new(),
        };
        let mut apps = hashbrown::HashMap::with_capacity(ctx.mirror.objects.apps().len());
        for app in ctx.mirror.objects.apps() {
            let key = &app.key;
            let clean = !ctx.mirror.dirty_all && !ctx.mirror.dirty_apps.contains(key);
            let prev_table = prev.and_then(|p| p.app_by_key(key));
            if let (true, Some(t)) = (clean, prev_table) {
                apps.insert(key.clone(), t.clone());
                continue;
            }
            // A rebuilt app keeps counting where its previous table left off.
            let stats = prev_table.map_or_else(Arc::default, |t| t.stats.clone());
            let table = ctx.build_app(app, stats);
            if let AuthKey::Invalid(reason) = &table.auth_key {
                tracing::warn!(app = %key, %reason, "unusable auth public key");
            }
            apps.insert(key.clone(), Arc::new(table));
        }
        if self.operator_codes_changed || prev.is_none() {
            let codes = self.objects.operator_codes();
            let codes = codes.map(|oc| (oc.code.clone(), oc.organization.clone()));
            self.last_operator_codes = Arc::new(codes.collect());
        }
        self.dirty_all = false;
        self.dirty_apps.clear();
        self.operator_codes_changed = false;
        let tables = Tables::assemble(
            version,
            apps,
            self.last_operator_codes.clone(),
            settings,
            region.network_location,
            Arc::new(zones),
            prev,
        );
        self.patch_states(&tables);
        tables
    }
}

/// Defined here rather than in `tables`, which knows nothing of how snapshots are made.
impl Tables {
    /// Builds the whole region from a validated deployment document. Strict: an app whose auth
    /// key is unusable rejects the document (a controller-fed mirror logs it instead).
    pub fn from_deployment(doc: &Deployment, version: u64) -> Result<Self, BuildError> {
        let mut mirror = Mirror::from_deployment(doc);
        let tables = mirror.build(None, version);
        for app in tables.apps() {
            if let AuthKey::Invalid(reason) = &app.auth_key {
                return Err(BuildError::AuthKey {
                    app: app.app.key.to_string(),
                    reason: reason.clone(),
                });
            }
        }
        Ok(tables)
    }
}

/// Per-build caches: cloudlet records shared by all instances on a cloudlet, interned strings.
struct BuildCtx<'m> {
    mirror: &'m Mirror,
    settings: &'m MatchSettings,
    zones: &'m Zones,
    interner: Interner,
    cloudlets: HashMap<&'m CloudletKey, Option<Arc<CloudletRec>>>,
}

impl<'m> BuildCtx<'m> {
    fn cloudlet(&mut self, key: &'m CloudletKey) -> Option<Arc<CloudletRec>> {
        let m = self.mirror;
        self.cloudlets
            .entry(key)
            .or_insert_with(|| {
                let c = m.objects.cloudlet(key)?;
                // Online state from CloudletInfo when a CRM reported one, else the object's own
                // (standalone documents state it directly).
                let state = m.cloudlet_states.get(key).copied().unwrap_or(c.state);
                Some(Arc::new(CloudletRec {
                    key: c.key.clone(),
                    location: c.location,
                    state,
                    maintenance: c.maintenance_state,
                    zone: self.zones.of(key).map(|z| z.json.clone()),
                }))
            })
            .clone()
    }

    fn build_app(&mut self, app: &App, stats: Arc<AppStats>) -> AppTable {
        let m = self.mirror;
        let keys = m.insts_by_app.get(&app.key);
        let mut recs = Vec::with_capacity(keys.map_or(0, BTreeSet::len));
        let mut usable_flags = Vec::with_capacity(recs.capacity());
        let mut local = LocalIds::default();
        let mut names = String::new();
        let mut own: HashMap<&str, Vec<(LatLon, u32)>> = HashMap::new();
        let mut allied: HashMap<&str, Vec<(LatLon, u32)>> = HashMap::new();
        for key in keys.into_iter().flatten() {
            let Some(inst) = m.objects.app_inst(key) else {
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
            let tag = crate::edge_cookie::inst_tag(&inst.key.organization, &inst.key.name);
            let rec = Inst::new(cloudlet, ids, tag);
            usable_flags.push(usable);

            own.entry(inst.cloudlet.organization.as_str())
                .or_default()
                .push((rec.location, id));
            if let Some(c) = m.objects.cloudlet(&inst.cloudlet) {
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
            stats,
            edge_tag: crate::edge_cookie::app_tag(
                &app.key.organization,
                &app.key.name,
                &app.key.version,
            ),
            by_tag: Default::default(),
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
