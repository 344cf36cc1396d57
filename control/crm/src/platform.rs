//! The platform interface: what a CRM asks of the infrastructure under one cloudlet. The CRM's
//! state machine ([`crate::plan`]) never looks past this trait, so a driver is added without
//! touching it.
//!
//! # Writing a driver (Kubernetes, OpenStack, ...)
//! - [`Platform::info`]: the flavors the cloudlet offers and its capacity and use (upstream's
//!   `GatherCloudletInfo`). OpenStack: Nova flavors and quotas; Kubernetes: node sizes and
//!   allocatable resources.
//! - [`Platform::create_cluster`]: make the cluster exist and return the address the
//!   cloudlet's shared root LB sends its traffic to (upstream: the master node's IP, or the
//!   LoadBalancer IP). OpenStack: a Heat stack of master and node VMs on a private subnet
//!   attached to the root LB; Kubernetes: a namespace (or a cluster through Cluster API).
//! - [`Platform::create_app_inst`]: run the app in the cluster so that it serves its access
//!   ports at that address (a Deployment and a Service; a VM from `image_path`), and fail
//!   with the reason when it cannot (image missing, quota, port taken). `update_*` and
//!   `delete_*` likewise; deletes of what does not exist succeed.
//! - [`Platform::inventory`]: what exists now, so a restarted CRM adopts it instead of
//!   creating twice (list stacks or namespaces labelled with the object keys).
//! - [`Platform::health`] and [`Platform::health_changes`]: the platform's own view of an
//!   instance (pods crash-looping, a VM down), which the controller merges with the root LB's.
//!
//! Calls may take long (minutes for VMs); they report progress lines through the
//! [`ProgressSink`], which the controller relays to the user who asked.

use std::net::IpAddr;

use edge_model::{
    App, AppInstKey, AppPort, CloudletResources, ClusterKey, Flavor, HealthCheck, IpAccess,
};
use tokio::sync::broadcast;

/// Where an operation's progress lines go.
pub trait ProgressSink: Send + Sync {
    fn line(&self, message: String);
}

/// A sink that drops everything (tests, internal cleanups).
pub struct Quiet;

impl ProgressSink for Quiet {
    fn line(&self, _: String) {}
}

/// A cluster to create or update.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSpec {
    pub key: ClusterKey,
    pub flavor: Option<Flavor>,
    pub num_masters: u32,
    pub num_nodes: u32,
    pub ip_access: IpAccess,
}

/// An app instance to run.
#[derive(Clone, Debug, PartialEq)]
pub struct InstSpec {
    pub key: AppInstKey,
    pub app: App,
    /// The cluster it runs in (`None`: directly on the cloudlet).
    pub cluster: Option<ClusterKey>,
    /// The app's access ports: what the instance listens on (internal ports).
    pub ports: Vec<AppPort>,
}

/// A cluster as the platform made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    /// Where the cloudlet's root LB sends the cluster's traffic.
    pub node_address: IpAddr,
}

/// What the cloudlet offers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlatformInfo {
    pub flavors: Vec<Flavor>,
    pub resources: CloudletResources,
}

/// What exists on the platform now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inventory {
    pub clusters: Vec<(ClusterKey, ClusterStatus)>,
    pub insts: Vec<AppInstKey>,
}

/// Why a platform operation failed; the message is what the user reads.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The request cannot work as given (e.g. a port already taken on the host).
    #[error("{0}")]
    Invalid(String),
    /// A dependency is not there (e.g. the instance's cluster).
    #[error("{0}")]
    Missing(String),
    /// The app's program failed to start or to serve.
    #[error("{0}")]
    Workload(String),
    /// The infrastructure failed (I/O, a command).
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// One cloudlet's infrastructure.
#[async_trait::async_trait]
pub trait Platform: Send + Sync + 'static {
    /// The driver's name (`fake`, `local`): a cloudlet's `platform_type`.
    fn kind(&self) -> &'static str;

    /// Flavors, capacity and use.
    async fn info(&self) -> Result<PlatformInfo, PlatformError>;

    async fn create_cluster(
        &self,
        spec: &ClusterSpec,
        progress: &dyn ProgressSink,
    ) -> Result<ClusterStatus, PlatformError>;

    async fn update_cluster(
        &self,
        spec: &ClusterSpec,
        progress: &dyn ProgressSink,
    ) -> Result<ClusterStatus, PlatformError>;

    /// Deleting a cluster that does not exist succeeds.
    async fn delete_cluster(
        &self,
        key: &ClusterKey,
        progress: &dyn ProgressSink,
    ) -> Result<(), PlatformError>;

    async fn create_app_inst(
        &self,
        spec: &InstSpec,
        progress: &dyn ProgressSink,
    ) -> Result<(), PlatformError>;

    /// Replaces a running instance with `spec`; by default delete, then create.
    async fn update_app_inst(
        &self,
        spec: &InstSpec,
        progress: &dyn ProgressSink,
    ) -> Result<(), PlatformError> {
        self.delete_app_inst(&spec.key, progress).await?;
        self.create_app_inst(spec, progress).await
    }

    /// Deleting an instance that does not exist succeeds.
    async fn delete_app_inst(
        &self,
        key: &AppInstKey,
        progress: &dyn ProgressSink,
    ) -> Result<(), PlatformError>;

    /// What exists now (asked once when the CRM starts, to adopt it).
    async fn inventory(&self) -> Result<Inventory, PlatformError>;

    /// The instance's health as the platform sees it (`Unknown` when it has no opinion).
    fn health(&self, key: &AppInstKey) -> HealthCheck;

    /// Keys of instances whose [`Platform::health`] changed.
    fn health_changes(&self) -> broadcast::Receiver<AppInstKey>;

    /// Stops every workload (an all-in-one region shutting down). Workloads otherwise outlive
    /// the CRM, so a restarted CRM adopts them.
    async fn stop_all(&self) {}
}

pub mod fake;
pub mod local;
