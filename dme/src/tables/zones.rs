//! The region's cloudlets as CAMARA edge cloud zones, and its apps by CAMARA application id:
//! what the CAMARA front ([`crate::camara`]) needs beyond the per-app tables. Rebuilt with every
//! snapshot (there are hundreds of cloudlets and thousands of apps, not millions), so a
//! cloudlet's state is as current as the snapshot's.

use std::collections::HashMap;

use edge_model::{AppKey, Cloudlet, CloudletKey, CloudletState, MaintenanceState, camara_id};
use geodata::{LatLon, SiteIndex};

/// A cloudlet seen as an edge cloud zone.
#[derive(Debug)]
pub struct Zone {
    pub key: CloudletKey,
    /// [`camara_id::zone_id`] of the cloudlet.
    pub id: String,
    pub location: LatLon,
    /// READY and not under maintenance: a zone that may be offered.
    pub active: bool,
}

/// Every zone, an index of the active ones, and the apps by id.
#[derive(Debug)]
pub struct Zones {
    list: Vec<Zone>,
    active: SiteIndex<u32>,
    apps: HashMap<u128, AppKey>,
}

impl Default for Zones {
    fn default() -> Self {
        Zones {
            list: Vec::new(),
            active: SiteIndex::build(std::iter::empty()),
            apps: HashMap::new(),
        }
    }
}

impl Zones {
    /// From the cloudlets (with their current online state) and the apps.
    pub fn build<'a>(
        cloudlets: impl Iterator<Item = (&'a Cloudlet, CloudletState)>,
        apps: impl Iterator<Item = &'a AppKey>,
    ) -> Zones {
        let mut list: Vec<Zone> = cloudlets
            .map(|(c, state)| Zone {
                key: c.key.clone(),
                id: camara_id::zone_id(&c.key),
                location: c.location,
                active: state == CloudletState::Ready
                    && c.maintenance_state != MaintenanceState::UnderMaintenance,
            })
            .collect();
        // Key order, so ties in distance fall the same way in every snapshot.
        list.sort_by(|a, b| a.key.cmp(&b.key));
        let active = SiteIndex::build(
            (0u32..)
                .zip(&list)
                .filter(|(_, z)| z.active)
                .map(|(i, z)| (z.location, i)),
        );
        let apps = apps
            .filter_map(|k| Some((camara_id::parse(&camara_id::app_id(k))?, k.clone())))
            .collect();
        Zones { list, active, apps }
    }

    /// The active zone nearest `at`, of `operator` when given; with its distance in km.
    pub fn nearest(&self, at: LatLon, operator: Option<&str>) -> Option<(&Zone, f64)> {
        let (&i, km) = self.active.nearest(at, |&i| {
            operator.is_none_or(|op| self.list[i as usize].key.organization == op)
        })?;
        Some((&self.list[i as usize], km))
    }

    /// The zone of a cloudlet.
    pub fn of(&self, key: &CloudletKey) -> Option<&Zone> {
        self.list
            .binary_search_by(|z| z.key.cmp(key))
            .ok()
            .map(|i| &self.list[i])
    }

    /// The app whose CAMARA id is `id`.
    pub fn app(&self, id: u128) -> Option<&AppKey> {
        self.apps.get(&id)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}
