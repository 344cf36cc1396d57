//! The region's cloudlets as CAMARA edge cloud zones, and its apps by CAMARA application id:
//! what the CAMARA front ([`crate::camara`]) needs beyond the per-app tables. Rebuilt with every
//! snapshot (there are hundreds of cloudlets and thousands of apps, not millions), so a
//! cloudlet's state is as current as the snapshot's.

use std::sync::Arc;

use hashbrown::HashMap;
use serde_json::value::RawValue;

use edge_model::{AppKey, Cloudlet, CloudletKey, CloudletState, MaintenanceState, camara_id};
use geodata::{LatLon, SiteIndex};

/// A cloudlet seen as an edge cloud zone, with the strings an answer names it by made once.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Zone {
    #[serde(skip)]
    pub key: CloudletKey,
    /// [`camara_id::zone_id`] of the cloudlet.
    #[serde(rename = "edgeCloudZoneId")]
    pub id: String,
    /// The cloudlet's name as the specs' pattern allows ([`zone_name`]).
    #[serde(rename = "edgeCloudZoneName")]
    pub name: String,
    /// The operator's name, likewise.
    #[serde(rename = "edgeCloudProvider")]
    pub provider: String,
    #[serde(skip)]
    pub location: LatLon,
    /// READY and not under maintenance: a zone that may be offered.
    #[serde(skip)]
    pub active: bool,
    /// This zone as an answer's `EdgeCloudZone` object (its three names above), written once
    /// here and shared with the cloudlet's [`crate::tables::CloudletRec`], so an answer
    /// naming the zone copies it instead of encoding it again.
    #[serde(skip)]
    pub json: Arc<RawValue>,
}

/// An app as the CAMARA APIs name it.
#[derive(Debug)]
pub struct CamaraApp {
    pub key: AppKey,
    /// Its organization as the answers' `applicationServerProviderName` ([`zone_name`]).
    pub provider: String,
}

/// Every zone, indexes of the active ones (all, and per operator), and the apps by id.
#[derive(Debug)]
pub struct Zones {
    list: Vec<Zone>,
    by_key: HashMap<CloudletKey, u32>,
    active: SiteIndex<u32>,
    by_operator: HashMap<String, SiteIndex<u32>>,
    apps: HashMap<u128, CamaraApp>,
}

impl Default for Zones {
    fn default() -> Self {
        Zones {
            list: Vec::new(),
            by_key: HashMap::new(),
            active: SiteIndex::build(std::iter::empty()),
            by_operator: HashMap::new(),
            apps: HashMap::new(),
        }
    }
}

/// A name as the specs' zone and provider pattern allows
/// (`^[A-Za-z0-9]([A-Za-z0-9-]{0,53}[A-Za-z0-9])?$`): other characters become '-', at most
/// 55 characters.
pub fn zone_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(55)
        .collect();
    while s.ends_with('-') {
        s.pop();
    }
    let trimmed = s.trim_start_matches('-').to_string();
    if trimmed.is_empty() {
        "zone".into()
    } else {
        trimmed
    }
}

impl Zone {
    fn new(key: &CloudletKey, location: LatLon, active: bool) -> Zone {
        let mut zone = Zone {
            key: key.clone(),
            id: camara_id::zone_id(key),
            name: zone_name(&key.name),
            provider: zone_name(&key.organization),
            location,
            active,
            json: Arc::from(Box::<RawValue>::default()),
        };
        // Three strings always encode; the default (null) only keeps this total.
        zone.json = Arc::from(serde_json::value::to_raw_value(&zone).unwrap_or_default());
        zone
    }
}

impl Zones {
    /// From the cloudlets (with their current online state) and the apps.
    pub fn build<'a>(
        cloudlets: impl Iterator<Item = (&'a Cloudlet, CloudletState)>,
        apps: impl Iterator<Item = &'a AppKey>,
    ) -> Zones {
        let mut list: Vec<Zone> = cloudlets
            .map(|(c, state)| {
                Zone::new(
                    &c.key,
                    c.location,
                    state == CloudletState::Ready
                        && c.maintenance_state != MaintenanceState::UnderMaintenance,
                )
            })
            .collect();
        // Key order, so ties in distance fall the same way in every snapshot.
        list.sort_by(|a, b| a.key.cmp(&b.key));
        let active = || (0u32..).zip(&list).filter(|(_, z)| z.active);
        let mut per_operator: HashMap<String, Vec<(LatLon, u32)>> = HashMap::new();
        for (i, z) in active() {
            per_operator
                .entry(z.key.organization.clone())
                .or_default()
                .push((z.location, i));
        }
        let by_operator = per_operator
            .into_iter()
            .map(|(op, sites)| (op, SiteIndex::build(sites)))
            .collect();
        let all = SiteIndex::build(active().map(|(i, z)| (z.location, i)));
        let by_key = (0u32..)
            .zip(&list)
            .map(|(i, z)| (z.key.clone(), i))
            .collect();
        let apps = apps
            .filter_map(|k| {
                let app = CamaraApp {
                    key: k.clone(),
                    provider: zone_name(&k.organization),
                };
                Some((camara_id::parse(&camara_id::app_id(k))?, app))
            })
            .collect();
        Zones {
            list,
            by_key,
            active: all,
            by_operator,
            apps,
        }
    }

    /// The active zone nearest `at`, of `operator` when given; with its distance in km.
    pub fn nearest(&self, at: LatLon, operator: Option<&str>) -> Option<(&Zone, f64)> {
        let index = match operator {
            Some(op) => self.by_operator.get(op)?,
            None => &self.active,
        };
        let (&i, km) = index.nearest(at, |_| true)?;
        Some((&self.list[i as usize], km))
    }

    /// The zone of a cloudlet.
    pub fn of(&self, key: &CloudletKey) -> Option<&Zone> {
        self.by_key.get(key).map(|&i| &self.list[i as usize])
    }

    /// The app whose CAMARA id is `id`.
    pub fn app(&self, id: u128) -> Option<&CamaraApp> {
        self.apps.get(&id)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_renders_its_three_names_once() {
        let key = CloudletKey {
            organization: "Deutsche Telekom".into(),
            name: "berlin_1".into(),
        };
        let zone = Zone::new(&key, LatLon::new(52.5, 13.4).unwrap(), true);
        let v: serde_json::Value = serde_json::from_str(zone.json.get()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "edgeCloudZoneId": camara_id::zone_id(&key),
                "edgeCloudZoneName": "berlin-1",
                "edgeCloudProvider": "Deutsche-Telekom",
            })
        );
    }

    #[test]
    fn zone_names_follow_the_pattern() {
        assert_eq!(zone_name("berlin-1"), "berlin-1");
        assert_eq!(zone_name("Berlin_Mitte.1"), "Berlin-Mitte-1");
        assert_eq!(zone_name("_x_"), "x");
        assert_eq!(zone_name("__"), "zone");
        assert_eq!(zone_name(&"a".repeat(80)).len(), 55);
    }
}
