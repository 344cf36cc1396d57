//! References, duplicates and empty keys.

use super::*;

#[test]
fn dangling_references_are_named_with_path_and_line() {
    let text = with("name: munich-1}\n    uri", "name: berlin-9}\n    uri");
    let e = assert_at(&text, "app_insts[1].cloudlet", "berlin-9");
    assert_eq!(
        e.to_string(),
        format!(
            "app_insts[1].cloudlet: cloudlet telekom/berlin-9 is not defined (line {})",
            line_of(&text, "berlin-9")
        )
    );
    let text = with(
        "version: \"1.0\"}\n    cloudlet: {organization: telekom, name: munich",
        "version: \"2.0\"}\n    cloudlet: {organization: telekom, name: munich",
    );
    let e = assert_at(&text, "app_insts[1].app", "\"2.0\"");
    assert!(
        matches!(&e.kind, ErrorKind::Dangling { what: "app", key } if key == "AcmeAppCo/someapplication1/2.0")
    );
    assert_at(
        &with("cluster: small-cluster", "cluster: big-cluster"),
        "app_insts[0].cluster",
        "big-cluster",
    );
    let text = with(
        "    cloudlet: {organization: telekom, name: berlin-1}\n    flavor",
        "    cloudlet: {organization: telekom, name: paris-1}\n    flavor",
    );
    assert_at(&text, "cluster_insts[0].cloudlet", "paris-1");
    assert_at(
        &with("default_flavor: x1.small", "default_flavor: x9"),
        "apps[0].default_flavor",
        "x9",
    );
    assert_at(
        &with("    flavor: x1.small", "    flavor: x2"),
        "cluster_insts[0].flavor",
        "x2",
    );
}

#[test]
fn app_inst_cluster_must_be_of_its_org_and_on_its_cloudlet() {
    // The cluster exists but on berlin-1, while this instance is on munich-1.
    let text = with(
        "    uri: munich",
        "    cluster: small-cluster\n    uri: munich",
    );
    let e = rejected(&text);
    assert_eq!(e.path, "app_insts[1].cluster");
    assert_eq!(e.line, Some(line_of(&text, "uri: munich") - 1));
    assert!(matches!(e.kind, ErrorKind::Mismatch(_)), "{e}");
    // Same name under another organization is a different cluster.
    let text = with(
        "{organization: AcmeAppCo, name: small-cluster}",
        "{organization: Other, name: small-cluster}",
    );
    assert!(matches!(
        rejected(&text).kind,
        ErrorKind::Dangling {
            what: "cluster instance",
            ..
        }
    ));
}

#[test]
fn mapped_ports_must_exist_on_the_app() {
    let text = with(
        "internal_port: 80, public_port: 10080",
        "internal_port: 82, public_port: 10080",
    );
    let e = assert_at(&text, "app_insts[1].mapped_ports[0]", "internal_port: 82");
    assert!(
        matches!(e.kind, ErrorKind::Dangling { what: "port", .. }),
        "{e}"
    );
    let text = with("public_port: 10080", "public_port: 70000");
    assert_at(&text, "app_insts[1].mapped_ports[0].public_port", "70000");
    let text = with(
        "{proto: tcp, internal_port: 80, public_port: 10080}",
        "{proto: L_PROTO_TCP, internal_port: 80}",
    );
    assert_eq!(
        parse(&text).unwrap().app_insts[1].mapped_ports[0].public_port,
        80
    );
}

#[test]
fn access_ports_errors_point_at_the_app() {
    let e = assert_at(
        &with("tcp:80,tcp:81:tls", "tcp:80,tcp:22"),
        "apps[0].access_ports",
        "tcp:22",
    );
    assert!(matches!(e.kind, ErrorKind::Ports(_)));
    assert!(e.to_string().contains("tcp:22 is reserved"), "{e}");
}

#[test]
fn duplicates_are_rejected_with_both_lines() {
    let dup_cloudlet = "  - key: {organization: telekom, name: berlin-1}\n    location: {latitude: 1, longitude: 2}\n";
    let text = with("apps:\n", &format!("{dup_cloudlet}apps:\n"));
    let e = rejected(&text);
    assert_eq!(e.path, "cloudlets[2].key");
    assert_eq!(e.line, Some(line_of(&text, "latitude: 1,") - 1));
    assert!(
        matches!(
            e.kind,
            ErrorKind::Duplicate {
                what: "cloudlet",
                first_line: 11,
                ..
            }
        ),
        "{e}"
    );
    let text = with(
        "    uri: munich.example.net",
        "    uri: munich.example.net\n  - key: {organization: AcmeAppCo, name: app-berlin}\n    app: {organization: AcmeAppCo, name: someapplication1, version: \"1.0\"}\n    cloudlet: {organization: telekom, name: berlin-1}",
    );
    assert_eq!(rejected(&text).path, "app_insts[2].key");
    let text = with(
        "  - {name: x1.small",
        "  - {name: x1.small, ram_mb: 1, vcpus: 1, disk_gb: 1}\n  - {name: x1.small",
    );
    assert_eq!(rejected(&text).path, "flavors[1].name");
    let text = with(
        "  - {code: \"26201\"",
        "  - {code: \"26201\", organization: x}\n  - {code: \"26201\"",
    );
    assert_eq!(rejected(&text).path, "operator_codes[1].code");
    let text = with(
        "cluster_insts:\n",
        "cluster_insts:\n  - key: {organization: AcmeAppCo, name: small-cluster}\n    cloudlet: {organization: telekom, name: munich-1}\n",
    );
    assert_eq!(rejected(&text).path, "cluster_insts[1].key");
    let text = with(
        "apps:\n",
        "apps:\n  - key: {organization: AcmeAppCo, name: someapplication1, version: \"1.0\"}\n",
    );
    assert_eq!(rejected(&text).path, "apps[1].key");
}

#[test]
fn empty_key_strings_are_rejected() {
    let e = assert_at(
        &with("name: berlin-1}\n    location", "name: \"\"}\n    location"),
        "cloudlets[0].key.name",
        "name: \"\"",
    );
    assert!(matches!(e.kind, ErrorKind::Empty));
    assert_eq!(
        rejected(&with(
            "version: \"1.0\"}\n    access",
            "version: \"\"}\n    access"
        ))
        .path,
        "apps[0].key.version"
    );
    assert_eq!(
        rejected(&with("{code: \"26201\"", "{code: \"\"")).path,
        "operator_codes[0].code"
    );
    assert_eq!(
        rejected(&with("cluster: small-cluster", "cluster: \"\"")).path,
        "app_insts[0].cluster"
    );
}
