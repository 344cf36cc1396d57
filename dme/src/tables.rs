//! The DME's in-memory tables: one immutable snapshot per app (instances plus per-carrier spatial
//! indexes), gathered in a region snapshot that is published with one atomic swap. Readers load
//! the current snapshot without locks; writers build a new one off the hot path.

use std::collections::HashMap;
use std::sync::Arc;

use edge_model::{
    App, AppInst, AppKey, AppPort, Cloudlet, CloudletKey, CloudletState, Deployment, HealthCheck,
    MaintenanceState, NetworkLocation, Settings, TrackedState,
};
use geodata::{LatLon, SiteIndex};

/// Matching knobs taken from the region's settings.
#[derive(Clone, Debug)]
pub struct MatchSettings {
    /// Cloudlet organizations treated as public clouds (always searched, padded).
    pub public_cloud_orgs: Vec<Box<str>>,
    /// Added to a public cloud's distance when the client names another carrier.
    pub public_cloud_padding_km: f64,
    /// Candidates closer together than this share load at random.
    pub very_close_km: f64,
    /// False: the nearer candidate always wins (deterministic tests).
    pub randomize_very_close: bool,
}

impl MatchSettings {
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            public_cloud_orgs: s
                .public_cloud_orgs
                .iter()
                .map(|o| o.as_str().into())
                .collect(),
            public_cloud_padding_km: s.public_cloud_padding_km,
            very_close_km: s.very_close_km,
            randomize_very_close: s.randomize_very_close,
        }
    }

    pub fn is_public_cloud(&self, org: &str) -> bool {
        self.public_cloud_orgs.iter().any(|o| &**o == org)
    }
}

/// A cloudlet as the DME sees it: shared by every instance on it.
#[derive(Debug)]
pub struct CloudletRec {
    pub key: CloudletKey,
    pub location: LatLon,
    pub state: CloudletState,
    pub maintenance: MaintenanceState,
}

/// One app instance, compact: strings that repeat across instances (organization, URI, ports)
/// are shared, because the table must stay small at a million instances.
#[derive(Debug)]
pub struct Inst {
    pub name: Box<str>,
    pub organization: Arc<str>,
    pub cluster: Option<Arc<str>>,
    pub cloudlet: Arc<CloudletRec>,
    pub uri: Arc<str>,
    pub ports: Arc<[AppPort]>,
    /// The instance's copy of its cloudlet's location (what upstream measures distance to).
    pub location: LatLon,
    pub state: TrackedState,
    pub health: HealthCheck,
    /// Precomputed usability (state, cloudlet state and maintenance, health).
    pub usable: bool,
}

/// Upstream's usability rule: instance READY, cloudlet READY and not UNDER_MAINTENANCE, health OK
/// or UNKNOWN. Other maintenance values do not make an instance unusable.
pub fn is_usable(
    state: TrackedState,
    health: HealthCheck,
    cloudlet_state: CloudletState,
    maintenance: MaintenanceState,
) -> bool {
    state == TrackedState::Ready
        && cloudlet_state == CloudletState::Ready
        && maintenance != MaintenanceState::UnderMaintenance
        && matches!(health, HealthCheck::Ok | HealthCheck::Unknown)
}

/// The instances of one carrier bucket of one app: the carrier's own cloudlets, and the cloudlets
/// of other operators that list this carrier as an alliance org.
pub struct Bucket {
    pub org: Box<str>,
    pub public_cloud: bool,
    pub own: SiteIndex<u32>,
    pub alliance: SiteIndex<u32>,
}

/// Everything the DME knows about one app, immutable once built.
pub struct AppTable {
    pub app: App,
    /// DER of the RSA public key (PKCS#1) for auth tokens, parsed once.
    pub auth_key: Option<Vec<u8>>,
    pub insts: Vec<Inst>,
    /// Carrier buckets, sorted by org.
    pub buckets: Vec<Bucket>,
}

impl AppTable {
    pub fn bucket(&self, org: &str) -> Option<&Bucket> {
        self.buckets
            .binary_search_by(|b| (*b.org).cmp(org))
            .ok()
            .map(|i| &self.buckets[i])
    }
}

/// The region snapshot the DME serves from.
pub struct Tables {
    /// Increases with every published snapshot.
    pub version: u64,
    apps: hashbrown::HashMap<AppKey, Arc<AppTable>>,
    operator_codes: HashMap<String, String>,
    pub settings: MatchSettings,
    pub network_location: NetworkLocation,
}

/// A borrowed app key, so lookups from a decoded cookie allocate nothing.
#[derive(Hash)]
pub struct AppKeyRef<'a> {
    pub organization: &'a str,
    pub name: &'a str,
    pub version: &'a str,
}

impl hashbrown::Equivalent<AppKey> for AppKeyRef<'_> {
    fn equivalent(&self, key: &AppKey) -> bool {
        self.organization == key.organization
            && self.name == key.name
            && self.version == key.version
    }
}

impl Tables {
    /// An empty region (no apps): every lookup fails cleanly.
    pub fn empty() -> Self {
        Self {
            version: 0,
            apps: hashbrown::HashMap::new(),
            operator_codes: HashMap::new(),
            settings: MatchSettings::from_settings(&Settings::default()),
            network_location: NetworkLocation::default(),
        }
    }

    /// Builds the whole region from a validated deployment document.
    pub fn from_deployment(doc: &Deployment, version: u64) -> Result<Self, BuildError> {
        let settings = MatchSettings::from_settings(&doc.settings);
        let cloudlets: HashMap<&CloudletKey, Arc<CloudletRec>> = doc
            .cloudlets
            .iter()
            .map(|c| (&c.key, Arc::new(cloudlet_rec(c))))
            .collect();
        let alliances: HashMap<&CloudletKey, &[String]> = doc
            .cloudlets
            .iter()
            .map(|c| (&c.key, c.alliance_orgs.as_slice()))
            .collect();
        let mut by_app: HashMap<&AppKey, Vec<&AppInst>> = HashMap::new();
        for inst in &doc.app_insts {
            by_app.entry(&inst.app).or_default().push(inst);
        }
        let mut interner = Interner::default();
        let mut apps = hashbrown::HashMap::with_capacity(doc.apps.len());
        for app in &doc.apps {
            let insts = by_app.remove(&app.key).unwrap_or_default();
            let table = build_app(
                app,
                &insts,
                &cloudlets,
                &alliances,
                &settings,
                &mut interner,
            )?;
            apps.insert(app.key.clone(), Arc::new(table));
        }
        if let Some((key, _)) = by_app.into_iter().next() {
            return Err(BuildError::UnknownApp(key.to_string()));
        }
        let operator_codes = doc
            .operator_codes
            .iter()
            .map(|oc| (oc.code.clone(), oc.organization.clone()))
            .collect();
        Ok(Self {
            version,
            apps,
            operator_codes,
            settings,
            network_location: doc.settings.network_location.clone(),
        })
    }

    /// Looks up an app without allocating.
    pub fn app(&self, key: &AppKeyRef<'_>) -> Option<&Arc<AppTable>> {
        self.apps.get(key)
    }

    pub fn apps(&self) -> impl Iterator<Item = &Arc<AppTable>> {
        self.apps.values()
    }

    pub fn app_count(&self) -> usize {
        self.apps.len()
    }

    /// Carrier translation: an operator code (e.g. MCC+MNC) maps to its organization; anything
    /// else is used verbatim (exact, case-sensitive), as upstream does.
    pub fn translate_carrier<'a>(&'a self, carrier: &'a str) -> &'a str {
        self.operator_codes
            .get(carrier)
            .map_or(carrier, String::as_str)
    }
}

/// Why a snapshot could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An instance refers to an app that the snapshot does not contain.
    #[error("app instance refers to app {0}, which is not defined")]
    UnknownApp(String),
    /// An instance refers to a cloudlet that the snapshot does not contain.
    #[error("app instance {inst} refers to cloudlet {cloudlet}, which is not defined")]
    UnknownCloudlet { inst: String, cloudlet: String },
    /// The app's auth public key is not a PEM RSA public key.
    #[error("app {app}: auth_public_key is not a usable RSA public key: {reason}")]
    AuthKey { app: String, reason: String },
}

fn cloudlet_rec(c: &Cloudlet) -> CloudletRec {
    CloudletRec {
        key: c.key.clone(),
        location: c.location,
        state: c.state,
        maintenance: c.maintenance_state,
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

fn build_app(
    app: &App,
    insts: &[&AppInst],
    cloudlets: &HashMap<&CloudletKey, Arc<CloudletRec>>,
    alliances: &HashMap<&CloudletKey, &[String]>,
    settings: &MatchSettings,
    interner: &mut Interner,
) -> Result<AppTable, BuildError> {
    let auth_key =
        match &app.auth_public_key {
            Some(pem) => Some(crate::token::rsa_public_key_der(pem).map_err(|reason| {
                BuildError::AuthKey {
                    app: app.key.to_string(),
                    reason,
                }
            })?),
            None => None,
        };
    let mut recs = Vec::with_capacity(insts.len());
    // (bucket org, alliance?) -> entries
    let mut own: HashMap<&str, Vec<(LatLon, u32)>> = HashMap::new();
    let mut allied: HashMap<&str, Vec<(LatLon, u32)>> = HashMap::new();
    for (i, inst) in insts.iter().enumerate() {
        let cloudlet =
            cloudlets
                .get(&inst.cloudlet)
                .ok_or_else(|| BuildError::UnknownCloudlet {
                    inst: inst.key.to_string(),
                    cloudlet: inst.cloudlet.to_string(),
                })?;
        let id = u32::try_from(i).unwrap_or(u32::MAX);
        let rec = Inst {
            name: inst.key.name.as_str().into(),
            organization: interner.str(&inst.key.organization),
            cluster: inst.cluster.as_deref().map(|c| interner.str(c)),
            cloudlet: cloudlet.clone(),
            uri: interner.str(&inst.uri),
            ports: interner.ports(&inst.mapped_ports),
            location: cloudlet.location,
            state: inst.state,
            health: inst.health,
            usable: is_usable(
                inst.state,
                inst.health,
                cloudlet.state,
                cloudlet.maintenance,
            ),
        };
        own.entry(inst.cloudlet.organization.as_str())
            .or_default()
            .push((rec.location, id));
        for org in alliances.get(&inst.cloudlet).copied().unwrap_or_default() {
            allied
                .entry(org.as_str())
                .or_default()
                .push((rec.location, id));
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
            public_cloud: settings.is_public_cloud(org),
            own: SiteIndex::build(own.remove(org).unwrap_or_default()),
            alliance: SiteIndex::build(allied.remove(org).unwrap_or_default()),
        })
        .collect();
    Ok(AppTable {
        app: app.clone(),
        auth_key,
        insts: recs,
        buckets,
    })
}
