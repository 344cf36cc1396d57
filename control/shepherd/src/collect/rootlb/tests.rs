use super::*;
use crate::collect::fixtures::{cloudlet, inst, objects, port};
use crate::line::FieldValue;
use crate::promtext::parse;

const PAGE: &str = r#"
# TYPE rootlb_listener_accepted_total counter
rootlb_listener_accepted_total{listener="tcp:10000",app="NimbusGames/arena-1"} 12
rootlb_listener_active{listener="tcp:10000",app="NimbusGames/arena-1"} 3
rootlb_listener_active{listener="tcp:10000",app="NimbusGames/arena-2"} 9
rootlb_listener_active{listener="tcp:10500",app="Ghost/nobody"} 1
rootlb_udp_flows_active{listener="udp:10002",app="NimbusGames/arena-1"} 2
rootlb_udp_drops_full_total{listener="udp:10002",app="NimbusGames/arena-1"} 4
rootlb_udp_drops_send_total{listener="udp:10002",app="NimbusGames/arena-1"} 1
rootlb_backend_connections_total{listener="tcp:10000",app="NimbusGames/arena-1",backend="10.0.0.1:443"} 7
rootlb_backend_connections_total{listener="tcp:10000",app="NimbusGames/arena-1",backend="10.0.0.2:443"} 4
rootlb_backend_bytes_in_total{listener="tcp:10000",app="NimbusGames/arena-1",backend="10.0.0.1:443"} 1000
rootlb_backend_bytes_in_total{listener="tcp:10000",app="NimbusGames/arena-1",backend="10.0.0.2:443"} 24
rootlb_backend_bytes_out_total{listener="tcp:10000",app="NimbusGames/arena-1",backend="10.0.0.1:443"} 5000
rootlb_backend_bytes_in_total{listener="udp:10002",app="NimbusGames/arena-1",backend="10.0.0.1:7778"} 300
rootlb_backend_bytes_out_total{listener="udp:10002",app="NimbusGames/arena-1",backend="10.0.0.1:7778"} 600
rootlb_backend_packets_in_total{listener="udp:10002",app="NimbusGames/arena-1",backend="10.0.0.1:7778"} 3
rootlb_backend_packets_out_total{listener="udp:10002",app="NimbusGames/arena-1",backend="10.0.0.1:7778"} 6
rootlb_backend_healthy{listener="tcp:10000",app="NimbusGames/arena-1",backend="10.0.0.1:443"} 1
rootlb_backend_connect_seconds_bucket{listener="tcp:10000",app="NimbusGames/arena-1",backend="10.0.0.1:443",le="0.001"} 7
rootlb_listener_active{listener="sctp:1",app="NimbusGames/arena-1"} 1
rootlb_listener_active{app="NimbusGames/arena-1"} 1
"#;

fn int(p: &Point, field: &str) -> i64 {
    match p.fields.get(field) {
        Some(FieldValue::Integer(i)) => *i,
        other => panic!("{field}: {other:?}"),
    }
}

#[test]
fn sums_backends_per_instance_and_port_and_fills_tags_from_the_objects() {
    let out = points(&parse(PAGE), &objects(), &cloudlet(), 42);
    assert_eq!(out.unknown, ["Ghost/nobody", "NimbusGames/arena-2"]);
    assert_eq!(out.points.len(), 2, "{:#?}", out.points);
    let tcp = &out.points[0];
    assert_eq!(tcp.measurement, "appinst-connections");
    assert_eq!(tcp.timestamp_ms, 42);
    let tags: Vec<_> = tcp
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        tags,
        [
            ("app", "arena"),
            ("appinst", "arena-1"),
            ("apporg", "NimbusGames"),
            ("cloudlet", "berlin-1"),
            ("cloudletorg", "TelcoOp"),
            ("cluster", "c1"),
            ("clusterorg", "NimbusGames"),
            ("port", "443"),
            ("ver", "2.3"),
        ]
    );
    let got: Vec<_> = ["active", "accepts", "handled", "bytesSent", "bytesRecvd"]
        .iter()
        .map(|f| int(tcp, f))
        .collect();
    assert_eq!(got, [3, 12, 11, 1024, 5000]);

    let udp = &out.points[1];
    assert_eq!(udp.measurement, "appinst-udp");
    // Public 10002 is the second port of the 7777-7778 range.
    assert_eq!(udp.tags["port"], "7778");
    let fields = [
        "bytesSent",
        "bytesRecvd",
        "datagramsSent",
        "datagramsRecvd",
        "sentErrs",
        "overflow",
    ];
    let got: Vec<_> = fields.iter().map(|f| int(udp, f)).collect();
    assert_eq!(got, [300, 600, 3, 6, 1, 4]);
}

#[test]
fn an_empty_or_foreign_page_gives_no_points() {
    for text in [
        "",
        "# just comments\n",
        "other_metric{app=\"NimbusGames/arena-1\"} 1\n",
    ] {
        assert_eq!(
            points(&parse(text), &objects(), &cloudlet(), 0),
            RootLbPoints::default()
        );
    }
}

#[test]
fn maps_public_ports_to_internal_ones() {
    let i = inst(
        "x",
        cloudlet(),
        vec![
            port(LProto::Tcp, 80, 10000, 0),
            port(LProto::Http, 8080, 10001, 0),
            port(LProto::Udp, 5000, 10010, 5009),
            port(LProto::Tcp, i32::MIN, i32::MAX, i32::MAX),
        ],
    );
    let table = [
        (false, 10000, 80),
        (true, 10000, 10000),
        (false, 10001, 8080),
        (true, 10010, 5000),
        (true, 10019, 5009),
        (true, 10020, 10020),
        (false, 9999, 9999),
    ];
    for (udp, public, want) in table {
        assert_eq!(internal_port(&i, udp, public), want, "{udp} {public}");
    }
}
