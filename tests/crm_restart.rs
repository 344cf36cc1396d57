//! Restarts around a CRM of the `local` platform, over real sockets and processes:
//! - the CRM restarts: it adopts the instance that kept running (same process, no second one),
//!   and the instance stays READY;
//! - the controller restarts: the CRM keeps its workloads running meanwhile, and when it
//!   reconnects it carries out what changed while it was away (an instance deleted).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use edge_api::pb;
use edge_model::{AppInstKey, CloudletKey, ObjectKey, TrackedState};
use tokio::sync::watch;

fn document(echo: &str) -> String {
    format!(
        r#"version: 1
region: eu
cloudlets:
  - key: {{organization: telekom, name: restart-local}}
    location: {{latitude: 52.52, longitude: 13.405}}
    platform_type: local
apps:
  - key: {{organization: acme, name: echo, version: "1"}}
    deployment: process
    image_path: "{echo} echo"
    access_ports: "tcp:7000"
"#
    )
}

fn cloudlet() -> CloudletKey {
    CloudletKey {
        organization: "telekom".into(),
        name: "restart-local".into(),
    }
}

/// The CRM of restart-local, until `stop`.
fn start_crm(
    notify: SocketAddr,
    state: &Path,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let opts = crm::cli::PlatformOptions {
        state_dir: state.to_path_buf(),
        ..Default::default()
    };
    let config = crm::CrmConfig {
        addrs: vec![notify.to_string()],
        tls: None,
        name: "crm-restart".into(),
        scope: crm::Scope::Cloudlet(cloudlet()),
        platforms: Box::new(move |c| crm::cli::make_platform(&opts, c)),
        rootlb_address: None,
    };
    tokio::spawn(async move { crm::run(config, stop).await.expect("CRM runs") })
}

fn object(kind_yaml: &str) -> edge_model::Object {
    let doc = edge_model::document::parse(&format!(
        "{}{kind_yaml}",
        document(env!("CARGO_BIN_EXE_edgeplane"))
    ))
    .unwrap();
    match (doc.cluster_insts.first(), doc.app_insts.first()) {
        (_, Some(i)) => edge_model::Object::AppInst(i.clone()),
        (Some(c), None) => edge_model::Object::ClusterInst(c.clone()),
        _ => unreachable!(),
    }
}

const CLUSTER: &str = r#"cluster_insts:
  - key: {organization: acme, name: c1}
    cloudlet: {organization: telekom, name: restart-local}
"#;

const INST: &str = r#"cluster_insts:
  - key: {organization: acme, name: c1}
    cloudlet: {organization: telekom, name: restart-local}
app_insts:
  - key: {organization: acme, name: e1}
    app: {organization: acme, name: echo, version: "1"}
    cloudlet: {organization: telekom, name: restart-local}
    cluster: c1
"#;

async fn create(
    client: &mut pb::controller_client::ControllerClient<tonic::transport::Channel>,
    o: edge_model::Object,
) {
    edgectl::create_object(client, &o).await.expect("create");
}

fn pid_of(state: &Path) -> Option<i32> {
    let p: PathBuf = state.join("telekom-restart-local/instances/acme/e1/pids");
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

fn inst_state(ctl: &Controller) -> Option<TrackedState> {
    let key = ObjectKey::AppInst(AppInstKey {
        organization: "acme".into(),
        name: "e1".into(),
    });
    match ctl.handle.core.show(None, Some(&key), None).first() {
        Some(edge_model::Object::AppInst(i)) => Some(i.state),
        _ => None,
    }
}

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ok() {
        assert!(Instant::now() < deadline, "not within 15 s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_crm_adopts_its_running_instance() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("crm");
    let ctl = start_controller(redb(&dir.path().join("store")).await, None).await;
    let mut client = ctl.client().await;
    let doc = edge_model::document::parse(&document(env!("CARGO_BIN_EXE_edgeplane"))).unwrap();
    edgectl::apply(&mut client, &doc).await.unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let first = start_crm(ctl.notify, &state, stop);
    create(&mut client, object(CLUSTER)).await;
    create(&mut client, object(INST)).await;
    assert_eq!(inst_state(&ctl), Some(TrackedState::Ready));
    let pid = pid_of(&state).expect("the instance's pid");

    // The CRM stops; its workload does not.
    stop_tx.send(true).unwrap();
    first.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alive(pid), "the instance outlives its CRM");

    // A new CRM adopts it: same process, still READY, no second process.
    let (stop_tx, stop) = watch::channel(false);
    let second = start_crm(ctl.notify, &state, stop);
    until("the new CRM reports the cloudlet", || {
        ctl.handle.acks.get("crm-restart").is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pid_of(&state), Some(pid), "adopted, not started again");
    assert!(alive(pid));
    assert_eq!(inst_state(&ctl), Some(TrackedState::Ready));
    let echoes = std::process::Command::new("pgrep")
        .args(["-f", &format!("{} echo", env!("CARGO_BIN_EXE_edgeplane"))])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0);
    assert!(echoes >= 1, "pgrep found the echo process");

    // The delete goes through the adopting CRM: the process ends.
    let key = ObjectKey::AppInst(AppInstKey {
        organization: "acme".into(),
        name: "e1".into(),
    });
    edgectl::delete_object(&mut client, &key)
        .await
        .expect("delete");
    until("the adopted process ends", || !alive(pid)).await;
    stop_tx.send(true).unwrap();
    second.await.unwrap();
    cleanup(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_restart_keeps_workloads_and_reconciles_a_delete_made_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("crm");
    let store_dir = dir.path().join("store");
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (api, notify) = (free(), free());
    // A real controller process, so that killing it is a controller going away.
    let mut controller = std::process::Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(["controller", "--region", "eu", "--data-dir"])
        .arg(&store_dir)
        .args([
            "--api-addr",
            &api.to_string(),
            "--notify-addr",
            &notify.to_string(),
            // Tests run side by side: no fixed port.
            "--http-addr",
            "127.0.0.1:0",
        ])
        .env_remove("EDGEPLANE_STORE_ETCD")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("controller process starts");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut client = loop {
        if let Ok(c) =
            pb::controller_client::ControllerClient::connect(format!("http://{api}")).await
        {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "the controller API never came up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let doc = edge_model::document::parse(&document(env!("CARGO_BIN_EXE_edgeplane"))).unwrap();
    edgectl::apply(&mut client, &doc).await.unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let crm = start_crm(notify, &state, stop);
    create(&mut client, object(CLUSTER)).await;
    create(&mut client, object(INST)).await;
    let pid = pid_of(&state).expect("the instance's pid");

    // The controller goes away: the workload keeps running.
    controller.kill().unwrap();
    controller.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(alive(pid), "the workload runs on without the controller");

    // Restarted on the same data, the instance is deleted before the CRM can reconnect.
    let handle = controller::server::start(redb(&store_dir).await, "eu")
        .await
        .unwrap();
    let key = ObjectKey::AppInst(AppInstKey {
        organization: "acme".into(),
        name: "e1".into(),
    });
    let _ = handle
        .core
        .delete(&key)
        .await
        .expect("delete while the CRM is away");
    assert!(alive(pid), "nothing reached the CRM yet");

    // Serving again on its address: the CRM reconnects and carries out the delete.
    let (api_l, notify_l) = (
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        tokio::net::TcpListener::bind(notify)
            .await
            .expect("notify port free again"),
    );
    let (_serving, serving_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(controller::server::run(
        api_l,
        notify_l,
        handle.clone(),
        async move {
            let _ = serving_rx.await;
        },
    ));
    until("the CRM removes the instance deleted meanwhile", || {
        !alive(pid)
    })
    .await;
    until("the delete completes", || {
        handle.core.show(None, Some(&key), None).is_empty()
    })
    .await;
    stop_tx.send(true).unwrap();
    crm.await.unwrap();
    cleanup(&state);
}

/// Removes what a failed run could leave: processes and namespaces of the state directory.
fn cleanup(state: &Path) {
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for f in $(find {0} -name pids); do kill -9 $(cat $f) 2>/dev/null; done; \
             for f in $(find {0} -name netns); do ip netns del $(cat $f) 2>/dev/null; done",
            state.display()
        ))
        .output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_and_taken_ports_fail_the_create_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("crm");
    let ctl = start_controller(redb(&dir.path().join("store")).await, None).await;
    let mut client = ctl.client().await;
    let doc = edge_model::document::parse(&document(env!("CARGO_BIN_EXE_edgeplane"))).unwrap();
    edgectl::apply(&mut client, &doc).await.unwrap();
    // Loopback isolation, so the test can hold a port on the cluster's own address.
    let opts = crm::cli::PlatformOptions {
        state_dir: state.clone(),
        isolation: crm::platform::local::net::Isolation::Loopback,
        ..Default::default()
    };
    let config = crm::CrmConfig {
        addrs: vec![ctl.notify.to_string()],
        tls: None,
        name: "crm-bad".into(),
        scope: crm::Scope::Cloudlet(cloudlet()),
        platforms: Box::new(move |c| crm::cli::make_platform(&opts, c)),
        rootlb_address: None,
    };
    let (stop_tx, stop) = watch::channel(false);
    let crm = tokio::spawn(crm::run(config, stop));
    create(&mut client, object(CLUSTER)).await;

    let mut try_create = async |image: &str| {
        let mut app = match &edgectl_doc_app() {
            edge_model::Object::App(a) => a.clone(),
            _ => unreachable!(),
        };
        app.image_path = image.into();
        let fields = vec!["image_path".to_string()];
        edgectl::finish(
            client
                .update(pb::UpdateRequest {
                    object: Some(pb::Object::from(&edge_model::Object::App(app))),
                    fields,
                })
                .await,
        )
        .await
        .expect("update the app's command");
        edgectl::create_object(&mut client, &object(INST)).await
    };

    // A command that does not exist: CREATE_ERROR, the reason in the error, the object undone.
    let e = try_create("/nonexistent/echo-app").await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Aborted, "{e}");
    assert!(e.message().contains("not found"), "{e}");
    assert!(e.message().contains("/nonexistent/echo-app"), "{e}");
    assert_eq!(inst_state(&ctl), None, "a failed create is undone");

    // A port already taken on the cluster's address: a clear error naming it.
    let node = match ctl
        .handle
        .core
        .show(Some(edge_model::ObjectKind::ClusterInst), None, None)
        .first()
    {
        Some(edge_model::Object::ClusterInst(c)) => c.node_address.expect("cluster address"),
        other => panic!("{other:?}"),
    };
    let holder = std::net::TcpListener::bind(SocketAddr::new(node, 7000)).unwrap();
    let e = try_create(&format!("{} echo", env!("CARGO_BIN_EXE_edgeplane")))
        .await
        .unwrap_err();
    assert!(e.message().contains("tcp:7000"), "{e}");
    assert!(e.message().contains("not available"), "{e}");
    assert_eq!(inst_state(&ctl), None);
    // Nothing else affected: freed, the same create works.
    drop(holder);
    try_create(&format!("{} echo", env!("CARGO_BIN_EXE_edgeplane")))
        .await
        .expect("create once the port is free");
    assert_eq!(inst_state(&ctl), Some(TrackedState::Ready));
    stop_tx.send(true).unwrap();
    let _ = crm.await;
    cleanup(&state);
}

fn edgectl_doc_app() -> edge_model::Object {
    let doc = edge_model::document::parse(&document(env!("CARGO_BIN_EXE_edgeplane"))).unwrap();
    edge_model::Object::App(doc.apps[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_for_a_cloudlet_that_does_not_exist_stops_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = start_controller(redb(&dir.path().join("store")).await, None).await;
    let mut client = ctl.client().await;
    let doc = edge_model::document::parse(&document(env!("CARGO_BIN_EXE_edgeplane"))).unwrap();
    edgectl::apply(&mut client, &doc).await.unwrap();
    let config = crm::CrmConfig {
        addrs: vec![ctl.notify.to_string()],
        tls: None,
        name: "crm-typo".into(),
        scope: crm::Scope::Cloudlet(CloudletKey {
            organization: "telekom".into(),
            name: "restart-locl".into(),
        }),
        platforms: Box::new(|c| crm::cli::make_platform(&crm::cli::PlatformOptions::default(), c)),
        rootlb_address: None,
    };
    let (_stop, stop) = watch::channel(false);
    let e = tokio::time::timeout(Duration::from_secs(10), crm::run(config, stop))
        .await
        .expect("stops at once")
        .unwrap_err()
        .to_string();
    assert!(e.contains("telekom/restart-locl does not exist"), "{e}");
    assert!(e.contains("check --cloudlet"), "{e}");
}
