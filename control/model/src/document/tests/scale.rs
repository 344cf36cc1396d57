//! Large documents, hostile expansion and nesting, and the fields a controller computes.

use super::*;

/// A region of `n` cloudlets and `n` app instances (one per cloudlet), in YAML: the shape of a
/// real operator's region, about 300 bytes per cloudlet and instance.
pub(crate) fn region_yaml(n: usize) -> String {
    let mut s = String::with_capacity(n * 320 + 512);
    s.push_str(
        "version: 1\nregion: eu\noperator_codes:\n  - {code: \"26201\", organization: telekom}\n",
    );
    s.push_str("apps:\n  - key: {organization: acme, name: game, version: \"1\"}\n    access_ports: \"tcp:443,udp:7777\"\n");
    s.push_str("cloudlets:\n");
    for i in 0..n {
        let (lat, lon) = (
            -60.0 + (i % 1200) as f64 * 0.1,
            -170.0 + (i / 1200) as f64 * 0.5,
        );
        s.push_str(&format!(
            "  - key: {{organization: telekom, name: site-{i}}}\n    location: {{latitude: {lat:.4}, longitude: {lon:.4}}}\n"
        ));
    }
    s.push_str("app_insts:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - key: {{organization: acme, name: game-{i}}}\n    app: {{organization: acme, name: game, version: \"1\"}}\n    cloudlet: {{organization: telekom, name: site-{i}}}\n"
        ));
    }
    s
}

#[test]
fn a_region_of_ten_thousand_cloudlets_and_instances_parses() {
    let text = region_yaml(10_000);
    // Above every fixed default of the YAML library's budget (250 000 nodes).
    assert!(text.len() > 2_500_000, "{}", text.len());
    let d = parse(&text).unwrap();
    assert_eq!((d.cloudlets.len(), d.app_insts.len()), (10_000, 10_000));
    assert_eq!(d.app_insts[9_999].key.name, "game-9999");
    // The same region as JSON.
    let json = serde_json::to_string(
        &serde_saphyr::from_str::<serde_json::Value>(&region_yaml(200)).unwrap(),
    )
    .unwrap();
    assert_eq!(parse(&json).unwrap().app_insts.len(), 200);
}

#[test]
fn shared_anchors_in_a_large_region_are_accepted() {
    // Every instance names its app through one anchor: far more aliases than anchors.
    let n = 5_000;
    let base = region_yaml(0);
    let mut text = base.strip_suffix("app_insts:\n").unwrap().replace(
        "key: {organization: acme, name: game, version: \"1\"}",
        "key: &app {organization: acme, name: game, version: \"1\", }",
    );
    text.push_str("  - key: {organization: telekom, name: site}\n    location: {latitude: 1, longitude: 2}\napp_insts:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  - key: {{organization: acme, name: g-{i}}}\n    app: *app\n    cloudlet: {{organization: telekom, name: site}}\n"
        ));
    }
    let d = parse(&text).unwrap();
    assert_eq!(d.app_insts.len(), n);
}

/// One anchored list of 10 000 names, aliased by 2 000 cloudlets: 20 million names if expanded
/// from 200 KB of text. Refused after bounded work.
#[test]
fn an_alias_bomb_is_refused_with_a_clear_error() {
    let names = vec!["a"; 10_000].join(", ");
    let mut text = format!(
        "version: 1\ncloudlets:\n  - key: {{organization: o, name: c}}\n    location: {{latitude: 1, longitude: 2}}\n    alliance_orgs: &l [{names}]\n"
    );
    for i in 0..2_000 {
        text.push_str(&format!(
            "  - key: {{organization: o, name: c{i}}}\n    location: {{latitude: 1, longitude: 2}}\n    alliance_orgs: *l\n"
        ));
    }
    let started = std::time::Instant::now();
    let msg = parse(&text).unwrap_err().to_string();
    assert!(
        msg.contains("limits breached") || msg.contains("alias"),
        "{msg}"
    );
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn deep_nesting_is_refused_with_a_clear_error() {
    let depth = 10_000;
    let text = format!(
        "version: 1\ncloudlets: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let msg = parse(&text).unwrap_err().to_string();
    assert!(
        msg.contains("depth") || msg.contains("nest") || msg.contains("limit"),
        "{msg}"
    );
    let json = format!(
        "{{\"version\": 1, \"cloudlets\": {}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let msg = parse(&json).unwrap_err().to_string();
    assert!(
        msg.contains("recursion") || msg.contains("depth") || msg.contains("limit"),
        "{msg}"
    );
}

#[test]
fn entries_setting_computed_fields_are_noted_with_path_and_line() {
    let text = with(
        "    cloudlet: {organization: telekom, name: berlin-1}\n    cluster: small-cluster",
        "    cloudlet: {organization: telekom, name: berlin-1}\n    cluster: small-cluster\n    health: SERVER_FAIL",
    );
    let (d, notes) = parse_noting_computed(&text).unwrap();
    assert_eq!(d, parse(&text).unwrap());
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0].path, "app_insts[0]");
    assert_eq!(notes[0].fields, vec!["health"]);
    assert_eq!(notes[0].line, Some(line_of(&text, "name: app-berlin")));
    assert_eq!(notes[0].key, ObjectKey::AppInst(d.app_insts[0].key.clone()));
    assert_eq!(notes[1].path, "app_insts[1]");
    assert_eq!(notes[1].fields, vec!["uri", "mapped_ports"]);
    // Defaults are not noted: an entry without these fields gets none.
    let (_, none) = parse_noting_computed(&with("    uri: munich.example.net\n", "").replace(
        "    mapped_ports:\n      - {proto: tcp, internal_port: 80, public_port: 10080}\n",
        "",
    ))
    .unwrap();
    assert!(none.is_empty(), "{none:?}");
}
