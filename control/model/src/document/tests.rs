//! Document rules one by one. Expected lines are found by searching the text for a marker, so
//! the fixtures can change without renumbering.

use super::*;
use crate::ports::LProto;
use crate::types::{
    CloudletState, HealthCheck, IpAccess, MaintenanceState, NetworkLocation, TrackedState,
};

const BASE: &str = r#"version: 1
region: eu
settings:
  app_dns_root: edge.example.net
  network_location: {kind: static, latitude: 52.52, longitude: 13.405}
operator_codes:
  - {code: "26201", organization: telekom}
flavors:
  - {name: x1.small, ram_mb: 2048, vcpus: 2, disk_gb: 20}
cloudlets:
  - key: {organization: telekom, name: berlin-1}
    location: {latitude: 52.52, longitude: 13.405}
  - key: {organization: telekom, name: munich-1}
    location: {latitude: 48.1351, longitude: 11.582}
    maintenance_state: UNDER_MAINTENANCE
apps:
  - key: {organization: AcmeAppCo, name: someapplication1, version: "1.0"}
    access_ports: "tcp:80,tcp:81:tls,udp:10002"
    default_flavor: x1.small
cluster_insts:
  - key: {organization: AcmeAppCo, name: small-cluster}
    cloudlet: {organization: telekom, name: berlin-1}
    flavor: x1.small
app_insts:
  - key: {organization: AcmeAppCo, name: app-berlin}
    app: {organization: AcmeAppCo, name: someapplication1, version: "1.0"}
    cloudlet: {organization: telekom, name: berlin-1}
    cluster: small-cluster
  - key: {organization: AcmeAppCo, name: app-munich}
    app: {organization: AcmeAppCo, name: someapplication1, version: "1.0"}
    cloudlet: {organization: telekom, name: munich-1}
    uri: munich.example.net
    mapped_ports:
      - {proto: tcp, internal_port: 80, public_port: 10080}
"#;

mod formats;
mod references;
mod scale;

/// BASE with the first occurrence of `from` replaced by `to`.
fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "fixture lacks {from:?}");
    BASE.replacen(from, to, 1)
}

/// 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect(needle) + 1
}

fn rejected(text: &str) -> DocumentError {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts the error's path and that its line is the line holding `needle`.
fn assert_at(text: &str, path: &str, needle: &str) -> DocumentError {
    let e = rejected(text);
    assert_eq!(e.path, path, "{e}");
    assert_eq!(e.line, Some(line_of(text, needle)), "{e}");
    e
}

#[test]
fn base_document_parses_with_defaults() {
    let d = parse(BASE).unwrap();
    assert_eq!(d.region, "eu");
    assert_eq!(d.cloudlets[0].state, CloudletState::Ready);
    assert_eq!(
        d.cloudlets[0].maintenance_state,
        MaintenanceState::NormalOperation
    );
    assert_eq!(d.cloudlets[0].platform_type, "fake");
    assert_eq!(
        d.cloudlets[1].maintenance_state,
        MaintenanceState::UnderMaintenance
    );
    assert_eq!(d.cluster_insts[0].ip_access, IpAccess::Shared);
    let inst = &d.app_insts[0];
    assert_eq!(
        inst.uri,
        "someapplication110-acmeappco.berlin-1-telekom.eu.edge.example.net"
    );
    assert_eq!(inst.mapped_ports, d.apps[0].access_ports);
    assert!(
        inst.mapped_ports
            .iter()
            .all(|p| p.public_port == p.internal_port)
    );
    assert_eq!(
        (inst.state, inst.health),
        (TrackedState::Ready, HealthCheck::Ok)
    );
    assert_eq!(inst.cluster.as_deref(), Some("small-cluster"));
    let munich = &d.app_insts[1];
    assert_eq!(munich.uri, "munich.example.net");
    assert_eq!(munich.mapped_ports.len(), 1);
    assert_eq!(
        (
            munich.mapped_ports[0].proto,
            munich.mapped_ports[0].public_port
        ),
        (LProto::Tcp, 10080)
    );
    assert!(matches!(d.settings.network_location, NetworkLocation::Static(p) if p.lat() == 52.52));
}

#[test]
fn minimal_document_gets_default_region_and_settings() {
    let d = parse("version: 1\n").unwrap();
    assert_eq!(d.region, "local");
    assert_eq!(d.settings, Settings::default());
    assert!(d.cloudlets.is_empty() && d.app_insts.is_empty());
}

#[test]
fn version_is_required_and_must_be_1() {
    let e = rejected("region: eu\n");
    assert_eq!((e.path.as_str(), e.line), ("version", None));
    assert!(matches!(e.kind, ErrorKind::Version(_)));
    let e = assert_at(&with("version: 1", "version: 2"), "version", "version: 2");
    assert!(e.to_string().contains("unsupported version 2"), "{e}");
    assert!(matches!(
        rejected(&with("version: 1", "version: one")).kind,
        ErrorKind::Syntax(_)
    ));
}

#[test]
fn unknown_fields_name_the_field_and_line() {
    let text = with(
        "    maintenance_state: UNDER",
        "    colour: red\n    maintenance_state: UNDER",
    );
    let e = assert_at(&text, "cloudlets[1].colour", "colour");
    assert!(matches!(&e.kind, ErrorKind::UnknownField { field, .. } if field == "colour"));
    assert!(e.to_string().contains("unknown field `colour`"), "{e}");
    let text = with(
        "{latitude: 52.52, longitude: 13.405}\n  - key",
        "{latitude: 52.52, lng: 13.4}\n  - key",
    );
    assert_at(&text, "cloudlets[0].location.lng", "lng");
    assert_at(&with("region: eu", "regoin: eu"), "regoin", "regoin");
}

#[test]
fn wrong_types_and_yaml_errors_have_path_and_line() {
    let text = with("ram_mb: 2048", "ram_mb: lots");
    let e = assert_at(&text, "flavors[0].ram_mb", "lots");
    assert!(matches!(e.kind, ErrorKind::Syntax(_)));
    assert!(e.column.is_some());
    let e = rejected(&with("region: eu", "region: eu\nregion: us"));
    assert_eq!(e.line, Some(3), "duplicate mapping key: {e}");
    let e = rejected("version: 1\ncloudlets: [\n");
    assert!(e.line.is_some(), "{e}");
}

#[test]
fn enums_accept_short_and_prefixed_names_case_sensitively() {
    let state = "    maintenance_state: UNDER_MAINTENANCE";
    for (form, want) in [
        ("READY", CloudletState::Ready),
        ("CLOUDLET_STATE_OFFLINE", CloudletState::Offline),
    ] {
        let d = parse(&with(state, &format!("{state}\n    state: {form}"))).unwrap();
        assert_eq!(d.cloudlets[1].state, want);
    }
    let inst = "    cluster: small-cluster";
    for (state, health) in [("READY", "OK"), ("TRACKED_STATE_READY", "HEALTH_CHECK_OK")] {
        let d = parse(&with(
            inst,
            &format!("{inst}\n    state: {state}\n    health: {health}"),
        ))
        .unwrap();
        assert_eq!(
            (d.app_insts[0].state, d.app_insts[0].health),
            (TrackedState::Ready, HealthCheck::Ok)
        );
    }
    let e = assert_at(
        &with(state, "    maintenance_state: under_maintenance"),
        "cloudlets[1].maintenance_state",
        "under_",
    );
    assert!(matches!(e.kind, ErrorKind::Enum(_)));
    assert_at(
        &with(inst, &format!("{inst}\n    health: HEALTHY")),
        "app_insts[0].health",
        "HEALTHY",
    );
    assert_at(
        &with(state, &format!("{state}\n    state: REDY")),
        "cloudlets[1].state",
        "REDY",
    );
}

#[test]
fn coordinates_are_validated_with_field_and_line() {
    let text = with("latitude: 48.1351", "latitude: 91");
    let e = assert_at(&text, "cloudlets[1].location.latitude", "latitude: 91");
    assert!(matches!(e.kind, ErrorKind::Coordinates(_)));
    assert_at(
        &with("latitude: 48.1351", "latitude: .nan"),
        "cloudlets[1].location.latitude",
        ".nan",
    );
    assert_at(
        &with("longitude: 11.582", "longitude: -181"),
        "cloudlets[1].location.longitude",
        "-181",
    );
    assert_at(
        &with("longitude: 11.582", "longitude: .inf"),
        "cloudlets[1].location.longitude",
        ".inf",
    );
    let text = with(
        "kind: static, latitude: 52.52",
        "kind: static, latitude: .nan",
    );
    assert_at(&text, "settings.network_location.latitude", ".nan");
}

#[test]
fn settings_are_validated() {
    let text = with(
        "  app_dns_root",
        "  public_cloud_padding_km: -1\n  app_dns_root",
    );
    assert_at(&text, "settings.public_cloud_padding_km", "padding");
    let text = with("  app_dns_root", "  very_close_km: .nan\n  app_dns_root");
    assert_at(&text, "settings.very_close_km", "very_close");
    let text = with(
        "{kind: static, latitude: 52.52, longitude: 13.405}",
        "{kind: static, latitude: 52.52}",
    );
    assert_at(&text, "settings.network_location", "network_location");
    let text = with("kind: static", "kind: geoip");
    assert_at(&text, "settings.network_location", "network_location");
    let text = with(
        "{kind: static, latitude: 52.52, longitude: 13.405}",
        "{kind: gps}",
    );
    assert_at(&text, "settings.network_location.kind", "gps");
    assert_at(
        &with("edge.example.net", "edge..net"),
        "settings.app_dns_root",
        "edge..net",
    );
    assert_at(&with("region: eu", "region: eu west"), "region", "eu west");
    let d = parse(&with(
        "{kind: static, latitude: 52.52, longitude: 13.405}",
        "{kind: geoip}",
    ))
    .unwrap();
    assert_eq!(d.settings.network_location, NetworkLocation::GeoIp);
}

#[test]
fn missing_fields_point_at_their_mapping() {
    let e = rejected("version: 1\nflavors:\n  - name: x\n    vcpus: 1\ncloudlets: []\n");
    assert_eq!(e.path, "flavors[0]");
    assert!(e.to_string().contains("missing field `ram_mb`"), "{e}");
    let e = rejected("version: 1\nflavors:\n  - {name: x}\n");
    assert_eq!((e.path.as_str(), e.line), ("flavors[0]", Some(3)));
}
