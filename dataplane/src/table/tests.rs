use super::*;

const ISSUE_EXAMPLE: &str = r#"
listeners:
  - {proto: tcp, port: 28080, backends: ["127.0.0.1:18080"]}
  - {proto: udp, port: 25201, backends: ["127.0.0.1:15201", "[::1]:15201"]}
  - {proto: tcp, port: 28443, backends: ["127.0.0.1:18443"],
     tls: {cert: /tmp/c.pem, key: /tmp/k.pem}, proxy_protocol: v2}
"#;

#[test]
fn parses_the_issue_example() {
    let t = RouteTable::from_yaml(ISSUE_EXAMPLE).unwrap();
    assert_eq!(t.len(), 3);
    let tls = t
        .get(&ListenerKey {
            proto: Proto::Tcp,
            port: 28443,
        })
        .unwrap();
    assert!(tls.proxy_protocol_v2);
    assert_eq!(tls.tls.as_ref().unwrap().cert, PathBuf::from("/tmp/c.pem"));
    let udp = t
        .get(&ListenerKey {
            proto: Proto::Udp,
            port: 25201,
        })
        .unwrap();
    assert_eq!(udp.backends.len(), 2);
    assert_eq!(udp.udp.idle_timeout, default::UDP_IDLE);
    assert_eq!(&*udp.name, "udp:25201");
    assert_eq!(t.drain_grace, default::DRAIN_GRACE);
}

#[test]
fn defaults_apply_and_listener_overrides_win() {
    let t = RouteTable::from_yaml(
        r#"
drain_grace: 2s
defaults: {bind: 127.0.0.1, connect_timeout: 1s, max_conns_per_backend: 7,
           health_check: {interval: 2s, timeout: 500ms, rise: 2, fall: 4}}
listeners:
  - {proto: tcp, port: 1000, backends: ["127.0.0.1:1"], connect_timeout: 30ms}
  - {proto: tcp, port: 1001, backends: ["127.0.0.1:1"], health_check: {enabled: false}}
"#,
    )
    .unwrap();
    assert_eq!(t.drain_grace, Duration::from_secs(2));
    let a = t
        .get(&ListenerKey {
            proto: Proto::Tcp,
            port: 1000,
        })
        .unwrap();
    assert_eq!(a.connect_timeout, Duration::from_millis(30));
    assert_eq!(a.max_conns_per_backend, 7);
    assert_eq!(a.bind, "127.0.0.1".parse::<IpAddr>().unwrap());
    let hc = a.health_check.clone().unwrap();
    assert_eq!(
        (hc.interval, hc.timeout, hc.rise, hc.fall),
        (Duration::from_secs(2), Duration::from_millis(500), 2, 4)
    );
    let b = t
        .get(&ListenerKey {
            proto: Proto::Tcp,
            port: 1001,
        })
        .unwrap();
    assert_eq!(b.health_check, None);
}

#[test]
fn malformed_table_is_rejected_whole_with_every_problem() {
    let err = RouteTable::from_yaml(
        r#"
listeners:
  - {proto: tcp, port: 28080, backends: ["127.0.0.1:18080"]}
  - {proto: sctp, port: 1, backends: ["127.0.0.1:1"]}
  - {proto: tcp, port: 70000, backends: ["127.0.0.1:1"]}
  - {proto: tcp, port: 28081, backends: ["not-an-addr", "127.0.0.1:0"]}
  - {proto: udp, port: 28082, backends: ["127.0.0.1:1"], tls: {cert: a, key: b}}
  - {proto: tcp, port: 28080, backends: ["127.0.0.1:18080"]}
  - {proto: tcp, port: 28083, backends: []}
  - {proto: tcp, port: 28084, backends: ["127.0.0.1:1"], connect_timeout: fast}
  - {proto: tcp, port: 28085, backends: ["127.0.0.1:1"], health_check: {interval: 1s, timeout: 2s, rise: 0}}
  - {proto: tcp, port: 28086, backends: ["127.0.0.1:1"], health_check: {send: ping}}
  - {proto: udp, port: 28087, backends: ["127.0.0.1:1"], health_check: {expect: ""}}
"#,
    )
    .unwrap_err();
    let TableError::Invalid(problems) = &err else {
        panic!("{err}")
    };
    let text = err.to_string();
    for needle in [
        "sctp",
        "70000",
        "not-an-addr",
        "port 0",
        "tls is only allowed on tcp",
        "duplicate listener tcp:28080",
        "no backends",
        "connect_timeout",
        "timeout must not exceed interval",
        "rise and fall",
        "send/expect apply to udp listeners only",
        "expect must not be empty",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
    assert_eq!(problems.len(), 12, "{problems:#?}");
}

#[test]
fn unknown_fields_and_bad_yaml_are_syntax_errors() {
    assert!(matches!(
        RouteTable::from_yaml("listeners: [{proto: tcp, port: 1, backends: [], colour: red}]"),
        Err(TableError::Syntax(_))
    ));
    assert!(matches!(
        RouteTable::from_yaml("listeners: [{"),
        Err(TableError::Syntax(_))
    ));
    assert!(matches!(
        RouteTable::from_yaml("listeners: 5"),
        Err(TableError::Syntax(_))
    ));
}

#[test]
fn empty_file_is_an_empty_table() {
    assert!(RouteTable::from_yaml("listeners: []").unwrap().is_empty());
    assert!(RouteTable::from_yaml("{}").unwrap().is_empty());
}

#[test]
fn diff_classifies_listeners() {
    let a = RouteTable::from_yaml(
        r#"listeners:
  - {proto: tcp, port: 1, backends: ["127.0.0.1:10"]}
  - {proto: tcp, port: 2, backends: ["127.0.0.1:20"]}
  - {proto: udp, port: 3, backends: ["127.0.0.1:30"]}"#,
    )
    .unwrap();
    let b = RouteTable::from_yaml(
        r#"listeners:
  - {proto: tcp, port: 1, backends: ["127.0.0.1:10"]}
  - {proto: tcp, port: 2, backends: ["127.0.0.1:21"]}
  - {proto: tcp, port: 4, backends: ["127.0.0.1:40"]}"#,
    )
    .unwrap();
    let d = a.diff(&b);
    assert_eq!(
        d.unchanged.iter().map(|r| r.key.port).collect::<Vec<_>>(),
        [1]
    );
    assert_eq!(
        d.changed
            .iter()
            .map(|(o, _)| o.key.port)
            .collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(
        d.removed.iter().map(|r| r.key).collect::<Vec<_>>(),
        [ListenerKey {
            proto: Proto::Udp,
            port: 3
        }]
    );
    assert_eq!(d.added.iter().map(|r| r.key.port).collect::<Vec<_>>(), [4]);
}

#[test]
fn durations() {
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
    assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    for bad in ["", "5", "s", "-1s", "1.5s", "5x", "99999999999999999999s"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn from_routes_validates() {
    let t = RouteTable::from_yaml(ISSUE_EXAMPLE).unwrap();
    let routes: Vec<Route> = t.routes().map(|r| (**r).clone()).collect();
    let again = RouteTable::from_routes(t.drain_grace, routes.clone()).unwrap();
    assert_eq!(again, t);
    let mut dup = routes.clone();
    dup.push(routes[0].clone());
    assert!(RouteTable::from_routes(t.drain_grace, dup).is_err());
}

#[test]
fn udp_probe_settings() {
    let long = "x".repeat(UdpProbe::MAX_LEN + 1);
    let err = RouteTable::from_yaml(&format!(
        "listeners: [{{proto: udp, port: 1, backends: [\"127.0.0.1:1\"], health_check: {{send: {long}}}}}]"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("at most 512 bytes"), "{err}");
    // Defaults carry a probe to UDP listeners; TCP listeners inherit it without complaint.
    let t = RouteTable::from_yaml(
        r#"
defaults: {health_check: {interval: 2s, send: ping, expect: pong}}
listeners:
  - {proto: udp, port: 1, backends: ["127.0.0.1:1"]}
  - {proto: tcp, port: 2, backends: ["127.0.0.1:1"]}
  - {proto: udp, port: 3, backends: ["127.0.0.1:1"], health_check: {interval: 1s}}
"#,
    )
    .unwrap();
    let hc = |proto, port| {
        t.get(&ListenerKey { proto, port })
            .and_then(|r| r.health_check.clone())
            .unwrap()
    };
    let udp = hc(Proto::Udp, 1);
    assert_eq!(
        (&*udp.udp.send, udp.udp.expect.as_deref()),
        (&b"ping"[..], Some(&b"pong"[..]))
    );
    assert_eq!(hc(Proto::Tcp, 2).interval, Duration::from_secs(2));
    let own = hc(Proto::Udp, 3);
    assert_eq!((&*own.udp.send, own.udp.expect), (&b""[..], None));
}

fn quic_table(quic: &str) -> Result<RouteTable, TableError> {
    RouteTable::from_yaml(&format!(
        r#"
listeners:
  - proto: udp
    port: 443
    backends: ["127.0.0.1:4001", "127.0.0.1:4002"]
    quic: {quic}
"#
    ))
}

#[test]
fn quic_mode_maps_server_ids_to_backends() {
    let t = quic_table(
        r#"{config_id: 1, server_id_len: 2, nonce_len: 8,
            server_ids: {"127.0.0.1:4001": "0a01", "127.0.0.1:4002": 0101}}"#,
    )
    .unwrap();
    let r = t.routes().next().unwrap();
    let q = r.quic.as_ref().unwrap();
    assert_eq!(q.cid, quic_lb::CidConfig::new(1, 2, 8).unwrap());
    assert_eq!(q.backend_of(&[0x0a, 0x01]), Some(0));
    assert_eq!(q.backend_of(&[0x01, 0x01]), Some(1));
    assert_eq!(q.backend_of(&[0x01, 0x02]), None);
    assert_eq!(q.backend_of(&[0x0a]), None);
}

#[test]
fn quic_mode_problems_name_the_route_and_backend() {
    let err = |quic: &str| match quic_table(quic) {
        Err(TableError::Invalid(e)) => e.join("\n"),
        other => panic!("expected rejection, got {other:?}"),
    };
    let e = err(r#"{config_id: 7, server_id_len: 2, nonce_len: 8}"#);
    assert!(
        e.contains("listeners[0] (udp:443): quic: config id 7"),
        "{e}"
    );
    let e = err(r#"{config_id: 1, server_id_len: 2, nonce_len: 18}"#);
    assert!(e.contains("exceeds QUIC's maximum of 20"), "{e}");
    let e = err(r#"{config_id: 1, server_id_len: 300, nonce_len: 8}"#);
    assert!(e.contains("quic.server_id_len out of range: 300"), "{e}");
    let e = err(r#"{config_id: 1, server_id_len: 2, nonce_len: 8,
            server_ids: {"127.0.0.1:4001": "0a01", "127.0.0.1:4002": "0a01"}}"#);
    assert!(
        e.contains("backends 127.0.0.1:4001 and 127.0.0.1:4002 share server id 0a01"),
        "{e}"
    );
    let e = err(r#"{config_id: 1, server_id_len: 2, nonce_len: 8,
            server_ids: {"127.0.0.1:4001": "0a", "127.0.0.1:4002": "zz01", "127.0.0.1:9": "0a03"}}"#);
    assert!(
        e.contains("backend 127.0.0.1:4001: server id 0a is 1 bytes, server_id_len is 2"),
        "{e}"
    );
    assert!(
        e.contains("backend 127.0.0.1:4002: server id hex has a non-hex"),
        "{e}"
    );
    assert!(
        e.contains("\"127.0.0.1:9\" is not one of the listener's backends"),
        "{e}"
    );
    assert!(
        !e.contains("has no server id"),
        "invalid ids are not also missing: {e}"
    );
    let e = err(
        r#"{config_id: 1, server_id_len: 2, nonce_len: 8, server_ids: {"127.0.0.1:4001": "0a01"}}"#,
    );
    assert!(e.contains("backend 127.0.0.1:4002 has no server id"), "{e}");
    let tcp = RouteTable::from_yaml(
        r#"listeners: [{proto: tcp, port: 1, backends: ["127.0.0.1:1"],
             quic: {config_id: 1, server_id_len: 2, nonce_len: 8, server_ids: {"127.0.0.1:1": "0a01"}}}]"#,
    );
    assert!(
        matches!(&tcp, Err(TableError::Invalid(e)) if e[0].contains("quic is only allowed on udp")),
        "{tcp:?}"
    );
}

#[test]
fn quic_mode_validation_of_typed_routes() {
    let cfg = quic_lb::CidConfig::new(0, 1, 6).unwrap();
    let id = |h: &str| h.parse::<quic_lb::ServerId>().unwrap();
    assert!(QuicMode::new(cfg, [(id("01"), 0), (id("02"), 1)]).is_ok());
    let e = QuicMode::new(cfg, [(id("01"), 0), (id("01"), 1), (id("0102"), 2)]).unwrap_err();
    assert_eq!(
        e,
        [
            "backends #0 and #1 share server id 01",
            "backend #2: server id 0102 is 2 bytes, server_id_len is 1"
        ]
    );
}
