use super::*;
use edge_model::Object;

fn replica(objs: &[Object]) -> Replica {
    objs.iter().cloned().collect()
}
use edge_model::{AppKey, AppPort};

fn cloudlet(name: &str) -> CloudletKey {
    CloudletKey {
        organization: "telekom".into(),
        name: name.into(),
    }
}

fn cluster(name: &str, on: &str, node: Option<&str>, ip_access: IpAccess) -> Object {
    Object::ClusterInst(ClusterInst {
        key: ClusterKey {
            organization: "acme".into(),
            name: name.into(),
        },
        cloudlet: cloudlet(on),
        flavor: None,
        ip_access,
        num_masters: 1,
        num_nodes: 0,
        state: TrackedState::Ready,
        node_address: node.map(|n| n.parse().unwrap()),
    })
}

fn port(proto: LProto, internal: i32, public: i32, tls: bool) -> AppPort {
    AppPort {
        proto,
        internal_port: internal,
        public_port: public,
        tls,
        ..AppPort::default()
    }
}

fn inst(name: &str, on: &str, cluster: &str, ports: Vec<AppPort>, state: TrackedState) -> Object {
    Object::AppInst(AppInst {
        key: AppInstKey {
            organization: "acme".into(),
            name: name.into(),
        },
        app: AppKey {
            organization: "acme".into(),
            name: "game".into(),
            version: "1".into(),
        },
        cloudlet: cloudlet(on),
        cluster: Some(cluster.into()),
        uri: "shared.berlin-1-telekom.eu.edge.example.net".into(),
        mapped_ports: ports,
        state,
        health: InstHealth::Ok,
        platform_health: edge_model::HealthCheck::Unknown,
    })
}

fn key(name: &str) -> AppInstKey {
    AppInstKey {
        organization: "acme".into(),
        name: name.into(),
    }
}

fn tcp(port: u16) -> ListenerKey {
    ListenerKey {
        proto: Proto::Tcp,
        port,
    }
}

#[test]
fn ready_instances_of_this_cloudlet_become_routes() {
    let objs = vec![
        cluster("c1", "berlin-1", Some("10.0.0.5"), IpAccess::Shared),
        cluster("c2", "munich-1", Some("10.9.0.5"), IpAccess::Shared),
        inst(
            "game-ber",
            "berlin-1",
            "c1",
            vec![
                port(LProto::Tcp, 8080, 10000, false),
                port(LProto::Udp, 7777, 7777, false),
                port(LProto::Http, 80, 80, false),
            ],
            TrackedState::Ready,
        ),
        inst(
            "game-muc",
            "munich-1",
            "c2",
            vec![port(LProto::Tcp, 9000, 9000, false)],
            TrackedState::Ready,
        ),
        inst(
            "creating",
            "berlin-1",
            "c1",
            vec![port(LProto::Tcp, 9001, 9001, false)],
            TrackedState::Creating,
        ),
    ];
    let opts = RouteOptions {
        listen_ip: "127.0.0.2".parse().unwrap(),
        ..RouteOptions::default()
    };
    let b = routes_for(&cloudlet("berlin-1"), &replica(&objs), &opts).unwrap();
    let keys: Vec<ListenerKey> = b.table.routes().map(|r| r.key).collect();
    let udp = ListenerKey {
        proto: Proto::Udp,
        port: 7777,
    };
    assert_eq!(keys, [tcp(80), tcp(10000), udp]);
    let r = b.table.get(&tcp(10000)).unwrap();
    assert_eq!(r.backends, ["10.0.0.5:8080".parse::<SocketAddr>().unwrap()]);
    assert_eq!(r.bind_addr(), "127.0.0.2:10000".parse().unwrap());
    assert_eq!(&*r.name, "acme/game-ber");
    assert_eq!(r.health_check, opts.health_check);
    assert!(r.tls.is_none());
    assert_eq!(b.instances.get("acme/game-ber"), Some(&key("game-ber")));
    assert_eq!(b.instances.len(), 1);
    assert!(b.skipped.is_empty(), "{:?}", b.skipped);
}

#[test]
fn instances_without_a_shared_node_address_get_no_routes() {
    let objs = vec![
        cluster("pending", "berlin-1", None, IpAccess::Shared),
        cluster(
            "dedicated",
            "berlin-1",
            Some("10.0.0.6"),
            IpAccess::Dedicated,
        ),
        inst(
            "a",
            "berlin-1",
            "pending",
            vec![port(LProto::Tcp, 1, 1, false)],
            TrackedState::Ready,
        ),
        inst(
            "b",
            "berlin-1",
            "dedicated",
            vec![port(LProto::Tcp, 2, 2, false)],
            TrackedState::Ready,
        ),
        inst(
            "c",
            "berlin-1",
            "missing",
            vec![port(LProto::Tcp, 3, 3, false)],
            TrackedState::Ready,
        ),
    ];
    let b = routes_for(
        &cloudlet("berlin-1"),
        &replica(&objs),
        &RouteOptions::default(),
    )
    .unwrap();
    assert!(b.table.is_empty());
    assert!(b.instances.is_empty());
}

#[test]
fn tls_ports_need_the_cloudlet_certificate() {
    let objs = vec![
        cluster("c1", "berlin-1", Some("10.0.0.5"), IpAccess::Shared),
        inst(
            "a",
            "berlin-1",
            "c1",
            vec![
                port(LProto::Tcp, 443, 443, true),
                port(LProto::Tcp, 80, 80, false),
            ],
            TrackedState::Ready,
        ),
    ];
    let b = routes_for(
        &cloudlet("berlin-1"),
        &replica(&objs),
        &RouteOptions::default(),
    )
    .unwrap();
    assert_eq!(
        b.table.routes().map(|r| r.key).collect::<Vec<_>>(),
        [tcp(80)]
    );
    assert_eq!(b.skipped.len(), 1);
    assert!(b.skipped[0].contains("acme/a tcp:443"), "{:?}", b.skipped);
    assert!(b.skipped[0].contains("--tls-cert"), "{:?}", b.skipped);

    let files = TlsFiles {
        cert: "/etc/lb/wild.crt".into(),
        key: "/etc/lb/wild.key".into(),
    };
    let opts = RouteOptions {
        tls: Some(files.clone()),
        ..RouteOptions::default()
    };
    let b = routes_for(&cloudlet("berlin-1"), &replica(&objs), &opts).unwrap();
    assert_eq!(b.table.get(&tcp(443)).unwrap().tls, Some(files));
    assert_eq!(b.table.get(&tcp(80)).unwrap().tls, None);
    assert!(b.skipped.is_empty());
}

#[test]
fn bad_ports_are_skipped_with_a_reason() {
    let mut range = port(LProto::Tcp, 5000, 5000, false);
    range.end_port = 5002;
    let objs = vec![
        cluster("c1", "berlin-1", Some("10.0.0.5"), IpAccess::Shared),
        inst(
            "a",
            "berlin-1",
            "c1",
            vec![
                range,
                port(LProto::Tcp, 70000, 70000, false),
                port(LProto::Unknown, 1, 1, false),
                port(LProto::Tcp, 81, 0, false),
            ],
            TrackedState::Ready,
        ),
    ];
    let b = routes_for(
        &cloudlet("berlin-1"),
        &replica(&objs),
        &RouteOptions::default(),
    )
    .unwrap();
    assert!(b.table.is_empty());
    assert_eq!(b.skipped.len(), 4, "{:?}", b.skipped);
    assert!(b.skipped[0].contains("ranges"), "{:?}", b.skipped);
}

#[test]
fn a_public_port_claimed_twice_rejects_the_table() {
    let objs = vec![
        cluster("c1", "berlin-1", Some("10.0.0.5"), IpAccess::Shared),
        inst(
            "a",
            "berlin-1",
            "c1",
            vec![port(LProto::Tcp, 80, 8080, false)],
            TrackedState::Ready,
        ),
        inst(
            "b",
            "berlin-1",
            "c1",
            vec![port(LProto::Tcp, 81, 8080, false)],
            TrackedState::Ready,
        ),
    ];
    let e = routes_for(
        &cloudlet("berlin-1"),
        &replica(&objs),
        &RouteOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, RoutesError::Conflict { problems, .. } if problems.len() == 1),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("tcp:8080 is claimed by both acme/a and acme/b"),
        "{msg}"
    );
    assert!(msg.contains("berlin-1"), "{msg}");
    // Same port number on UDP is a different listener.
    let mut objs = objs;
    if let Object::AppInst(i) = &mut objs[2] {
        i.mapped_ports[0].proto = LProto::Udp;
    }
    assert_eq!(
        routes_for(
            &cloudlet("berlin-1"),
            &replica(&objs),
            &RouteOptions::default()
        )
        .unwrap()
        .table
        .len(),
        2
    );
}

#[test]
fn instance_health_is_down_only_when_every_backend_is() {
    let instances: HashMap<Arc<str>, AppInstKey> = [
        (Arc::from("acme/a"), key("a")),
        (Arc::from("acme/b"), key("b")),
    ]
    .into_iter()
    .collect();
    let b = |route, healthy| BackendHealth { route, healthy };
    let h = instance_health(
        [
            b("acme/a", false),
            b("acme/a", true),
            b("acme/b", false),
            b("acme/b", false),
            b("unknown/route", false),
        ],
        &instances,
    );
    assert_eq!(
        h.into_iter().collect::<Vec<_>>(),
        [
            (key("a"), InstHealth::Ok),
            (key("b"), InstHealth::ServerFail)
        ]
    );
}

#[test]
fn reports_go_out_once_per_change() {
    let wanted: BTreeMap<AppInstKey, InstHealth> = [
        (key("down"), InstHealth::ServerFail),
        (key("up"), InstHealth::Ok),
        (key("steady"), InstHealth::Ok),
        (key("offline"), InstHealth::Ok),
        (key("gone"), InstHealth::ServerFail),
    ]
    .into_iter()
    .collect();
    let current = |k: &AppInstKey| match k.name.as_str() {
        "down" => Some(InstHealth::Ok),
        "up" => Some(InstHealth::ServerFail),
        "steady" => Some(InstHealth::Unknown),
        "offline" => Some(InstHealth::CloudletOffline),
        _ => None,
    };
    let mut sent = HashMap::new();
    let r = health_reports(&wanted, current, &sent);
    assert_eq!(
        r,
        [
            (key("down"), InstHealth::ServerFail),
            (key("up"), InstHealth::Ok)
        ]
    );
    sent.extend(r);
    assert!(health_reports(&wanted, current, &sent).is_empty());
    // Up again before the controller applied the first report: a new report.
    let mut flipped = wanted.clone();
    flipped.insert(key("up"), InstHealth::ServerFail);
    let r = health_reports(&flipped, |k| current(k).map(|_| InstHealth::Ok), &sent);
    assert!(r.contains(&(key("up"), InstHealth::ServerFail)), "{r:?}");
}
