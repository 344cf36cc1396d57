//! A cloudlet with one app instance, and the pages its root LB and DME would serve.

use std::path::Path;

use edge_api::subscriber::Replica;
use edge_model::{
    AppInst, AppInstKey, AppKey, AppPort, CloudletInfo, CloudletKey, CloudletResources,
    CloudletState, HealthCheck, LProto, Object, TrackedState,
};

pub fn cloudlet() -> CloudletKey {
    CloudletKey {
        organization: "TelcoOp".into(),
        name: "berlin-1".into(),
    }
}

fn port(proto: LProto, internal: i32, public: i32) -> AppPort {
    AppPort {
        proto,
        internal_port: internal,
        public_port: public,
        ..AppPort::default()
    }
}

/// `NimbusGames/arena-1`, app `NimbusGames/arena 2.3`, cluster `c1`: tcp 443 on public
/// 10000, udp 7777 on 10001.
pub fn inst() -> AppInst {
    AppInst {
        key: AppInstKey {
            organization: "NimbusGames".into(),
            name: "arena-1".into(),
        },
        app: AppKey {
            organization: "NimbusGames".into(),
            name: "arena".into(),
            version: "2.3".into(),
        },
        cloudlet: cloudlet(),
        cluster: Some("c1".into()),
        uri: "arena.example".into(),
        mapped_ports: vec![
            port(LProto::Tcp, 443, 10000),
            port(LProto::Udp, 7777, 10001),
        ],
        state: TrackedState::Ready,
        health: HealthCheck::Ok,
        platform_health: HealthCheck::Ok,
    }
}

pub fn cloudlet_info() -> CloudletInfo {
    CloudletInfo {
        resources: CloudletResources {
            vcpus_max: 16,
            vcpus_used: 6,
            ram_mb_max: 32768,
            ram_mb_used: 8192,
            disk_gb_max: 500,
            disk_gb_used: 120,
        },
        ..CloudletInfo::with_state(cloudlet(), CloudletState::Ready)
    }
}

pub fn objects() -> Vec<Object> {
    vec![
        Object::AppInst(inst()),
        Object::CloudletInfo(cloudlet_info()),
    ]
}

pub fn replica() -> Replica {
    objects().into_iter().collect()
}

/// What the root LB serves for the instance (two backends on the TCP port).
pub const ROOTLB_PAGE: &str = r#"
# TYPE rootlb_listener_accepted_total counter
rootlb_listener_accepted_total{listener="tcp:10000",app="NimbusGames/arena-1"} 40
rootlb_listener_active{listener="tcp:10000",app="NimbusGames/arena-1"} 3
rootlb_udp_drops_full_total{listener="udp:10001",app="NimbusGames/arena-1"} 2
rootlb_udp_drops_send_total{listener="udp:10001",app="NimbusGames/arena-1"} 0
rootlb_backend_connections_total{listener="tcp:10000",app="NimbusGames/arena-1",backend="10.0.0.1:443"} 30
rootlb_backend_connections_total{listener="tcp:10000",app="NimbusGames/arena-1",backend="10.0.0.2:443"} 8
rootlb_backend_bytes_in_total{listener="tcp:10000",app="NimbusGames/arena-1",backend="10.0.0.1:443"} 1500
rootlb_backend_bytes_in_total{listener="tcp:10000",app="NimbusGames/arena-1",backend="10.0.0.2:443"} 500
rootlb_backend_bytes_out_total{listener="tcp:10000",app="NimbusGames/arena-1",backend="10.0.0.1:443"} 90000
rootlb_backend_bytes_in_total{listener="udp:10001",app="NimbusGames/arena-1",backend="10.0.0.1:7777"} 640
rootlb_backend_bytes_out_total{listener="udp:10001",app="NimbusGames/arena-1",backend="10.0.0.1:7777"} 1280
rootlb_backend_packets_in_total{listener="udp:10001",app="NimbusGames/arena-1",backend="10.0.0.1:7777"} 10
rootlb_backend_packets_out_total{listener="udp:10001",app="NimbusGames/arena-1",backend="10.0.0.1:7777"} 20
"#;

/// What the DME serves.
pub const DME_PAGE: &str = r#"
dme_api_requests_total{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet"} 12
dme_api_errors_total{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet"} 2
dme_api_found_cloudlet_total{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet"} 9
dme_api_not_found_total{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet"} 1
dme_api_latency_seconds_bucket{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet",le="0.005"} 6
dme_api_latency_seconds_bucket{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet",le="0.05"} 12
dme_api_latency_seconds_bucket{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet",le="+Inf"} 12
"#;

/// A state dir in which the instance runs as this test process.
pub fn state_dir(root: &Path) {
    let dir = root.join("instances/NimbusGames/arena-1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pids"), format!("{}\n", std::process::id())).unwrap();
}
