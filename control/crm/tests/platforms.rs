//! Every platform driver through the one conformance suite, and the `local` driver's own
//! promises over real processes and sockets: clear errors for commands that do not exist and
//! ports already taken, restarts of processes that die, adoption by a restarted CRM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crm::platform::fake::FakePlatform;
use crm::platform::local::net::Isolation;
use crm::platform::local::{LocalOptions, LocalPlatform};
use crm::platform::{ClusterSpec, InstSpec, Platform, Quiet};
use edge_model::{
    App, AppInstKey, AppKey, CloudletKey, ClusterKey, DeploymentKind, HealthCheck, IpAccess,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn echo_app(command: &str, ports: &str) -> App {
    App {
        key: AppKey {
            organization: "conformance".into(),
            name: "echo".into(),
            version: "1".into(),
        },
        deployment: DeploymentKind::Process,
        image_path: command.into(),
        access_ports: edge_model::parse_access_ports(ports).unwrap(),
        default_flavor: None,
        official_fqdn: Vec::new(),
        android_package_name: String::new(),
        auth_public_key: None,
        platform_app: false,
    }
}

fn echo_bin() -> String {
    env!("CARGO_BIN_EXE_edge-echo").to_string()
}

fn local(dir: &std::path::Path, isolation: Isolation) -> LocalPlatform {
    LocalPlatform::new(LocalOptions {
        state_dir: dir.to_path_buf(),
        isolation,
        cloudlet: CloudletKey {
            organization: "test".into(),
            name: "local-1".into(),
        },
        ready_timeout: Duration::from_secs(10),
    })
    .unwrap()
}

fn cluster(name: &str) -> ClusterSpec {
    ClusterSpec {
        key: ClusterKey {
            organization: "acme".into(),
            name: name.into(),
        },
        flavor: None,
        num_masters: 1,
        num_nodes: 0,
        ip_access: IpAccess::Shared,
    }
}

fn inst(app: &App, name: &str, c: &ClusterSpec) -> InstSpec {
    InstSpec {
        key: AppInstKey {
            organization: "acme".into(),
            name: name.into(),
        },
        app: app.clone(),
        cluster: Some(c.key.clone()),
        ports: app.access_ports.clone(),
    }
}

/// Sends `text` to tcp `addr` and returns what comes back (bounded).
async fn echo(addr: SocketAddr, text: &str) -> String {
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    s.write_all(text.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; text.len()];
    tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
        .await
        .expect("reply in time")
        .unwrap();
    String::from_utf8(buf).unwrap()
}

#[tokio::test]
async fn fake_conforms() {
    crm::conformance::run(
        Arc::new(FakePlatform::default()),
        &echo_app("anything", "tcp:80"),
    )
    .await;
}

#[tokio::test]
async fn local_on_loopback_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let p = Arc::new(local(dir.path(), Isolation::Loopback));
    crm::conformance::run(p, &echo_app(&echo_bin(), "tcp:7000,udp:7001")).await;
}

#[tokio::test]
async fn local_in_network_namespaces_conforms_where_the_host_allows_it() {
    if !Isolation::Auto.uses_netns() {
        eprintln!("not root or no `ip`: namespaces are not available here; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = Arc::new(local(dir.path(), Isolation::Netns));
    crm::conformance::run(p, &echo_app(&echo_bin(), "tcp:7000,udp:7001")).await;
}

#[tokio::test]
async fn bad_commands_and_taken_ports_are_clear_errors_that_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let p = local(dir.path(), Isolation::Loopback);
    let c = cluster("c1");
    let st = p.create_cluster(&c, &Quiet).await.unwrap();

    let missing = echo_app("/nonexistent/edge-app --serve", "tcp:7000");
    let e = p
        .create_app_inst(&inst(&missing, "m", &c), &Quiet)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");
    assert!(e.to_string().contains("/nonexistent/edge-app"), "{e}");

    // A port held by someone else on the cluster's address.
    let holder = std::net::TcpListener::bind(SocketAddr::new(st.node_address, 7100)).unwrap();
    let app = echo_app(&echo_bin(), "tcp:7100");
    let e = p
        .create_app_inst(&inst(&app, "taken", &c), &Quiet)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("tcp:7100"), "{e}");
    assert!(e.to_string().contains("not available"), "{e}");
    drop(holder);

    // A program that exits at once.
    let crash = echo_app(&format!("{} --ports tcp:notaport", echo_bin()), "tcp:7200");
    let e = p
        .create_app_inst(&inst(&crash, "crash", &c), &Quiet)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("exited"), "{e}");

    let inv = p.inventory().await.unwrap();
    assert!(inv.insts.is_empty(), "{inv:?}");
    // Nothing else was affected: a good instance still starts on the same cluster.
    let good = inst(&echo_app(&echo_bin(), "tcp:7100"), "good", &c);
    p.create_app_inst(&good, &Quiet).await.unwrap();
    assert_eq!(
        echo(SocketAddr::new(st.node_address, 7100), "hi").await,
        "hi"
    );
    p.stop_all().await;
}

#[tokio::test]
async fn a_dead_process_is_restarted_and_a_new_crm_adopts_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let p = local(dir.path(), Isolation::Loopback);
    let mut changes = p.health_changes();
    let c = cluster("c1");
    let st = p.create_cluster(&c, &Quiet).await.unwrap();
    let app = echo_app(&echo_bin(), "tcp:7300");
    let spec = inst(&app, "e1", &c);
    p.create_app_inst(&spec, &Quiet).await.unwrap();
    let addr = SocketAddr::new(st.node_address, 7300);
    assert_eq!(echo(addr, "one").await, "one");

    let pid_file = dir.path().join("instances/acme/e1/pids");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // ServerFail, then Ok once it listens again.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.last() != Some(&HealthCheck::Ok) || seen.len() < 2 {
        let _ = tokio::time::timeout_at(deadline, changes.recv())
            .await
            .expect("health changes within 10 s");
        seen.push(p.health(&spec.key));
    }
    assert!(seen.contains(&HealthCheck::ServerFail), "{seen:?}");
    assert_eq!(echo(addr, "two").await, "two");
    let new_pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(new_pid, pid);

    // A new CRM on the same state adopts the running process instead of starting another.
    drop(p);
    let p2 = local(dir.path(), Isolation::Loopback);
    let inv = p2.inventory().await.unwrap();
    assert_eq!(inv.insts, vec![spec.key.clone()]);
    assert_eq!(inv.clusters.len(), 1);
    let adopted: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(adopted, new_pid, "adopted, not restarted");
    assert_eq!(p2.health(&spec.key), HealthCheck::Ok);
    assert_eq!(echo(addr, "three").await, "three");

    // Delete: the process is gone and the port free.
    p2.delete_app_inst(&spec.key, &Quiet).await.unwrap();
    assert!(
        std::fs::metadata(format!("/proc/{new_pid}")).is_err() || {
            // A zombie of the first CRM's child is not ours to reap; it no longer listens.
            std::net::TcpListener::bind(addr).is_ok()
        }
    );
    assert!(
        std::net::TcpListener::bind(addr).is_ok(),
        "the port is free"
    );
}
