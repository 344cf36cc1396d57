//! Objects shared by the collectors' unit tests.

use edge_api::subscriber::Replica;
use edge_model::{
    AppInst, AppInstKey, AppKey, AppPort, CloudletKey, HealthCheck, LProto, Object, TrackedState,
};

pub fn cloudlet() -> CloudletKey {
    CloudletKey {
        organization: "TelcoOp".into(),
        name: "berlin-1".into(),
    }
}

pub fn port(proto: LProto, internal: i32, public: i32, end: i32) -> AppPort {
    AppPort {
        proto,
        internal_port: internal,
        public_port: public,
        end_port: end,
        ..AppPort::default()
    }
}

/// Instance `name` of app `NimbusGames/arena 2.3` in cluster `c1` on `cloudlet`.
pub fn inst(name: &str, cloudlet: CloudletKey, ports: Vec<AppPort>) -> AppInst {
    AppInst {
        key: AppInstKey {
            organization: "NimbusGames".into(),
            name: name.into(),
        },
        app: AppKey {
            organization: "NimbusGames".into(),
            name: "arena".into(),
            version: "2.3".into(),
        },
        cloudlet,
        cluster: Some("c1".into()),
        uri: "arena.example".into(),
        mapped_ports: ports,
        state: TrackedState::Ready,
        health: HealthCheck::Ok,
        platform_health: HealthCheck::Ok,
    }
}

/// `arena-1` here (tcp 443 on 10000, udp 7777-7778 on 10001-10002); `arena-2` on another
/// cloudlet.
pub fn objects() -> Replica {
    let elsewhere = CloudletKey {
        organization: "TelcoOp".into(),
        name: "paris-1".into(),
    };
    [
        inst(
            "arena-1",
            cloudlet(),
            vec![
                port(LProto::Tcp, 443, 10000, 0),
                port(LProto::Udp, 7777, 10001, 7778),
            ],
        ),
        inst("arena-2", elsewhere, vec![port(LProto::Tcp, 443, 10000, 0)]),
    ]
    .into_iter()
    .map(Object::AppInst)
    .collect()
}
