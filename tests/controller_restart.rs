//! Kill the controller (a real `edgeplane controller` process) and restart it on the same data
//! directory: the DME keeps answering meanwhile, and converges after it reconnects, including a
//! delete made while it was away (pruned because the new snapshot lacks it).

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use edge_api::pb::controller_client::ControllerClient;
use edge_model::{AppInstKey, ObjectKey};

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dme_survives_a_controller_restart_and_prunes_what_was_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (api, notify) = (free_addr(), free_addr());
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .args(["controller", "--region", "eu", "--data-dir"])
            .arg(dir.path())
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
            .expect("controller process starts")
    };
    let mut child = spawn();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut client = loop {
        if let Ok(c) = ControllerClient::connect(format!("http://{api}")).await {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "the controller API never came up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let dme = start_dme(&[notify]).await;
    edgectl::apply(&mut client, &example())
        .await
        .expect("apply");
    let berlin = Some((52.52, 13.405));
    wait_until("the DME to serve Berlin", || async {
        dme.find(&arena(), "26201", 52.3906, 13.0645).await == berlin
    })
    .await;

    // Kill the controller: the DME keeps answering from its last tables.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(dme.find(&arena(), "26201", 52.3906, 13.0645).await, berlin);

    // Restart on the same data directory; delete Berlin before the DME can reconnect. The
    // fake platform's CRM finishes the delete over a notify listener the DME does not know.
    let store = redb(dir.path()).await;
    let handle = controller::server::start(store, "eu")
        .await
        .expect("restart");
    let (side_api, side_notify) = (
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    );
    let side_addr = side_notify.local_addr().unwrap();
    let (side_stop, side_rx) = tokio::sync::watch::channel(false);
    let side = tokio::spawn(controller::server::run(
        side_api,
        side_notify,
        handle.clone(),
        {
            let mut rx = side_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        },
    ));
    let crm = crm::cli::spawn_fake(
        vec![side_addr.to_string()],
        None,
        "127.0.0.1".parse().unwrap(),
        side_rx,
    );
    let key = ObjectKey::AppInst(AppInstKey {
        organization: "NimbusGames".into(),
        name: "arena-berlin".into(),
    });
    handle
        .core
        .delete(&key)
        .await
        .expect("delete while the DME is away");
    wait_until("the fake CRM to finish the delete", || {
        let gone = handle.core.show(None, Some(&key), None).is_empty();
        async move { gone }
    })
    .await;
    side_stop.send(true).unwrap();
    let _ = side.await;
    let _ = crm.await;
    assert_eq!(
        dme.find(&arena(), "26201", 52.3906, 13.0645).await,
        berlin,
        "still the old tables"
    );
    let revision = handle.core.shared.read().0.revision;
    let api_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_l = tokio::net::TcpListener::bind(notify)
        .await
        .expect("notify port is free again");
    let (_stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(controller::server::run(
        api_l,
        notify_l,
        handle.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    tokio::time::timeout(
        Duration::from_secs(15),
        handle.acks.wait_for(DME_NAME, revision),
    )
    .await
    .expect("the DME reconnects and acknowledges the new snapshot");
    let found = dme.find(&arena(), "26201", 52.3906, 13.0645).await;
    assert!(found.is_some() && found != berlin, "{found:?}");
}
