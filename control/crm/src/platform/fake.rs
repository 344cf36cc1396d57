//! The `fake` platform: no infrastructure, instant success, as upstream's fake platform (its
//! capacity and flavors are upstream's). For tests and large simulated regions: what it
//! "runs" lives in a map, and every cluster reports one configured node address.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use edge_model::{AppInstKey, CloudletResources, ClusterKey, Flavor, HealthCheck};
use tokio::sync::broadcast;

use super::{
    ClusterSpec, ClusterStatus, InstSpec, Inventory, Platform, PlatformError, PlatformInfo,
    ProgressSink,
};

/// Upstream fake platform's capacity: 40 GB RAM, 50 vCPUs, 5000 GB disk.
const CAPACITY: CloudletResources = CloudletResources {
    vcpus_max: 50,
    vcpus_used: 0,
    ram_mb_max: 40960,
    ram_mb_used: 0,
    disk_gb_max: 5000,
    disk_gb_used: 0,
};

/// What a cluster without a flavor counts for (upstream's `x1.small`).
const DEFAULT_SIZE: (u64, u64, u64) = (2, 4096, 40);

#[derive(Default)]
struct State {
    clusters: BTreeMap<ClusterKey, (u64, u64, u64)>,
    insts: BTreeSet<AppInstKey>,
}

pub struct FakePlatform {
    node_address: IpAddr,
    state: Mutex<State>,
    changes: broadcast::Sender<AppInstKey>,
}

impl FakePlatform {
    /// A fake cloudlet whose clusters all report `node_address`.
    pub fn new(node_address: IpAddr) -> Self {
        Self {
            node_address,
            state: Mutex::default(),
            changes: broadcast::Sender::new(16),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for FakePlatform {
    fn default() -> Self {
        Self::new(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

fn flavors() -> Vec<Flavor> {
    let f = |name: &str, vcpus, ram_mb, disk_gb| Flavor {
        name: name.into(),
        vcpus,
        ram_mb,
        disk_gb,
    };
    vec![f("x1.tiny", 1, 1024, 20), f("x1.small", 2, 4096, 40)]
}

#[async_trait::async_trait]
impl Platform for FakePlatform {
    fn kind(&self) -> &'static str {
        "fake"
    }

    async fn info(&self) -> Result<PlatformInfo, PlatformError> {
        let st = self.state();
        let mut r = CAPACITY;
        for (vcpus, ram, disk) in st.clusters.values() {
            r.vcpus_used += vcpus;
            r.ram_mb_used += ram;
            r.disk_gb_used += disk;
        }
        Ok(PlatformInfo {
            flavors: flavors(),
            resources: r,
        })
    }

    async fn create_cluster(
        &self,
        spec: &ClusterSpec,
        progress: &dyn ProgressSink,
    ) -> Result<ClusterStatus, PlatformError> {
        progress.line("Creating cluster".into());
        let size = spec
            .flavor
            .as_ref()
            .map_or(DEFAULT_SIZE, |f| (f.vcpus, f.ram_mb, f.disk_gb));
        let nodes = u64::from(spec.num_masters.max(1) + spec.num_nodes);
        let size = (size.0 * nodes, size.1 * nodes, size.2 * nodes);
        self.state().clusters.insert(spec.key.clone(), size);
        Ok(ClusterStatus {
            node_address: self.node_address,
        })
    }

    async fn update_cluster(
        &self,
        spec: &ClusterSpec,
        progress: &dyn ProgressSink,
    ) -> Result<ClusterStatus, PlatformError> {
        self.create_cluster(spec, progress).await
    }

    async fn delete_cluster(
        &self,
        key: &ClusterKey,
        _: &dyn ProgressSink,
    ) -> Result<(), PlatformError> {
        self.state().clusters.remove(key);
        Ok(())
    }

    async fn create_app_inst(
        &self,
        spec: &InstSpec,
        progress: &dyn ProgressSink,
    ) -> Result<(), PlatformError> {
        if let Some(c) = &spec.cluster
            && !self.state().clusters.contains_key(c)
        {
            return Err(PlatformError::Missing(format!(
                "cluster {}/{} does not exist on this cloudlet",
                c.organization, c.name
            )));
        }
        progress.line("Creating App Inst".into());
        self.state().insts.insert(spec.key.clone());
        Ok(())
    }

    async fn delete_app_inst(
        &self,
        key: &AppInstKey,
        _: &dyn ProgressSink,
    ) -> Result<(), PlatformError> {
        self.state().insts.remove(key);
        Ok(())
    }

    async fn inventory(&self) -> Result<Inventory, PlatformError> {
        let st = self.state();
        Ok(Inventory {
            clusters: st
                .clusters
                .keys()
                .map(|k| {
                    let status = ClusterStatus {
                        node_address: self.node_address,
                    };
                    (k.clone(), status)
                })
                .collect(),
            insts: st.insts.iter().cloned().collect(),
        })
    }

    fn health(&self, key: &AppInstKey) -> HealthCheck {
        if self.state().insts.contains(key) {
            HealthCheck::Ok
        } else {
            HealthCheck::Unknown
        }
    }

    fn health_changes(&self) -> broadcast::Receiver<AppInstKey> {
        self.changes.subscribe()
    }
}
