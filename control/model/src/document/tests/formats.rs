//! JSON input, printing back (fixed point), files, and hostile input.

use super::*;

const JSON: &str = r#"{
  "version": 1,
  "cloudlets": [
    {
      "key": {"organization": "orange", "name": "paris-1"},
      "location": {"latitude": 48.8566, "longitude": 2.3522},
      "state": "CLOUDLET_STATE_READY"
    }
  ],
  "apps": [{"key": {"organization": "acme", "name": "game", "version": "2"}, "access_ports": "udp:7777"}],
  "app_insts": [
    {"key": {"organization": "acme", "name": "game-paris"},
     "app": {"organization": "acme", "name": "game", "version": "2"},
     "cloudlet": {"organization": "orange", "name": "paris-9"}}
  ]
}
"#;

#[test]
fn json_documents_parse_and_report_lines() {
    let ok = JSON.replace("paris-9", "paris-1");
    let d = parse(&ok).unwrap();
    assert_eq!(
        d.app_insts[0].uri,
        "game2-acme.paris-1-orange.local.edge.example.net"
    );
    // Semantic errors in JSON get the same path and line as in YAML.
    assert_at(JSON, "app_insts[0].cloudlet", "paris-9");
    // Syntax errors come from the JSON parser, with its line.
    let broken = ok.replace("\"version\": 1,", "\"version\": 1");
    let e = rejected(&broken);
    assert!(matches!(e.kind, ErrorKind::Json(_)), "{e}");
    assert_eq!(e.line, Some(3), "{e}");
    let trailing = ok.replace(
        "\"access_ports\": \"udp:7777\"}",
        "\"access_ports\": \"udp:7777\",}",
    );
    let e = rejected(&trailing);
    assert_eq!(e.line, Some(line_of(&trailing, "udp:7777")), "{e}");
    assert_at(
        &ok.replace("\"state\"", "\"status\""),
        "cloudlets[0].status",
        "status",
    );
}

#[test]
fn to_yaml_is_a_fixed_point() {
    let rich = with(
        "    default_flavor: x1.small",
        concat!(
            "    default_flavor: x1.small\n",
            "    official_fqdn: game.acme.com, www.game.acme.com\n",
            "    image_path: \"docker.io/acme/game:1.0 --flag 'yes' # not a comment\"\n",
            "    auth_public_key: |\n",
            "      -----BEGIN PUBLIC KEY-----\n",
            "      MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAK1x\n",
            "      -----END PUBLIC KEY-----\n",
            "  - key: {organization: platos, name: \"null\", version: \"010\"}\n",
            "    deployment: kubernetes\n",
            "    access_ports: \"tcp:5000-5010,udp:7000:nginx:maxpktsize=9000\"\n",
            "    android_package_name: com.platos.x\n",
            "    platform_app: true",
        ),
    );
    let rich = rich.replace(
        "    flavor: x1.small\n",
        "    flavor: x1.small\n    ip_access: IP_ACCESS_DEDICATED\n    num_nodes: 3\n    node_address: 10.0.0.7\n",
    );
    for text in [BASE, rich.as_str(), "version: 1\n"] {
        let first = parse(text).unwrap();
        let yaml = to_yaml(&first);
        let second = parse(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(first, second, "{yaml}");
        assert_eq!(to_yaml(&second), yaml);
    }
    let bad = rich.replace("node_address: 10.0.0.7", "node_address: node-7");
    let e = parse(&bad).unwrap_err();
    assert!(
        e.to_string().contains("node_address must be an IP address"),
        "{e}"
    );
    let yaml = to_yaml(&parse(&rich).unwrap());
    assert!(yaml.contains("node_address: \"10.0.0.7\""), "{yaml}");
    assert!(
        yaml.contains("maintenance_state: UNDER_MAINTENANCE"),
        "{yaml}"
    );
    assert!(
        yaml.contains("ip_access: dedicated") && !yaml.contains("CLOUDLET_STATE_"),
        "{yaml}"
    );
}

#[test]
fn load_reads_files_and_reports_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region.yaml");
    std::fs::write(&path, BASE).unwrap();
    assert_eq!(load(&path).unwrap(), parse(BASE).unwrap());
    let e = load(&dir.path().join("missing.yaml")).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Io { .. }));
    assert!(e.to_string().contains("missing.yaml"), "{e}");
}

/// Mutated documents and random bytes must give a deployment or an error, never a panic.
#[test]
fn random_input_never_panics() {
    const ALPHABET: &[u8] = b"{}[]:,-\"'\n #&*!|>.0aZ\t\\";
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % 1_000_003).unwrap_or(0)
    };
    for text in [BASE, JSON] {
        let bytes = text.as_bytes();
        for round in 0..1500 {
            let mut b = bytes.to_vec();
            match round % 3 {
                0 => b.truncate(next() % bytes.len()),
                1 => {
                    for _ in 0..1 + next() % 4 {
                        let i = next() % b.len();
                        b[i] = ALPHABET[next() % ALPHABET.len()];
                    }
                }
                _ => {
                    let (i, j) = (next() % b.len(), next() % b.len());
                    let chunk = b[i.min(j)..i.max(j)].to_vec();
                    let (k, l) = (next() % b.len(), next() % b.len());
                    b.splice(k.min(l)..k.max(l), chunk);
                }
            }
            let _ = parse(&String::from_utf8_lossy(&b));
        }
    }
    for _ in 0..500 {
        let b: Vec<u8> = (0..next() % 200).map(|_| (next() % 256) as u8).collect();
        let _ = parse(&String::from_utf8_lossy(&b));
    }
}
