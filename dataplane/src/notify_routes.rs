//! Controller objects → the root LB's route table, and backend health → instance health. Pure:
//! no I/O, no clock; the notify subscriber ([`crate::subscribe`]) feeds it mirrored objects and
//! publishes what it returns.
//!
//! An app instance gets routes when it is READY, on this cloudlet, in a cluster behind the shared
//! root LB (`ip_access` shared) whose CRM has reported the cluster's `node_address`: one listener
//! per mapped port (`proto`, `public_port`) → backend `node_address:internal_port`, as upstream's
//! per-instance Envoy does. Two instances claiming one public port reject the whole table (the
//! controller's port allocation should make that impossible, so it means a bug or a corrupt
//! store); the previous table keeps serving.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use edge_api::subscriber::Replica;
use edge_model::{
    AppInst, AppInstKey, CloudletKey, ClusterInst, ClusterKey, HealthCheck as InstHealth, IpAccess,
    LProto, TrackedState,
};

use crate::table::{
    HealthCheck, ListenerKey, Proto, Route, RouteTable, TableError, TlsFiles, UdpProbe,
    UdpSettings, default,
};

/// Settings of every route built from the controller's objects (the routes file's `defaults`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOptions {
    /// Address public listeners bind.
    pub listen_ip: IpAddr,
    /// Cloudlet-wide certificate for `tls` ports (upstream: a wildcard certificate per
    /// cloudlet). Without it, `tls` ports get no listener.
    pub tls: Option<TlsFiles>,
    pub health_check: Option<HealthCheck>,
    pub connect_timeout: Duration,
    pub max_conns_per_backend: u32,
    pub eject_for: Duration,
    pub udp: UdpSettings,
    pub drain_grace: Duration,
}

impl Default for RouteOptions {
    fn default() -> Self {
        Self {
            listen_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            tls: None,
            // Upstream's Envoy health check: 5 s interval, 1 s timeout, 3 up / 3 down.
            health_check: Some(HealthCheck {
                interval: default::HC_INTERVAL,
                timeout: default::HC_TIMEOUT,
                rise: default::HC_RISE,
                fall: default::HC_FALL,
                udp: UdpProbe::default(),
            }),
            connect_timeout: default::CONNECT_TIMEOUT,
            max_conns_per_backend: default::MAX_CONNS_PER_BACKEND,
            eject_for: default::EJECT_FOR,
            udp: UdpSettings {
                idle_timeout: default::UDP_IDLE,
                max_flows: default::UDP_MAX_FLOWS,
            },
            drain_grace: default::DRAIN_GRACE,
        }
    }
}

/// A table built from the controller's objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub table: RouteTable,
    /// Route name ([`route_name`]) → the instance it serves, for health reports.
    pub instances: HashMap<Arc<str>, AppInstKey>,
    /// Ports of otherwise routable instances that got no listener, and why (for logs).
    pub skipped: Vec<String>,
}

/// Why no table was built; the previous table keeps serving.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoutesError {
    #[error("routes for cloudlet {cloudlet} rejected: {}", .problems.join("; "))]
    Conflict {
        cloudlet: CloudletKey,
        problems: Vec<String>,
    },
    #[error("routes for cloudlet {cloudlet} rejected: {source}")]
    Table {
        cloudlet: CloudletKey,
        source: TableError,
    },
}

/// The route name of an instance: `organization/name` (metrics label, health events).
pub fn route_name(key: &AppInstKey) -> String {
    format!("{}/{}", key.organization, key.name)
}

/// Builds the route table of `cloudlet` from the objects the controller sent (of any
/// cloudlets: what is not relevant is ignored).
pub fn routes_for(
    cloudlet: &CloudletKey,
    objects: &Replica,
    opts: &RouteOptions,
) -> Result<Built, RoutesError> {
    let clusters: HashMap<&ClusterKey, &ClusterInst> = objects
        .cluster_insts()
        .filter(|c| c.cloudlet == *cloudlet)
        .map(|c| (&c.key, c))
        .collect();
    let mut insts: Vec<&AppInst> = objects
        .app_insts()
        .filter(|i| i.cloudlet == *cloudlet && i.state == TrackedState::Ready)
        .collect();
    // Deterministic order, so conflicts and skips read the same on every rebuild.
    insts.sort_by(|a, b| a.key.cmp(&b.key));

    let mut skipped = Vec::new();
    let mut problems = Vec::new();
    let mut owner: BTreeMap<ListenerKey, &AppInstKey> = BTreeMap::new();
    let mut routes = Vec::new();
    let mut instances = HashMap::new();
    for inst in insts {
        let Some(node) = node_of(inst, &clusters) else {
            continue;
        };
        let name: Arc<str> = route_name(&inst.key).into();
        for p in &inst.mapped_ports {
            let what = || format!("{name} {}:{}", proto_str(p.proto), p.public_port);
            let proto = match p.proto {
                LProto::Tcp | LProto::Http => Proto::Tcp,
                LProto::Udp => Proto::Udp,
                LProto::Unknown => {
                    skipped.push(format!("{}: unknown protocol", what()));
                    continue;
                }
            };
            let (Ok(public), Ok(internal)) =
                (u16::try_from(p.public_port), u16::try_from(p.internal_port))
            else {
                skipped.push(format!("{}: port out of range", what()));
                continue;
            };
            if public == 0 || internal == 0 {
                skipped.push(format!("{}: no public or internal port", what()));
                continue;
            }
            if p.end_port != 0 && p.end_port != p.internal_port {
                skipped.push(format!("{}: port ranges are not proxied", what()));
                continue;
            }
            let tls = if p.tls {
                match &opts.tls {
                    Some(files) => Some(files.clone()),
                    None => {
                        skipped.push(format!(
                            "{}: tls port but the root LB has no certificate (--tls-cert/--tls-key)",
                            what()
                        ));
                        continue;
                    }
                }
            } else {
                None
            };
            let key = ListenerKey {
                proto,
                port: public,
            };
            if let Some(prev) = owner.insert(key, &inst.key) {
                problems.push(format!(
                    "public port {key} is claimed by both {} and {name}",
                    route_name(prev)
                ));
                continue;
            }
            routes.push(Route {
                key,
                name: name.clone(),
                bind: opts.listen_ip,
                backends: vec![SocketAddr::new(node, internal)],
                tls,
                proxy_protocol_v2: false,
                connect_timeout: opts.connect_timeout,
                max_conns_per_backend: opts.max_conns_per_backend,
                health_check: opts.health_check.clone(),
                eject_for: opts.eject_for,
                udp: opts.udp,
                // The controller does not hand out QUIC server ids (yet): plain UDP.
                quic: None,
            });
            instances.insert(name.clone(), inst.key.clone());
        }
    }
    if !problems.is_empty() {
        return Err(RoutesError::Conflict {
            cloudlet: cloudlet.clone(),
            problems,
        });
    }
    let table =
        RouteTable::from_routes(opts.drain_grace, routes).map_err(|source| RoutesError::Table {
            cloudlet: cloudlet.clone(),
            source,
        })?;
    Ok(Built {
        table,
        instances,
        skipped,
    })
}

/// The backend address of an instance behind the shared LB, if it has one yet. Instances
/// without a cluster, in a dedicated cluster (their own LB) or whose cluster's node address is
/// not reported yet get no routes.
fn node_of(inst: &AppInst, clusters: &HashMap<&ClusterKey, &ClusterInst>) -> Option<IpAddr> {
    let name = inst.cluster.as_ref()?;
    let key = ClusterKey {
        organization: inst.key.organization.clone(),
        name: name.clone(),
    };
    let c = clusters.get(&key)?;
    (c.ip_access == IpAccess::Shared)
        .then_some(c.node_address)
        .flatten()
}

fn proto_str(p: LProto) -> &'static str {
    match p {
        LProto::Tcp => "tcp",
        LProto::Udp => "udp",
        LProto::Http => "http",
        LProto::Unknown => "unknown",
    }
}

/// One health-checked backend as the proxy sees it: the route name it serves and whether its
/// active checks currently pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendHealth<'a> {
    pub route: &'a str,
    pub healthy: bool,
}

/// Each instance's health from its health-checked backends: `ServerFail` when every one is
/// down, `Ok` when any is up. Instances without checked backends (UDP only, checks off) are
/// absent: the root LB has no opinion about them.
pub fn instance_health<'a>(
    backends: impl IntoIterator<Item = BackendHealth<'a>>,
    instances: &HashMap<Arc<str>, AppInstKey>,
) -> BTreeMap<AppInstKey, InstHealth> {
    let mut out = BTreeMap::new();
    for b in backends {
        let Some(key) = instances.get(b.route) else {
            continue;
        };
        let h = out.entry(key.clone()).or_insert(InstHealth::ServerFail);
        if b.healthy {
            *h = InstHealth::Ok;
        }
    }
    out
}

/// The health reports to send: `ServerFail` for an instance that is down but not marked so,
/// `Ok` for one that is up again but still marked `ServerFail` (other states, e.g.
/// `CloudletOffline`, belong to other reporters). `sent` holds what this connection already
/// sent, so a report is not repeated while the controller's answer is on its way.
pub fn health_reports(
    wanted: &BTreeMap<AppInstKey, InstHealth>,
    current: impl Fn(&AppInstKey) -> Option<InstHealth>,
    sent: &HashMap<AppInstKey, InstHealth>,
) -> Vec<(AppInstKey, InstHealth)> {
    wanted
        .iter()
        .filter_map(|(key, &want)| {
            let cur = current(key)?;
            let needed = match want {
                InstHealth::ServerFail => cur != InstHealth::ServerFail,
                _ => cur == InstHealth::ServerFail,
            };
            (needed && sent.get(key) != Some(&want)).then(|| (key.clone(), want))
        })
        .collect()
}

#[cfg(test)]
mod tests;
