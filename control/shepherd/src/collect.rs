//! Collectors, pure: each turns one input (a scraped page, /proc readings, the controller's
//! objects) into points. The I/O that fetches the inputs is in [`crate::collector`].
//!
//! Measurement names, tags and fields are upstream Shepherd's (see the crate doc for the
//! mapping from our sources).

use std::collections::BTreeMap;

use edge_model::{AppInst, CloudletKey};

pub mod cloudlet;
pub mod dme;
pub mod edge_events;
pub mod process;
pub mod rootlb;

/// Measurement names.
pub mod measurement {
    pub const APPINST_CONNECTIONS: &str = "appinst-connections";
    pub const APPINST_UDP: &str = "appinst-udp";
    pub const APPINST_CPU: &str = "appinst-cpu";
    pub const APPINST_MEM: &str = "appinst-mem";
    pub const CLOUDLET_UTILIZATION: &str = "cloudlet-utilization";
    pub const DME_API: &str = "dme-api";
}

/// Tags of a cloudlet: `cloudletorg`, `cloudlet`.
pub fn cloudlet_tags(key: &CloudletKey) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cloudletorg".to_owned(), key.organization.clone()),
        ("cloudlet".to_owned(), key.name.clone()),
    ])
}

/// Tags of an app instance: upstream's `app`, `ver`, `apporg`, the cloudlet's, `cluster` and
/// `clusterorg` (left out when the instance has no cluster), plus `appinst`, the instance's
/// name (EdgeXR's instance key; two instances of one app may share a cloudlet).
pub fn inst_tags(inst: &AppInst) -> BTreeMap<String, String> {
    let mut tags = cloudlet_tags(&inst.cloudlet);
    tags.insert("app".into(), inst.app.name.clone());
    tags.insert("ver".into(), inst.app.version.clone());
    tags.insert("apporg".into(), inst.app.organization.clone());
    tags.insert("appinst".into(), inst.key.name.clone());
    if let Some(cluster) = &inst.cluster {
        tags.insert("cluster".into(), cluster.clone());
        tags.insert("clusterorg".into(), inst.key.organization.clone());
    }
    tags
}

/// A scraped counter or gauge as an integer field value: rounded, negative and NaN as 0.
pub(crate) fn count(v: f64) -> i64 {
    if v.is_nan() || v <= 0.0 {
        0
    } else {
        // `as` saturates at i64::MAX.
        v.round() as i64
    }
}

#[cfg(test)]
pub(crate) mod fixtures;
