//! Deployment → document text. Every computed field (uri, mapped ports, states) is written out,
//! so reading the text back gives the same deployment; fields at their defaults that carry no
//! information (empty lists, false flags) are left out to keep the output short. Keys, locations
//! and ports are flow mappings so each object stays readable at a glance.

use serde::Serialize;
use serde_saphyr::{FlowMap, FlowSeq};

use super::{Deployment, VERSION};
use crate::ports::{AppPort, format_access_ports};
use crate::types::{App, AppInst, AppKey, Cloudlet, ClusterInst, NetworkLocation, Settings};

#[derive(Serialize)]
struct Document<'a> {
    version: i64,
    region: &'a str,
    settings: SettingsOut<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    operator_codes: Vec<FlowMap<OperatorCodeOut<'a>>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    flavors: Vec<FlowMap<FlavorOut<'a>>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cloudlets: Vec<CloudletOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    apps: Vec<AppOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cluster_insts: Vec<ClusterInstOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    app_insts: Vec<AppInstOut<'a>>,
}

#[derive(Serialize)]
struct SettingsOut<'a> {
    public_cloud_orgs: FlowSeq<&'a [String]>,
    public_cloud_padding_km: f64,
    very_close_km: f64,
    randomize_very_close: bool,
    network_location: FlowMap<NetworkLocationOut>,
    app_dns_root: &'a str,
}

#[derive(Serialize)]
struct NetworkLocationOut {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    latitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    longitude: Option<f64>,
}

#[derive(Serialize)]
struct OperatorCodeOut<'a> {
    code: &'a str,
    organization: &'a str,
}

#[derive(Serialize)]
struct FlavorOut<'a> {
    name: &'a str,
    ram_mb: u64,
    vcpus: u64,
    disk_gb: u64,
}

#[derive(Serialize)]
struct OrgName<'a> {
    organization: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct AppKeyOut<'a> {
    organization: &'a str,
    name: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

#[derive(Serialize)]
struct CloudletOut<'a> {
    key: FlowMap<OrgName<'a>>,
    location: FlowMap<Location>,
    platform_type: &'a str,
    #[serde(skip_serializing_if = "no_items")]
    alliance_orgs: FlowSeq<&'a [String]>,
    maintenance_state: &'static str,
    state: &'static str,
}

#[derive(Serialize)]
struct AppOut<'a> {
    key: FlowMap<AppKeyOut<'a>>,
    deployment: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    image_path: &'a str,
    #[serde(skip_serializing_if = "String::is_empty")]
    access_ports: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_flavor: Option<&'a str>,
    #[serde(skip_serializing_if = "String::is_empty")]
    official_fqdn: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    android_package_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_public_key: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    platform_app: bool,
}

#[derive(Serialize)]
struct ClusterInstOut<'a> {
    key: FlowMap<OrgName<'a>>,
    cloudlet: FlowMap<OrgName<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flavor: Option<&'a str>,
    ip_access: &'static str,
    num_masters: u32,
    num_nodes: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_address: Option<String>,
}

#[derive(Serialize)]
struct AppInstOut<'a> {
    key: FlowMap<OrgName<'a>>,
    app: FlowMap<AppKeyOut<'a>>,
    cloudlet: FlowMap<OrgName<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    uri: &'a str,
    // Always written, even empty: absent would mean "the app's access ports".
    mapped_ports: Vec<FlowMap<PortOut<'a>>>,
    state: &'static str,
    health: &'static str,
}

#[derive(Serialize)]
struct PortOut<'a> {
    proto: &'static str,
    internal_port: i32,
    public_port: i32,
    #[serde(skip_serializing_if = "is_zero_i32")]
    end_port: i32,
    #[serde(skip_serializing_if = "is_false")]
    tls: bool,
    #[serde(skip_serializing_if = "is_false")]
    nginx: bool,
    #[serde(skip_serializing_if = "is_zero_i64")]
    max_pkt_size: i64,
    #[serde(skip_serializing_if = "str::is_empty")]
    fqdn_prefix: &'a str,
}

fn no_items(list: &FlowSeq<&[String]>) -> bool {
    list.0.is_empty()
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

pub(super) fn to_yaml(d: &Deployment) -> String {
    let doc = Document {
        version: VERSION,
        region: &d.region,
        settings: settings(&d.settings),
        operator_codes: d
            .operator_codes
            .iter()
            .map(|c| {
                FlowMap(OperatorCodeOut {
                    code: &c.code,
                    organization: &c.organization,
                })
            })
            .collect(),
        flavors: d
            .flavors
            .iter()
            .map(|f| {
                FlowMap(FlavorOut {
                    name: &f.name,
                    ram_mb: f.ram_mb,
                    vcpus: f.vcpus,
                    disk_gb: f.disk_gb,
                })
            })
            .collect(),
        cloudlets: d.cloudlets.iter().map(cloudlet).collect(),
        apps: d.apps.iter().map(app).collect(),
        cluster_insts: d.cluster_insts.iter().map(cluster_inst).collect(),
        app_insts: d.app_insts.iter().map(app_inst).collect(),
    };
    // Plain structs of strings and numbers always serialise; the fallback keeps this total.
    serde_saphyr::to_string(&doc)
        .unwrap_or_else(|e| format!("# cannot serialise the deployment: {e}\n"))
}

fn settings(s: &Settings) -> SettingsOut<'_> {
    let network_location = match &s.network_location {
        NetworkLocation::GeoIp => NetworkLocationOut {
            kind: "geoip",
            latitude: None,
            longitude: None,
        },
        NetworkLocation::Static(p) => NetworkLocationOut {
            kind: "static",
            latitude: Some(p.lat()),
            longitude: Some(p.lon()),
        },
    };
    SettingsOut {
        public_cloud_orgs: FlowSeq(&s.public_cloud_orgs),
        public_cloud_padding_km: s.public_cloud_padding_km,
        very_close_km: s.very_close_km,
        randomize_very_close: s.randomize_very_close,
        network_location: FlowMap(network_location),
        app_dns_root: &s.app_dns_root,
    }
}

fn org_name<'a>(organization: &'a str, name: &'a str) -> FlowMap<OrgName<'a>> {
    FlowMap(OrgName { organization, name })
}

fn app_key(k: &AppKey) -> FlowMap<AppKeyOut<'_>> {
    FlowMap(AppKeyOut {
        organization: &k.organization,
        name: &k.name,
        version: &k.version,
    })
}

fn cloudlet(c: &Cloudlet) -> CloudletOut<'_> {
    CloudletOut {
        key: org_name(&c.key.organization, &c.key.name),
        location: FlowMap(Location {
            latitude: c.location.lat(),
            longitude: c.location.lon(),
        }),
        platform_type: &c.platform_type,
        alliance_orgs: FlowSeq(&c.alliance_orgs),
        maintenance_state: c.maintenance_state.as_str(),
        state: c.state.as_str(),
    }
}

fn app(a: &App) -> AppOut<'_> {
    AppOut {
        key: app_key(&a.key),
        deployment: a.deployment.as_str(),
        image_path: &a.image_path,
        access_ports: format_access_ports(&a.access_ports),
        default_flavor: a.default_flavor.as_deref(),
        official_fqdn: a.official_fqdn.join(","),
        android_package_name: &a.android_package_name,
        auth_public_key: a.auth_public_key.as_deref(),
        platform_app: a.platform_app,
    }
}

fn cluster_inst(c: &ClusterInst) -> ClusterInstOut<'_> {
    ClusterInstOut {
        key: org_name(&c.key.organization, &c.key.name),
        cloudlet: org_name(&c.cloudlet.organization, &c.cloudlet.name),
        flavor: c.flavor.as_deref(),
        ip_access: c.ip_access.as_str(),
        num_masters: c.num_masters,
        num_nodes: c.num_nodes,
        node_address: c.node_address.map(|a| a.to_string()),
    }
}

fn app_inst(a: &AppInst) -> AppInstOut<'_> {
    AppInstOut {
        key: org_name(&a.key.organization, &a.key.name),
        app: app_key(&a.app),
        cloudlet: org_name(&a.cloudlet.organization, &a.cloudlet.name),
        cluster: a.cluster.as_deref(),
        uri: &a.uri,
        mapped_ports: a.mapped_ports.iter().map(port).collect(),
        state: a.state.as_str(),
        health: a.health.as_str(),
    }
}

fn port(p: &AppPort) -> FlowMap<PortOut<'_>> {
    FlowMap(PortOut {
        proto: p.proto.as_str(),
        internal_port: p.internal_port,
        public_port: p.public_port,
        end_port: p.end_port,
        tls: p.tls,
        nginx: p.nginx,
        max_pkt_size: p.max_pkt_size,
        fqdn_prefix: &p.fqdn_prefix,
    })
}
