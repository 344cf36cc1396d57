//! `edgeplane up` (the README's run command) brings up a region that answers FindCloudlet.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_the_example_region() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["up", "--data-dir"])
        .arg(dir.path())
        .args(["--api-addr", "127.0.0.1:0", "--notify-addr", "127.0.0.1:0"])
        .args([
            "--dme-grpc-addr",
            "127.0.0.1:0",
            "--dme-http-addr",
            "127.0.0.1:0",
        ])
        .env_remove("EDGEPLANE_STORE_ETCD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("edgeplane up starts");
    let stdout = child.stdout.take().unwrap();
    // Read the banner on a thread: the process keeps running.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut grpc = None;
    let mut applied = false;
    while grpc.is_none() {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("banner within 30 s");
        applied |= line.starts_with("applied examples/region.yaml: 41 created");
        if let Some(addr) = line.trim().strip_prefix("DME gRPC") {
            grpc = Some(addr.trim().to_string());
        }
    }
    assert!(applied, "the example document was applied");
    let dme = common::Dme::connect(grpc.unwrap().parse().unwrap());
    let found = dme.find(&common::arena(), "26201", 52.3906, 13.0645).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(found, Some((52.52, 13.405)));
}
