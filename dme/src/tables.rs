//! The DME's in-memory tables: one snapshot per app (instances plus per-carrier spatial indexes),
//! gathered in a region snapshot that is published with one atomic swap. Readers load the current
//! snapshot without locks; writers build a new one off the hot path. The structure of a snapshot
//! never changes once published; only each instance's usability is an atomic flag, so health and
//! state changes (which come in storms) apply in place without rebuilding an index.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use edge_model::{
    App, AppKey, AppPort, CloudletKey, CloudletState, HealthCheck, MaintenanceState,
    NetworkLocation, Settings, TrackedState,
};
use geodata::{LatLon, SiteIndex};

use crate::api_stats::AppStats;

mod zones;
pub use zones::{Zone, Zones, zone_name};

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
    /// The cloudlet as a CAMARA `EdgeCloudZone` object ([`Zone::json`]), ready to copy into
    /// an answer.
    pub zone: Option<Arc<serde_json::value::RawValue>>,
}

/// One app instance, compact: strings and port lists that repeat across instances (the
/// organization, the cluster, the URI of a shared load balancer, the ports) live once in the
/// app's table and are referred to by 32-bit ids, because the table must stay small at a million
/// instances. Read them through [`AppTable`]'s accessors.
#[derive(Debug)]
pub struct Inst {
    pub cloudlet: Arc<CloudletRec>,
    /// The instance's copy of its cloudlet's location (what upstream measures distance to).
    pub location: LatLon,
    organization: u32,
    /// `NO_ID`: no cluster.
    cluster: u32,
    ports: u32,
    /// The name, as a slice of the table's name arena (one allocation per app, not per
    /// instance), followed there by the URI (`uri_len` bytes): the reply needs the URI of the
    /// instance whose name the matcher just read, so both come in one cache line.
    name_at: u32,
    name_len: u16,
    uri_len: u16,
    /// [`crate::edge_cookie::inst_tag`] of the instance: names it in edge-events cookies.
    pub edge_tag: u64,
}

/// The id of an absent optional string.
pub(crate) const NO_ID: u32 = u32::MAX;

/// Ids of an instance's shared strings and ports in its app table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InstIds {
    pub name_at: u32,
    pub name_len: u16,
    pub uri_len: u16,
    pub organization: u32,
    pub cluster: u32,
    pub ports: u32,
}

impl Inst {
    pub(crate) fn new(cloudlet: Arc<CloudletRec>, ids: InstIds, edge_tag: u64) -> Self {
        let location = cloudlet.location;
        Self {
            name_at: ids.name_at,
            name_len: ids.name_len,
            uri_len: ids.uri_len,
            cloudlet,
            location,
            organization: ids.organization,
            cluster: ids.cluster,
            ports: ids.ports,
            edge_tag,
        }
    }
}

/// Which instances of an app may be returned (state, cloudlet state and maintenance, health),
/// one bit per instance id. Atomic so a health or state change updates the published table in
/// place (such changes come in storms and must not cost a rebuild of the app's index), and a
/// bitmap rather than a flag in each [`Inst`] so that the matcher, which asks about several
/// candidates per request, reads a few hot words instead of one cold instance each.
#[derive(Debug, Default)]
pub struct Usable(Box<[AtomicU64]>);

impl Usable {
    /// From one flag per instance id.
    pub(crate) fn from_flags(flags: &[bool]) -> Self {
        Self(
            flags
                .chunks(64)
                .map(|c| {
                    let bits = c
                        .iter()
                        .enumerate()
                        .fold(0u64, |w, (i, &u)| w | (u64::from(u) << i));
                    AtomicU64::new(bits)
                })
                .collect(),
        )
    }

    /// Whether instance `id` may be returned (an unknown id may not).
    pub fn get(&self, id: u32) -> bool {
        let (w, b) = (id as usize / 64, id % 64);
        self.0
            .get(w)
            .is_some_and(|w| w.load(Ordering::Relaxed) >> b & 1 == 1)
    }

    pub(crate) fn set(&self, id: u32, usable: bool) {
        let (w, b) = (id as usize / 64, id % 64);
        if let Some(w) = self.0.get(w) {
            if usable {
                w.fetch_or(1 << b, Ordering::Relaxed);
            } else {
                w.fetch_and(!(1 << b), Ordering::Relaxed);
            }
        }
    }
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
    /// The developer auth-token key, parsed once.
    pub auth_key: AuthKey,
    pub insts: Vec<Inst>,
    /// Usability of `insts`, by index.
    pub usable: Usable,
    /// Carrier buckets, sorted by org.
    pub buckets: Vec<Bucket>,
    /// Strings the instances refer to by id (organizations, clusters, URIs).
    pub(crate) strs: Vec<Arc<str>>,
    /// Port lists the instances refer to by id.
    pub(crate) port_lists: Vec<Arc<[AppPort]>>,
    /// Every instance's name and URI, concatenated.
    pub(crate) names: String,
    /// The app's API counters. Handed on to the app's table in the next snapshot, so a rebuild
    /// does not reset them.
    pub stats: Arc<AppStats>,
    /// [`crate::edge_cookie::app_tag`] of the app.
    pub edge_tag: u64,
    /// Instance ids by edge tag, sorted; built when an edge-events stream first asks.
    pub(crate) by_tag: std::sync::OnceLock<Box<[(u64, u32)]>>,
}

impl AppTable {
    /// The instance's name.
    pub fn name(&self, i: &Inst) -> &str {
        let start = i.name_at as usize;
        self.names
            .get(start..start + usize::from(i.name_len))
            .unwrap_or("")
    }

    /// The instance's organization.
    pub fn organization(&self, i: &Inst) -> &str {
        self.strs.get(i.organization as usize).map_or("", |s| s)
    }

    /// The instance's cluster name, if any.
    pub fn cluster(&self, i: &Inst) -> Option<&str> {
        self.strs.get(i.cluster as usize).map(|s| &**s)
    }

    /// The FQDN clients connect to.
    pub fn uri(&self, i: &Inst) -> &str {
        let start = i.name_at as usize + usize::from(i.name_len);
        self.names
            .get(start..start + usize::from(i.uri_len))
            .unwrap_or("")
    }

    /// The instance's ports with their public ports.
    pub fn ports(&self, i: &Inst) -> &[AppPort] {
        self.port_lists.get(i.ports as usize).map_or(&[], |p| p)
    }

    /// The instance with this key; instances are kept in key order.
    pub fn inst(&self, organization: &str, name: &str) -> Option<&Inst> {
        self.inst_id(organization, name)
            .map(|i| &self.insts[i as usize])
    }

    /// The id (index in `insts`) of an instance.
    pub fn inst_id(&self, organization: &str, name: &str) -> Option<u32> {
        self.insts
            .binary_search_by(|i| (self.organization(i), self.name(i)).cmp(&(organization, name)))
            .ok()
            .and_then(|i| u32::try_from(i).ok())
    }

    /// The id of the instance whose edge tag is `tag`.
    pub fn inst_by_tag(&self, tag: u64) -> Option<u32> {
        let index = self.by_tag.get_or_init(|| {
            let mut v: Vec<(u64, u32)> = (0u32..)
                .zip(&self.insts)
                .map(|(id, i)| (i.edge_tag, id))
                .collect();
            v.sort_unstable();
            v.into_boxed_slice()
        });
        index
            .binary_search_by_key(&tag, |&(t, _)| t)
            .ok()
            .map(|i| index[i].1)
    }

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
    /// Unique among this process's snapshots (`version` is whatever the builder says).
    id: u64,
    /// The snapshot whose apps' counters this one's apps took over, if any.
    stats_from: Option<u64>,
    apps: hashbrown::HashMap<AppKey, Arc<AppTable>>,
    operator_codes: Arc<HashMap<String, String>>,
    pub settings: MatchSettings,
    pub network_location: NetworkLocation,
    /// The cloudlets as CAMARA zones, and the apps by CAMARA id.
    pub zones: Arc<Zones>,
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

/// A new snapshot id.
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Tables {
    /// The API counters of every app in the tables, and of requests whose app was not known
    /// (`unknown`), in Prometheus text format ([`crate::api_stats`]).
    pub fn render_stats(&self, unknown: &AppStats) -> String {
        let apps = self.apps().map(|t| {
            let k = &t.app.key;
            (
                [k.organization.as_str(), k.name.as_str(), k.version.as_str()],
                &*t.stats,
            )
        });
        crate::api_stats::render_apps(apps.chain([(["", "", ""], unknown)]))
    }

    /// An empty region (no apps): every lookup fails cleanly.
    pub fn empty() -> Self {
        Self {
            version: 0,
            id: next_id(),
            stats_from: None,
            apps: hashbrown::HashMap::new(),
            operator_codes: Arc::default(),
            settings: MatchSettings::from_settings(&Settings::default()),
            network_location: NetworkLocation::default(),
            zones: Arc::default(),
        }
    }

    // `Tables::from_deployment` lives with the builder, in `mirror::build`.

    /// Assembles a snapshot (used by the mirror). `stats_from`: the snapshot whose apps'
    /// counters the apps already carry.
    pub(crate) fn assemble(
        version: u64,
        apps: hashbrown::HashMap<AppKey, Arc<AppTable>>,
        operator_codes: Arc<HashMap<String, String>>,
        settings: MatchSettings,
        network_location: NetworkLocation,
        zones: Arc<Zones>,
        stats_from: Option<&Tables>,
    ) -> Self {
        Self {
            version,
            id: next_id(),
            stats_from: stats_from.map(|t| t.id),
            apps,
            operator_codes,
            settings,
            network_location,
            zones,
        }
    }

    /// Gives each app the counters it has in `old`, the snapshot this one replaces, unless it
    /// was built from `old` and has them already. Only tables nobody else holds yet can take
    /// them; a table shared with another snapshot keeps the counters it has.
    pub(crate) fn take_stats_from(&mut self, old: &Tables) {
        if self.stats_from == Some(old.id) {
            return;
        }
        for (key, table) in &mut self.apps {
            if let (Some(t), Some(prev)) = (Arc::get_mut(table), old.apps.get(key)) {
                t.stats = prev.stats.clone();
            }
        }
        self.stats_from = Some(old.id);
    }

    /// The app's current table, for reuse by an incremental rebuild.
    pub(crate) fn app_by_key(&self, key: &AppKey) -> Option<&Arc<AppTable>> {
        self.apps.get(key)
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
    /// The app's auth public key is not a PEM RSA public key.
    #[error("app {app}: auth_public_key is not a usable RSA public key: {reason}")]
    AuthKey { app: String, reason: String },
}

/// An app's key for developer auth tokens, parsed once when the table is built.
#[derive(Debug, Clone)]
pub enum AuthKey {
    /// The app takes no auth token.
    None,
    /// DER of the RSA public key (PKCS#1).
    Rsa(Vec<u8>),
    /// The configured key could not be used; registrations for the app fail with this reason.
    Invalid(String),
}

impl AuthKey {
    pub fn parse(pem: Option<&str>) -> Self {
        match pem {
            None => Self::None,
            Some(pem) => match crate::token::rsa_public_key_der(pem) {
                Ok(der) => Self::Rsa(der),
                Err(reason) => Self::Invalid(reason),
            },
        }
    }
}

#[cfg(test)]
mod usable_tests {
    use super::Usable;

    #[test]
    fn bits_across_words_flip_independently() {
        let flags: Vec<bool> = (0..130).map(|i| i % 3 == 0).collect();
        let u = Usable::from_flags(&flags);
        for (i, &f) in flags.iter().enumerate() {
            assert_eq!(u.get(i as u32), f, "id {i}");
        }
        assert!(
            !u.get(130) && !u.get(u32::MAX),
            "unknown ids are not usable"
        );
        for id in [0, 63, 64, 129] {
            u.set(id, false);
            assert!(!u.get(id));
            u.set(id, true);
            assert!(u.get(id));
        }
        assert!(
            u.get(1 + 2) && !u.get(1) && !u.get(65),
            "neighbours untouched"
        );
        u.set(500, true);
        assert!(!u.get(500), "setting an unknown id does nothing");
    }
}
