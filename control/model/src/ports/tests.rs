use super::*;

fn kind(s: &str) -> PortsErrorKind {
    parse_access_ports(s).expect_err(s).reason
}

fn port(proto: LProto, internal: i32, end: i32) -> AppPort {
    AppPort {
        proto,
        internal_port: internal,
        public_port: internal,
        end_port: end,
        ..AppPort::default()
    }
}

#[test]
fn parses_the_upstream_fixtures() {
    let ports = parse_access_ports("tcp:80,tcp:443,udp:10002,tcp:81:tls,tcp:444:tls").unwrap();
    assert_eq!(ports.len(), 5);
    assert_eq!(ports[0], port(LProto::Tcp, 80, 0));
    assert_eq!(ports[2], port(LProto::Udp, 10002, 0));
    assert!(ports[3].tls && !ports[0].tls);
    assert_eq!(
        parse_access_ports("tcp:5000-5002").unwrap(),
        vec![port(LProto::Tcp, 5000, 5002)]
    );
    assert_eq!(parse_access_ports("").unwrap(), vec![]);
    assert_eq!(parse_access_ports("  ").unwrap(), vec![]);
}

#[test]
fn public_port_defaults_to_internal() {
    let ports = parse_access_ports("udp:20002").unwrap();
    assert_eq!(ports[0].public_port, 20002);
}

#[test]
fn annotations() {
    let p = &parse_access_ports("udp:7000:nginx:maxpktsize=1500").unwrap()[0];
    assert!(p.nginx);
    assert_eq!(p.max_pkt_size, 1500);
    let p = &parse_access_ports("TCP:443:TLS").unwrap()[0];
    assert!(p.tls && p.proto == LProto::Tcp);
    // edgexr annotations are accepted and not stored.
    let p = &parse_access_ports("http:8080:intvis:id=web:pathprefix=/api:svcname=web:hostprefix=a")
        .unwrap()[0];
    assert_eq!(*p, port(LProto::Http, 8080, 0));
}

#[test]
fn annotation_errors() {
    assert!(matches!(
        kind("udp:53000:tls"),
        PortsErrorKind::WrongProto {
            annotation: "tls",
            ..
        }
    ));
    assert!(matches!(
        kind("tcp:80:nginx"),
        PortsErrorKind::WrongProto {
            annotation: "nginx",
            ..
        }
    ));
    assert!(matches!(
        kind("tcp:80:maxpktsize=2000"),
        PortsErrorKind::WrongProto { .. }
    ));
    assert_eq!(
        kind("udp:9000:maxpktsize=1499"),
        PortsErrorKind::BadMaxPktSize("1499".into())
    );
    assert_eq!(
        kind("udp:9000:maxpktsize=50001"),
        PortsErrorKind::BadMaxPktSize("50001".into())
    );
    assert_eq!(
        kind("udp:9000:maxpktsize"),
        PortsErrorKind::MissingValue("maxpktsize".into())
    );
    assert_eq!(
        kind("tcp:80:tls=yes"),
        PortsErrorKind::UnexpectedValue("tls".into())
    );
    assert_eq!(
        kind("tcp:80:tls:tls"),
        PortsErrorKind::DuplicateAnnotation("tls".into())
    );
    assert_eq!(
        kind("tcp:80:id="),
        PortsErrorKind::MissingValue("id".into())
    );
    assert_eq!(
        kind("tcp:80:fast"),
        PortsErrorKind::UnknownAnnotation("fast".into())
    );
}

#[test]
fn port_and_range_errors() {
    assert_eq!(kind("tcp"), PortsErrorKind::MissingPort);
    assert_eq!(kind("sctp:80"), PortsErrorKind::UnknownProto("sctp".into()));
    assert_eq!(kind("tcp:0"), PortsErrorKind::BadPort("0".into()));
    assert_eq!(kind("tcp:65536"), PortsErrorKind::BadPort("65536".into()));
    assert_eq!(kind("tcp:+80"), PortsErrorKind::BadPort("+80".into()));
    assert_eq!(kind("tcp:-80"), PortsErrorKind::BadPort("".into()));
    assert_eq!(
        kind("tcp:90-80"),
        PortsErrorKind::BadRange { start: 90, end: 80 }
    );
    assert_eq!(
        kind("tcp:80-80"),
        PortsErrorKind::BadRange { start: 80, end: 80 }
    );
    assert_eq!(kind("tcp:80,,udp:81"), PortsErrorKind::Empty);
    assert!(parse_access_ports("tcp:65535").is_ok());
}

#[test]
fn reserved_ports_are_rejected_also_inside_ranges() {
    for s in [
        "tcp:22",
        "tcp:20800",
        "udp:53",
        "tcp:53",
        "tcp:20-30",
        "http:53",
        "udp:50-60",
    ] {
        assert!(matches!(kind(s), PortsErrorKind::Reserved { .. }), "{s}");
    }
    assert!(parse_access_ports("udp:22").is_ok());
}

#[test]
fn overlaps_and_duplicates_name_both_entries() {
    let e = parse_access_ports("tcp:80,tcp:443,tcp:80").unwrap_err();
    assert_eq!(e.entry, "tcp:80");
    assert_eq!(e.reason, PortsErrorKind::Overlap("tcp:80".into()));
    let e = parse_access_ports("tcp:5000-5010, tcp:5005:tls").unwrap_err();
    assert_eq!(e.entry, "tcp:5005:tls");
    assert_eq!(e.reason, PortsErrorKind::Overlap("tcp:5000-5010".into()));
    assert!(matches!(
        kind("http:8080,tcp:8080"),
        PortsErrorKind::Overlap(_)
    ));
    assert!(matches!(
        kind("tcp:100-200,tcp:60-500"),
        PortsErrorKind::Overlap(_)
    ));
    // Same port on different transports is fine.
    assert!(parse_access_ports("tcp:8080,udp:8080").is_ok());
    let msg = parse_access_ports("udp:1-10,udp:10")
        .unwrap_err()
        .to_string();
    assert_eq!(msg, "access port `udp:10`: overlaps `udp:1-10`");
}

#[test]
fn per_app_limits() {
    assert!(parse_access_ports("tcp:1000-1999").is_ok());
    assert_eq!(
        kind("tcp:1000-2000"),
        PortsErrorKind::TooManyPorts {
            proto: "TCP",
            limit: MAX_TCP_PORTS
        }
    );
    assert!(parse_access_ports("udp:10000-19999").is_ok());
    let e = parse_access_ports("udp:10000-19999,udp:30000").unwrap_err();
    assert_eq!(e.entry, "udp:30000");
    assert!(matches!(
        e.reason,
        PortsErrorKind::TooManyPorts { proto: "UDP", .. }
    ));
}

#[test]
fn format_round_trips() {
    for s in [
        "tcp:80,tcp:443,udp:10002,tcp:81:tls,tcp:444:tls",
        "tcp:5000-5002",
        "udp:7000:nginx:maxpktsize=9000,http:8080",
        "",
    ] {
        let ports = parse_access_ports(s).unwrap();
        assert_eq!(format_access_ports(&ports), s);
        assert_eq!(
            parse_access_ports(&format_access_ports(&ports)).unwrap(),
            ports
        );
    }
}

#[test]
fn lproto_names() {
    for s in ["tcp", "TCP", "L_PROTO_TCP"] {
        assert_eq!(s.parse(), Ok(LProto::Tcp));
    }
    assert!("Tcp".parse::<LProto>().is_err());
    assert_eq!(LProto::from_wire(3), Some(LProto::Http));
    assert_eq!(LProto::Udp.wire_name(), "L_PROTO_UDP");
}

/// A small deterministic generator so the fuzz test needs no extra dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

/// Random bytes and random grammar-shaped strings must give ports or an error, never a panic,
/// and whatever parses must format back to something that parses to the same ports.
#[test]
fn random_input_never_panics() {
    const PIECES: &[&str] = &[
        "tcp",
        "udp",
        "http",
        ":",
        ",",
        "-",
        "=",
        "tls",
        "nginx",
        "maxpktsize",
        "intvis",
        "id",
        "0",
        "1",
        "22",
        "53",
        "80",
        "65535",
        "65536",
        "99999999999",
        "1500",
        " ",
        "\u{e9}",
        "\0",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..20_000 {
        let s = if round % 2 == 0 {
            let bytes: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            (0..rng.below(16))
                .map(|_| PIECES[rng.below(PIECES.len())])
                .collect()
        };
        if let Ok(ports) = parse_access_ports(&s) {
            assert_eq!(
                parse_access_ports(&format_access_ports(&ports)),
                Ok(ports),
                "{s:?}"
            );
        }
    }
}
