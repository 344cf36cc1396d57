//! A realistic region document (10 000 cloudlets and 10 000 instances, 2.9 MB) loads in the
//! standalone DME binary, in YAML and in JSON, and serves FindCloudlet from it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `edgeplane dme --standalone FILE` on OS-chosen ports until its banner, then asks it for
/// the instance nearest to a point next to site 5000.
async fn serves(file: &std::path::Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(["dme", "--standalone"])
        .arg(file)
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("edgeplane dme starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let banner = rx.recv_timeout(Duration::from_secs(120));
    let Ok(banner) = banner else {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "no banner from the DME: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // "DME serving 1 apps: gRPC on ADDR, REST on ADDR"
    assert!(banner.starts_with("DME serving 1 apps"), "{banner}");
    let grpc = banner
        .split("gRPC on ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("gRPC address in the banner");
    let dme = common::Dme::connect(grpc.parse().unwrap());
    let (lat, lon) = common::large_region_site(5000);
    let found = dme
        .find(&common::arena(), "26201", lat - 0.01, lon + 0.01)
        .await;
    let _ = child.kill();
    let _ = child.wait();
    let (flat, flon) = found.expect("an instance is found");
    assert!(
        (flat - lat).abs() < 1e-9 && (flon - lon).abs() < 1e-9,
        "{flat},{flon}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_instance_yaml_region_loads_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = common::large_region_yaml(10_000);
    assert!(yaml.len() > 2_500_000, "{} bytes", yaml.len());
    let file = dir.path().join("region.yaml");
    std::fs::write(&file, &yaml).unwrap();
    serves(&file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_instance_json_region_loads_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("region.json");
    std::fs::write(&file, common::large_region_json(10_000)).unwrap();
    serves(&file).await;
}
