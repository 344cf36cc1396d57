//! Raw apps, cluster instances and app instances → domain types, resolving every reference
//! against the objects converted before them.

use std::collections::{HashMap, HashSet};

use super::check::{Seen, enum_or, line_of, non_empty, parse_enum};
use super::convert::{Names, cloudlet_key, org_name};
use super::raw::{RawApp, RawAppInst, RawAppKey, RawClusterInst, RawMappedPort, S};
use super::{DocumentError, ErrorKind};
use crate::naming;
use crate::ports::{AppPort, LProto, parse_access_ports};
use crate::types::{
    App, AppInst, AppInstKey, AppKey, CloudletKey, ClusterInst, ClusterKey, DeploymentKind,
    HealthCheck, IpAccess, Settings, TrackedState,
};

/// What later sections may refer to.
#[derive(Default)]
pub(super) struct Refs {
    pub flavors: Names,
    pub cloudlets: HashSet<CloudletKey>,
    /// Each app's access ports, the default (and the allowed set) of its instances' ports.
    pub apps: HashMap<AppKey, Vec<AppPort>>,
    /// Each cluster's cloudlet.
    pub clusters: HashMap<ClusterKey, CloudletKey>,
}

fn dangling(
    path: &str,
    at: Option<usize>,
    what: &'static str,
    key: &dyn std::fmt::Display,
) -> DocumentError {
    DocumentError::at(
        path,
        at,
        ErrorKind::Dangling {
            what,
            key: key.to_string(),
        },
    )
}

/// An optional flavor reference: non-empty and defined.
fn flavor_ref(
    raw: Option<&S<String>>,
    path: &str,
    refs: &Refs,
) -> Result<Option<String>, DocumentError> {
    let Some(f) = raw else { return Ok(None) };
    non_empty(&f.value, path, line_of(f))?;
    if !refs.flavors.contains(&f.value) {
        return Err(dangling(path, line_of(f), "flavor", &f.value));
    }
    Ok(Some(f.value.clone()))
}

fn app_key(raw: &S<RawAppKey>, path: &str) -> Result<AppKey, DocumentError> {
    let k = &raw.value;
    for (field, value) in [
        ("organization", &k.organization),
        ("name", &k.name),
        ("version", &k.version),
    ] {
        non_empty(value, &format!("{path}.{field}"), line_of(raw))?;
    }
    Ok(AppKey {
        organization: k.organization.clone(),
        name: k.name.clone(),
        version: k.version.clone(),
    })
}

pub(super) fn apps(raw: &[S<RawApp>], refs: &mut Refs) -> Result<Vec<App>, DocumentError> {
    let mut seen = Seen::new("app");
    let mut out = Vec::with_capacity(raw.len());
    for (i, item) in raw.iter().enumerate() {
        let app = app(&item.value, &format!("apps[{i}]"), refs)?;
        seen.insert(
            &app.key,
            &format!("apps[{i}].key"),
            line_of(&item.value.key),
        )?;
        refs.apps.insert(app.key.clone(), app.access_ports.clone());
        out.push(app);
    }
    Ok(out)
}

fn app(a: &RawApp, path: &str, refs: &Refs) -> Result<App, DocumentError> {
    let access_ports = match &a.access_ports {
        None => Vec::new(),
        Some(p) => parse_access_ports(&p.value)
            .map_err(|e| DocumentError::at(format!("{path}.access_ports"), line_of(p), e.into()))?,
    };
    if let Some(k) = &a.auth_public_key {
        let pem = k.value.trim();
        if !(pem.starts_with("-----BEGIN ") && pem.contains("-----END ")) {
            let msg = "must be a PEM public key (-----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY-----)";
            return Err(DocumentError::at(
                format!("{path}.auth_public_key"),
                line_of(k),
                ErrorKind::Invalid(msg.into()),
            ));
        }
    }
    Ok(App {
        key: app_key(&a.key, &format!("{path}.key"))?,
        deployment: enum_or(
            a.deployment.as_ref(),
            &format!("{path}.deployment"),
            DeploymentKind::Docker,
        )?,
        image_path: a.image_path.clone().unwrap_or_default(),
        access_ports,
        default_flavor: flavor_ref(
            a.default_flavor.as_ref(),
            &format!("{path}.default_flavor"),
            refs,
        )?,
        official_fqdn: a
            .official_fqdn
            .iter()
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect(),
        android_package_name: a.android_package_name.clone().unwrap_or_default(),
        auth_public_key: a.auth_public_key.as_ref().map(|k| k.value.clone()),
        platform_app: a.platform_app.unwrap_or(false),
    })
}

pub(super) fn cluster_insts(
    raw: &[S<RawClusterInst>],
    refs: &mut Refs,
) -> Result<Vec<ClusterInst>, DocumentError> {
    let mut seen = Seen::new("cluster instance");
    let mut out = Vec::with_capacity(raw.len());
    for (i, item) in raw.iter().enumerate() {
        let path = format!("cluster_insts[{i}]");
        let c = &item.value;
        let (organization, name) = org_name(&c.key, &format!("{path}.key"))?;
        let key = ClusterKey { organization, name };
        seen.insert(&key, &format!("{path}.key"), line_of(&c.key))?;
        let cloudlet = cloudlet_key(&c.cloudlet, &format!("{path}.cloudlet"))?;
        if !refs.cloudlets.contains(&cloudlet) {
            return Err(dangling(
                &format!("{path}.cloudlet"),
                line_of(&c.cloudlet),
                "cloudlet",
                &cloudlet,
            ));
        }
        refs.clusters.insert(key.clone(), cloudlet.clone());
        let node_address = match &c.node_address {
            None => None,
            Some(a) => ClusterInst::parse_node_address(&a.value).map_err(|e| {
                DocumentError::at(
                    format!("{path}.node_address"),
                    line_of(a),
                    ErrorKind::Invalid(e),
                )
            })?,
        };
        out.push(ClusterInst {
            key,
            cloudlet,
            flavor: flavor_ref(c.flavor.as_ref(), &format!("{path}.flavor"), refs)?,
            ip_access: enum_or(
                c.ip_access.as_ref(),
                &format!("{path}.ip_access"),
                IpAccess::Shared,
            )?,
            // Upstream gives kubernetes clusters one master when none is asked for.
            num_masters: c.num_masters.unwrap_or(1),
            num_nodes: c.num_nodes.unwrap_or(0),
            // The document format has no cluster state: without a CRM a cluster is READY.
            state: TrackedState::Ready,
            node_address,
        });
    }
    Ok(out)
}

pub(super) fn app_insts(
    raw: &[S<RawAppInst>],
    refs: &Refs,
    region: &str,
    settings: &Settings,
) -> Result<Vec<AppInst>, DocumentError> {
    let mut seen = Seen::new("app instance");
    let mut out = Vec::with_capacity(raw.len());
    for (i, item) in raw.iter().enumerate() {
        let inst = app_inst(item, &format!("app_insts[{i}]"), refs, region, settings)?;
        seen.insert(
            &inst.key,
            &format!("app_insts[{i}].key"),
            line_of(&item.value.key),
        )?;
        out.push(inst);
    }
    Ok(out)
}

fn app_inst(
    item: &S<RawAppInst>,
    path: &str,
    refs: &Refs,
    region: &str,
    settings: &Settings,
) -> Result<AppInst, DocumentError> {
    let a = &item.value;
    let (organization, name) = org_name(&a.key, &format!("{path}.key"))?;
    let key = AppInstKey { organization, name };
    let app = app_key(&a.app, &format!("{path}.app"))?;
    let Some(access_ports) = refs.apps.get(&app) else {
        return Err(dangling(
            &format!("{path}.app"),
            line_of(&a.app),
            "app",
            &app,
        ));
    };
    let cloudlet = cloudlet_key(&a.cloudlet, &format!("{path}.cloudlet"))?;
    if !refs.cloudlets.contains(&cloudlet) {
        return Err(dangling(
            &format!("{path}.cloudlet"),
            line_of(&a.cloudlet),
            "cloudlet",
            &cloudlet,
        ));
    }
    let cluster = match &a.cluster {
        None => None,
        Some(c) => Some(cluster_ref(
            c,
            &format!("{path}.cluster"),
            &key,
            &cloudlet,
            refs,
        )?),
    };
    let uri = match &a.uri {
        Some(u) => {
            non_empty(&u.value, &format!("{path}.uri"), line_of(u)).map(|()| u.value.clone())?
        }
        None => default_uri(&app, &cloudlet, region, settings, path, line_of(item))?,
    };
    let mapped_ports = match &a.mapped_ports {
        None => access_ports.clone(),
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(j, p)| mapped_port(p, &format!("{path}.mapped_ports[{j}]"), access_ports, &app))
            .collect::<Result<_, _>>()?,
    };
    Ok(AppInst {
        key,
        app,
        cloudlet,
        cluster,
        uri,
        mapped_ports,
        state: enum_or(
            a.state.as_ref(),
            &format!("{path}.state"),
            TrackedState::Ready,
        )?,
        health: enum_or(
            a.health.as_ref(),
            &format!("{path}.health"),
            HealthCheck::Ok,
        )?,
        platform_health: HealthCheck::Unknown,
    })
}

/// A cluster named by an app instance: the instance's organization, on the same cloudlet.
fn cluster_ref(
    raw: &S<String>,
    path: &str,
    inst: &AppInstKey,
    cloudlet: &CloudletKey,
    refs: &Refs,
) -> Result<String, DocumentError> {
    non_empty(&raw.value, path, line_of(raw))?;
    let key = ClusterKey {
        organization: inst.organization.clone(),
        name: raw.value.clone(),
    };
    match refs.clusters.get(&key) {
        None => Err(dangling(path, line_of(raw), "cluster instance", &key)),
        Some(on) if on != cloudlet => Err(DocumentError::at(
            path,
            line_of(raw),
            ErrorKind::Mismatch(format!(
                "cluster instance {key} is on cloudlet {on}, not on {cloudlet}"
            )),
        )),
        Some(_) => Ok(raw.value.clone()),
    }
}

fn default_uri(
    app: &AppKey,
    cloudlet: &CloudletKey,
    region: &str,
    settings: &Settings,
    path: &str,
    at: Option<usize>,
) -> Result<String, DocumentError> {
    if naming::app_dns_label(app).is_empty() || naming::cloudlet_dns_label(cloudlet).is_empty() {
        let msg =
            format!("cannot derive a DNS name from app {app} on cloudlet {cloudlet}; give `uri`");
        return Err(DocumentError::at(path, at, ErrorKind::Invalid(msg)));
    }
    Ok(naming::app_inst_fqdn(
        app,
        cloudlet,
        region,
        &settings.app_dns_root,
    ))
}

/// An explicit mapped port: valid numbers, and an access port of the app behind it.
fn mapped_port(
    raw: &S<RawMappedPort>,
    path: &str,
    access: &[AppPort],
    app: &AppKey,
) -> Result<AppPort, DocumentError> {
    let (p, at) = (&raw.value, line_of(raw));
    let invalid = |field: &str, msg: String| {
        DocumentError::at(format!("{path}.{field}"), at, ErrorKind::Invalid(msg))
    };
    let proto: LProto = parse_enum(&p.proto, &format!("{path}.proto"))?;
    if proto == LProto::Unknown {
        return Err(invalid("proto", "proto must be tcp, udp or http".into()));
    }
    let valid = |port: i32| (1..=65535).contains(&port);
    if !valid(p.internal_port) {
        return Err(invalid(
            "internal_port",
            format!("{} is not in 1-65535", p.internal_port),
        ));
    }
    let public_port = p.public_port.unwrap_or(p.internal_port);
    if !valid(public_port) {
        return Err(invalid(
            "public_port",
            format!("{public_port} is not in 1-65535"),
        ));
    }
    let end_port = p.end_port.unwrap_or(0);
    if end_port != 0 && !(valid(end_port) && end_port > p.internal_port) {
        return Err(invalid(
            "end_port",
            format!("{end_port} must be 0 or in {}-65535", p.internal_port + 1),
        ));
    }
    let max_pkt_size = p.max_pkt_size.unwrap_or(0);
    if max_pkt_size < 0 {
        return Err(invalid(
            "max_pkt_size",
            format!("{max_pkt_size} must be >= 0"),
        ));
    }
    let port = AppPort {
        proto,
        internal_port: p.internal_port,
        public_port,
        fqdn_prefix: p.fqdn_prefix.clone().unwrap_or_default(),
        end_port,
        tls: p.tls.unwrap_or(false),
        nginx: p.nginx.unwrap_or(false),
        max_pkt_size,
    };
    let declared = access.iter().any(|a| {
        a.proto == proto && a.internal_port == port.internal_port && a.end_port == end_port
    });
    if !declared {
        let what = format!(
            "{proto}:{}{} in access_ports of app {app}",
            port.internal_port,
            range_suffix(end_port)
        );
        return Err(DocumentError::at(
            path,
            at,
            ErrorKind::Dangling {
                what: "port",
                key: what,
            },
        ));
    }
    Ok(port)
}

fn range_suffix(end_port: i32) -> String {
    if end_port == 0 {
        String::new()
    } else {
        format!("-{end_port}")
    }
}
