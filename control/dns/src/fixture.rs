//! Test-only object builders (feature `testing`): the few fields the zone reads, the rest
//! defaulted, and a small standard region.

use std::net::IpAddr;

use edge_api::subscriber::Replica;
use edge_model::{
    App, AppInst, AppInstKey, AppKey, Cloudlet, CloudletInfo, CloudletKey, CloudletState,
    ClusterInst, ClusterKey, DeploymentKind, HealthCheck, IpAccess, MaintenanceState, Object,
    Settings, TrackedState,
};

/// The standard region's zone origin and region name.
pub const ROOT: &str = "edge.example.net";
pub const REGION: &str = "eu";

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub fn settings(app_dns_root: &str) -> Object {
    Object::Settings(Settings {
        app_dns_root: app_dns_root.into(),
        ..Settings::default()
    })
}

pub fn cloudlet_key(org: &str, name: &str) -> CloudletKey {
    CloudletKey {
        organization: org.into(),
        name: name.into(),
    }
}

pub fn cloudlet(org: &str, name: &str) -> Object {
    Object::Cloudlet(Cloudlet {
        key: cloudlet_key(org, name),
        location: geodata::LatLon::new(52.5, 13.4).expect("valid location"),
        platform_type: "fake".into(),
        alliance_orgs: Vec::new(),
        maintenance_state: MaintenanceState::NormalOperation,
        state: CloudletState::Ready,
    })
}

/// CloudletInfo with the root LB at `rootlb` (`None`: not reported).
pub fn info(org: &str, name: &str, rootlb: Option<&str>) -> Object {
    Object::CloudletInfo(CloudletInfo {
        rootlb_address: rootlb.map(ip),
        ..CloudletInfo::with_state(cloudlet_key(org, name), CloudletState::Ready)
    })
}

pub fn app_key(org: &str, name: &str) -> AppKey {
    AppKey {
        organization: org.into(),
        name: name.into(),
        version: "1.0".into(),
    }
}

pub fn app(org: &str, name: &str, official_fqdn: &[&str]) -> Object {
    Object::App(App {
        key: app_key(org, name),
        deployment: DeploymentKind::Docker,
        image_path: String::new(),
        access_ports: Vec::new(),
        default_flavor: None,
        official_fqdn: official_fqdn.iter().map(|s| (*s).to_owned()).collect(),
        android_package_name: String::new(),
        auth_public_key: None,
        platform_app: false,
    })
}

/// A READY cluster of `org` on `cloudlet`.
pub fn cluster(
    org: &str,
    name: &str,
    cloudlet: &CloudletKey,
    ip_access: IpAccess,
    node: Option<&str>,
) -> Object {
    Object::ClusterInst(ClusterInst {
        key: ClusterKey {
            organization: org.into(),
            name: name.into(),
        },
        cloudlet: cloudlet.clone(),
        flavor: None,
        ip_access,
        num_masters: 1,
        num_nodes: 1,
        state: TrackedState::Ready,
        node_address: node.map(ip),
    })
}

/// An instance `org/name` of app `org/app` 1.0, READY.
pub fn inst(
    org: &str,
    name: &str,
    app: &str,
    cloudlet: &CloudletKey,
    cluster: Option<&str>,
    uri: &str,
) -> AppInst {
    AppInst {
        key: AppInstKey {
            organization: org.into(),
            name: name.into(),
        },
        app: app_key(org, app),
        cloudlet: cloudlet.clone(),
        cluster: cluster.map(str::to_owned),
        uri: uri.into(),
        mapped_ports: Vec::new(),
        state: TrackedState::Ready,
        health: HealthCheck::Ok,
        platform_health: HealthCheck::Unknown,
    }
}

/// Root LB FQDN of cloudlet `org/name` in the standard region.
pub fn shared_lb(org: &str, name: &str) -> String {
    edge_model::naming::shared_root_lb_fqdn(&cloudlet_key(org, name), REGION, ROOT)
}

/// The standard region: cloudlets `telekom/berlin` (root LB 192.0.2.10) and `orange/paris`
/// (root LB 2001:db8::20); app `Nimbus/arena` (official FQDN `arena.edge.example.net`) with
/// `arena-berlin` on a shared cluster in Berlin and `arena-paris` on a dedicated cluster in
/// Paris (node 198.51.100.7, FQDN `arena-dedicated.paris-orange.eu.edge.example.net`).
pub fn region() -> Replica {
    let (berlin, paris) = (
        cloudlet_key("telekom", "berlin"),
        cloudlet_key("orange", "paris"),
    );
    [
        settings(ROOT),
        cloudlet("telekom", "berlin"),
        info("telekom", "berlin", Some("192.0.2.10")),
        cloudlet("orange", "paris"),
        info("orange", "paris", Some("2001:db8::20")),
        app("Nimbus", "arena", &["arena.edge.example.net"]),
        cluster("Nimbus", "shared", &berlin, IpAccess::Shared, None),
        cluster(
            "Nimbus",
            "dedicated",
            &paris,
            IpAccess::Dedicated,
            Some("198.51.100.7"),
        ),
        Object::AppInst(inst(
            "Nimbus",
            "arena-berlin",
            "arena",
            &berlin,
            Some("shared"),
            &shared_lb("telekom", "berlin"),
        )),
        Object::AppInst(inst(
            "Nimbus",
            "arena-paris",
            "arena",
            &paris,
            Some("dedicated"),
            "arena-dedicated.paris-orange.eu.edge.example.net",
        )),
        // Another app behind paris's shared root LB (an IPv6 one).
        app("Nimbus", "lobby", &[]),
        Object::AppInst(inst(
            "Nimbus",
            "lobby-paris",
            "lobby",
            &paris,
            None,
            &shared_lb("orange", "paris"),
        )),
    ]
    .into_iter()
    .collect()
}
