//! Apps, ports, cluster instances and app instances.

use edge_model::{
    App, AppInst, AppPort, ClusterInst, HealthCheck, LProto, TrackedState, format_access_ports,
    parse_access_ports,
};

use super::enums::{deployment, ip_access};
use super::keys::{app_inst_key, app_key, cloudlet_key, cluster_key, field};
use super::objects::try_from_via;
use super::{ConvertError, ConvertErrorKind, Within, non_empty_list, optional, wire_enum};
use crate::pb;

try_from_via! {
    App => app, "app";
    AppPort => app_port, "app_port";
    ClusterInst => cluster_inst, "cluster_inst";
    AppInst => app_inst, "app_inst";
}

fn app(m: pb::App) -> Result<App, ConvertError> {
    let access_ports = parse_access_ports(&m.access_ports)
        .map_err(|e| ConvertError::new("access_ports", e.into()))?;
    Ok(App {
        key: field(m.key, "key", app_key)?,
        deployment: deployment(m.deployment, "deployment")?,
        image_path: m.image_path,
        access_ports,
        default_flavor: optional(m.default_flavor),
        official_fqdn: official_fqdn(m.official_fqdn)?,
        android_package_name: m.android_package_name,
        auth_public_key: optional(m.auth_public_key),
        platform_app: m.platform_app,
    })
}

/// Documents write the list comma-separated, so an entry with a comma could not be printed back.
fn official_fqdn(list: Vec<String>) -> Result<Vec<String>, ConvertError> {
    let list = non_empty_list(list, "official_fqdn")?;
    if let Some(i) = list.iter().position(|f| f.contains(',')) {
        return Err(ConvertError::new(
            format!("official_fqdn[{i}]"),
            ConvertErrorKind::Invalid("must not contain `,` (one FQDN per entry)".into()),
        ));
    }
    Ok(list)
}

impl From<&App> for pb::App {
    fn from(a: &App) -> Self {
        Self {
            key: Some((&a.key).into()),
            deployment: pb::DeploymentKind::from(a.deployment) as i32,
            image_path: a.image_path.clone(),
            access_ports: format_access_ports(&a.access_ports),
            default_flavor: a.default_flavor.clone().unwrap_or_default(),
            official_fqdn: a.official_fqdn.clone(),
            android_package_name: a.android_package_name.clone(),
            auth_public_key: a.auth_public_key.clone().unwrap_or_default(),
            platform_app: a.platform_app,
        }
    }
}

/// A port number field; `min` is 0 where 0 means "none" (public port not allocated, no range).
fn port(value: i32, min: i32, field: &str) -> Result<i32, ConvertError> {
    if (min..=65535).contains(&value) {
        Ok(value)
    } else {
        let msg = format!("{value} is not a port number in {min}-65535");
        Err(ConvertError::new(field, ConvertErrorKind::Invalid(msg)))
    }
}

fn app_port(m: pb::AppPort) -> Result<AppPort, ConvertError> {
    if m.proto == LProto::Unknown as i32 {
        return Err(ConvertError::new(
            "proto",
            ConvertErrorKind::Unspecified("LProto"),
        ));
    }
    let internal_port = port(m.internal_port, 1, "internal_port")?;
    let end_port = port(m.end_port, 0, "end_port")?;
    if end_port != 0 && end_port <= internal_port {
        let msg = format!("{end_port} must be greater than internal_port {internal_port}");
        return Err(ConvertError::new(
            "end_port",
            ConvertErrorKind::Invalid(msg),
        ));
    }
    Ok(AppPort {
        proto: wire_enum(m.proto, "proto", "LProto", LProto::from_wire)?,
        internal_port,
        public_port: port(m.public_port, 0, "public_port")?,
        fqdn_prefix: m.fqdn_prefix,
        end_port,
        tls: m.tls,
        nginx: m.nginx,
        max_pkt_size: m.max_pkt_size,
    })
}

impl From<&AppPort> for pb::AppPort {
    fn from(p: &AppPort) -> Self {
        Self {
            proto: p.proto as i32,
            internal_port: p.internal_port,
            public_port: p.public_port,
            fqdn_prefix: p.fqdn_prefix.clone(),
            end_port: p.end_port,
            tls: p.tls,
            nginx: p.nginx,
            max_pkt_size: p.max_pkt_size,
        }
    }
}

fn tracked_state(value: i32) -> Result<TrackedState, ConvertError> {
    wire_enum(value, "state", "TrackedState", TrackedState::from_wire)
}

fn cluster_inst(m: pb::ClusterInst) -> Result<ClusterInst, ConvertError> {
    Ok(ClusterInst {
        key: field(m.key, "key", cluster_key)?,
        cloudlet: field(m.cloudlet, "cloudlet", cloudlet_key)?,
        flavor: optional(m.flavor),
        ip_access: ip_access(m.ip_access, "ip_access")?,
        num_masters: m.num_masters,
        num_nodes: m.num_nodes,
        state: tracked_state(m.state)?,
        node_address: ClusterInst::parse_node_address(&m.node_address)
            .map_err(|e| ConvertError::new("node_address", ConvertErrorKind::Invalid(e)))?,
    })
}

impl From<&ClusterInst> for pb::ClusterInst {
    fn from(c: &ClusterInst) -> Self {
        Self {
            key: Some((&c.key).into()),
            cloudlet: Some((&c.cloudlet).into()),
            flavor: c.flavor.clone().unwrap_or_default(),
            ip_access: pb::IpAccess::from(c.ip_access) as i32,
            num_masters: c.num_masters,
            num_nodes: c.num_nodes,
            state: c.state as i32,
            node_address: c.node_address.map(|a| a.to_string()).unwrap_or_default(),
        }
    }
}

/// `errors` has no place in the domain `AppInst` (the DME and its fixtures build it as a
/// literal), so it is dropped here; the controller reads it from the wire message if it needs it.
fn app_inst(m: pb::AppInst) -> Result<AppInst, ConvertError> {
    let mapped_ports = m
        .mapped_ports
        .into_iter()
        .enumerate()
        .map(|(i, p)| app_port(p).map_err(|e| e.within(&format!("mapped_ports[{i}]"))))
        .collect::<Result<_, _>>()?;
    Ok(AppInst {
        key: field(m.key, "key", app_inst_key)?,
        app: field(m.app, "app", app_key)?,
        cloudlet: field(m.cloudlet, "cloudlet", cloudlet_key)?,
        cluster: optional(m.cluster),
        uri: m.uri,
        mapped_ports,
        state: tracked_state(m.state)?,
        health: wire_enum(m.health, "health", "HealthCheck", HealthCheck::from_wire)?,
        platform_health: wire_enum(
            m.platform_health,
            "platform_health",
            "HealthCheck",
            HealthCheck::from_wire,
        )?,
    })
}

impl From<&AppInst> for pb::AppInst {
    fn from(a: &AppInst) -> Self {
        Self {
            key: Some((&a.key).into()),
            app: Some((&a.app).into()),
            cloudlet: Some((&a.cloudlet).into()),
            cluster: a.cluster.clone().unwrap_or_default(),
            uri: a.uri.clone(),
            mapped_ports: a.mapped_ports.iter().map(Into::into).collect(),
            state: a.state as i32,
            health: a.health as i32,
            errors: Vec::new(),
            platform_health: a.platform_health as i32,
        }
    }
}
