//! Domain types. Enum discriminants equal the DME wire values so conversion to and from the
//! protobuf enums is a plain cast at the edge.

use geodata::LatLon;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

use crate::ports::AppPort;

/// Identifies an application definition: developer organization, name and version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppKey {
    pub organization: String,
    pub name: String,
    pub version: String,
}

/// Identifies a cloudlet: the operator organization (the carrier) and the cloudlet name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CloudletKey {
    pub organization: String,
    pub name: String,
}

/// Identifies an app instance region-wide (EdgeXR style): organization and instance name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppInstKey {
    pub organization: String,
    pub name: String,
}

/// Identifies a cluster instance: organization and cluster name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClusterKey {
    pub organization: String,
    pub name: String,
}

impl fmt::Display for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.organization, self.name, self.version)
    }
}
impl fmt::Display for CloudletKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.organization, self.name)
    }
}
impl fmt::Display for AppInstKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.organization, self.name)
    }
}
impl fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.organization, self.name)
    }
}

/// Online state of a cloudlet as its CRM reports it (CloudletInfo). Wire values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(i32)]
pub enum CloudletState {
    #[default]
    Unknown = 0,
    Errors = 1,
    Ready = 2,
    Offline = 3,
    NotPresent = 4,
    Init = 5,
    Upgrade = 6,
    NeedSync = 7,
}

/// Maintenance state of a cloudlet (Cloudlet object). Wire values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(i32)]
pub enum MaintenanceState {
    #[default]
    NormalOperation = 0,
    MaintenanceStart = 1,
    FailoverRequested = 2,
    FailoverDone = 3,
    FailoverError = 4,
    MaintenanceStartNoFailover = 5,
    CrmRequested = 6,
    CrmUnderMaintenance = 7,
    CrmError = 8,
    NormalOperationInit = 9,
    UnderMaintenance = 31,
}

/// Health of an app instance as health checks report it. Wire values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(i32)]
pub enum HealthCheck {
    #[default]
    Unknown = 0,
    RootlbOffline = 1,
    ServerFail = 2,
    Ok = 3,
    CloudletOffline = 4,
}

/// Lifecycle state of a controller-managed object. Wire values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(i32)]
pub enum TrackedState {
    #[default]
    Unknown = 0,
    NotPresent = 1,
    CreateRequested = 2,
    Creating = 3,
    CreateError = 4,
    Ready = 5,
    UpdateRequested = 6,
    Updating = 7,
    UpdateError = 8,
    DeleteRequested = 9,
    Deleting = 10,
    DeleteError = 11,
    DeletePrepare = 12,
    CrmInitok = 13,
    CreatingDependencies = 14,
    DeleteDone = 15,
}

/// Maps a carrier code (MCC+MNC or any string a client sends) to an operator organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorCode {
    pub code: String,
    pub organization: String,
}

/// What a cloudlet's CRM reports about it; the DME takes the cloudlet's online state from here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudletInfo {
    pub key: CloudletKey,
    pub state: CloudletState,
    /// The notify connection that reported it, so the controller can mark exactly that CRM's
    /// cloudlets offline when the connection drops.
    pub notify_id: u64,
    pub errors: Vec<String>,
    /// Public address of the cloudlet's shared root LB: where the names it serves resolve.
    pub rootlb_address: Option<IpAddr>,
    /// Flavors the platform offers.
    pub flavors: Vec<Flavor>,
    pub resources: CloudletResources,
}

/// A cloudlet's capacity and use, as its CRM last measured it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CloudletResources {
    pub vcpus_max: u64,
    pub vcpus_used: u64,
    pub ram_mb_max: u64,
    pub ram_mb_used: u64,
    pub disk_gb_max: u64,
    pub disk_gb_used: u64,
}

impl CloudletInfo {
    /// Info with only a state (no resources, flavors or LB address known).
    pub fn with_state(key: CloudletKey, state: CloudletState) -> Self {
        Self {
            key,
            state,
            notify_id: 0,
            errors: Vec::new(),
            rootlb_address: None,
            flavors: Vec::new(),
            resources: CloudletResources::default(),
        }
    }
}

/// A compute size for clusters and VMs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flavor {
    pub name: String,
    pub ram_mb: u64,
    pub vcpus: u64,
    pub disk_gb: u64,
}

/// An operator's edge site.
#[derive(Clone, Debug, PartialEq)]
pub struct Cloudlet {
    pub key: CloudletKey,
    pub location: LatLon,
    /// Platform driver name (`fake`, `local`, ...).
    pub platform_type: String,
    /// Other carriers whose clients may use this cloudlet.
    pub alliance_orgs: Vec<String>,
    pub maintenance_state: MaintenanceState,
    /// The state a CRM would report (CloudletInfo); set directly only in standalone documents.
    pub state: CloudletState,
}

/// How an app is deployed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DeploymentKind {
    #[default]
    Docker,
    Kubernetes,
    Helm,
    Vm,
    Process,
}

/// An application definition.
#[derive(Clone, Debug, PartialEq)]
pub struct App {
    pub key: AppKey,
    pub deployment: DeploymentKind,
    pub image_path: String,
    /// Parsed access ports (see [`crate::ports`]); the textual form is `access_ports_text`.
    pub access_ports: Vec<AppPort>,
    pub default_flavor: Option<String>,
    /// Official FQDNs (the document allows a comma-separated list).
    pub official_fqdn: Vec<String>,
    pub android_package_name: String,
    /// PEM RSA public key; when present RegisterClient requires a signed auth token.
    pub auth_public_key: Option<String>,
    /// Platform apps may call PlatformFindCloudlet and GetFqdnList and are never returned by
    /// FindCloudlet.
    pub platform_app: bool,
}

/// Whether a cluster sits behind the cloudlet's shared root LB or has its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum IpAccess {
    #[default]
    Shared,
    Dedicated,
}

/// A cluster on a cloudlet.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterInst {
    pub key: ClusterKey,
    pub cloudlet: CloudletKey,
    pub flavor: Option<String>,
    pub ip_access: IpAccess,
    pub num_masters: u32,
    pub num_nodes: u32,
    /// Lifecycle state; documents always give READY (there is no CRM to move it).
    pub state: TrackedState,
    /// The address the cloudlet's shared root LB proxies to (upstream: the cluster master
    /// node's IP). Reported by the CRM when the cluster is ready; `None` until then.
    pub node_address: Option<IpAddr>,
}

impl ClusterInst {
    /// Parses the textual `node_address` (wire, documents): empty means none, anything else
    /// must be an IPv4 or IPv6 address.
    pub fn parse_node_address(s: &str) -> Result<Option<IpAddr>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|_| format!("node_address must be an IP address, got {s:?}"))
    }
}

/// A running instance of an app on a cloudlet.
#[derive(Clone, Debug, PartialEq)]
pub struct AppInst {
    pub key: AppInstKey,
    pub app: AppKey,
    pub cloudlet: CloudletKey,
    /// Cluster name (organization = the instance's organization), if any.
    pub cluster: Option<String>,
    /// FQDN clients connect to (shared root LB or dedicated LB). Always filled after validation.
    pub uri: String,
    /// Access ports with their public ports. Always filled after validation.
    pub mapped_ports: Vec<AppPort>,
    pub state: TrackedState,
    /// What matching uses: `Ok`/`Unknown` are usable. Set from the root LB's checks and from
    /// [`AppInst::platform_health`], which wins while it is `ServerFail`.
    pub health: HealthCheck,
    /// The instance's health as its platform sees it (a process that exited is `ServerFail`),
    /// reported by the CRM; `Unknown` where no CRM reported one.
    pub platform_health: HealthCheck,
}

/// Where VerifyLocation / GetLocation take the device's network location from.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum NetworkLocation {
    /// Client IP through a GeoIP database (path given in the document or on the command line).
    #[default]
    GeoIp,
    /// A fixed point (tests, demos).
    Static(LatLon),
}

/// Region-wide settings that shape matching.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub public_cloud_orgs: Vec<String>,
    pub public_cloud_padding_km: f64,
    pub very_close_km: f64,
    pub randomize_very_close: bool,
    pub network_location: NetworkLocation,
    pub app_dns_root: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_cloud_orgs: vec!["azure".into(), "gcp".into(), "aws".into()],
            public_cloud_padding_km: 100.0,
            very_close_km: 1.0,
            randomize_very_close: true,
            network_location: NetworkLocation::GeoIp,
            app_dns_root: "edge.example.net".into(),
        }
    }
}
