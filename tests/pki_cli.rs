//! `edgeplane pki init` and `issue`: the files, their modes, the identity in the certificate,
//! and the refusals (existing CA, unknown role).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn edgeplane(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(args)
        .output()
        .expect("edgeplane runs")
}

fn ok(args: &[&str]) -> String {
    let out = edgeplane(args);
    assert!(
        out.status.success(),
        "edgeplane {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn failure(args: &[&str]) -> String {
    let out = edgeplane(args);
    assert!(!out.status.success(), "edgeplane {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_then_issue_writes_a_tagged_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let d = dir.to_str().unwrap();

    let said = ok(&["pki", "init", "--dir", d, "--region", "eu-test"]);
    assert!(said.contains("region eu-test CA written"), "{said}");
    let (ca_pem, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    assert_eq!(mode(&ca_key), 0o600);
    let ca = edge_tls::load_certs(&ca_pem).unwrap();
    assert_eq!(edge_tls::identity::ca_region(&ca[0]).unwrap(), "eu-test");

    // An existing CA is kept unless --force.
    let e = failure(&["pki", "init", "--dir", d, "--region", "eu-test"]);
    assert!(e.contains("already exists") && e.contains("--force"), "{e}");
    assert_eq!(edge_tls::load_certs(&ca_pem).unwrap(), ca, "untouched");

    let said = ok(&[
        "pki",
        "issue",
        "--dir",
        d,
        "--role",
        "dme",
        "--name",
        "dme-1",
        "--dns",
        "dme.example",
        "--ip",
        "10.0.0.7",
        "--days",
        "30",
    ]);
    assert!(said.contains("edgeplane://eu-test/dme/dme-1"), "{said}");
    let (cert, key) = (dir.join("dme-dme-1.pem"), dir.join("dme-dme-1.key"));
    assert_eq!(mode(&key), 0o600);
    let (chain, _) = edge_tls::load_pair(&cert, &key).unwrap();
    assert_eq!(chain.len(), 2, "leaf then CA");
    assert_eq!(chain[1], ca[0]);
    let id = edge_tls::peer_identity(&chain[0]).unwrap();
    assert_eq!(
        id,
        edge_tls::PeerIdentity::new("eu-test", edge_tls::Role::Dme, "dme-1").unwrap()
    );

    // The SANs and the validity, read with x509-parser.
    let (_, x509) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    let sans = x509.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = sans
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    for want in [
        "DNSName(localhost)",
        "DNSName(dme.example)",
        "IPAddress(7f:00:00:01)", // 127.0.0.1, as x509-parser prints it
        "IPAddress(0a:00:00:07)", // 10.0.0.7
        "URI(edgeplane://eu-test/dme/dme-1)",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let days =
        (x509.validity().not_after.timestamp() - x509.validity().not_before.timestamp()) / 86_400;
    assert_eq!(days, 30, "30 days (and five minutes of backdating)");

    // A bad role is refused naming the roles there are.
    let e = failure(&[
        "pki", "issue", "--dir", d, "--role", "wizard", "--name", "x",
    ]);
    assert!(
        e.contains("unknown role \"wizard\"") && e.contains("controller"),
        "{e}"
    );
    // A bad name too.
    let e = failure(&[
        "pki", "issue", "--dir", d, "--role", "dme", "--name", "../x",
    ]);
    assert!(e.contains("invalid name"), "{e}");

    // --force replaces the CA.
    ok(&["pki", "init", "--dir", d, "--region", "eu-test", "--force"]);
    assert_ne!(edge_tls::load_certs(&ca_pem).unwrap(), ca);
    assert_eq!(mode(&ca_key), 0o600);
}

#[test]
fn issue_without_a_ca_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    let e = failure(&["pki", "issue", "--dir", d, "--role", "crm", "--name", "c1"]);
    assert!(e.contains("ca.pem") && e.contains("No such file"), "{e}");
}
