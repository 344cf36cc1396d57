//! The root LB fed by the controller's notify stream, over real sockets: a controller (embedded
//! store), a DME and a root LB subscribed to it for one cloudlet, and a TCP echo backend. Backend
//! health flows up as the instance's health, and the DME stops (and resumes) returning it.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use common::*;
use edge_api::notify::{Role, SubscriberMessage, Subscription};
use edge_api::pb;
use edge_model::{AppInst, AppInstKey, AppKey, CloudletKey, HealthCheck, Object, ObjectKey};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const BERLIN: (f64, f64) = (52.52, 13.405);

/// Polls `f` every 100 ms until it yields `Some`, at most `secs` seconds.
async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    for _ in 0..(secs * 10 + 1) {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {secs} s waiting for: {what}");
}

/// An echo server on `addr` (port 0: OS-chosen); abort the handle to stop accepting.
async fn echo_backend(addr: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let l = TcpListener::bind(addr).await.expect("backend binds");
    let local = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (local, task)
}

/// Sends a line through `addr` and returns what came back, if the connection worked.
async fn echo_via(addr: SocketAddr) -> Option<String> {
    let io = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"ping\n").await?;
        s.shutdown().await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    match tokio::time::timeout(Duration::from_secs(2), io).await {
        Ok(Ok(out)) if !out.is_empty() => Some(out),
        _ => None,
    }
}

fn document(berlin_port: u16, munich_port: u16) -> edge_model::Deployment {
    let text = format!(
        r#"
version: 1
region: eu
operator_codes:
  - {{code: "26201", organization: telekom}}
cloudlets:
  - key: {{organization: telekom, name: berlin-1}}
    location: {{latitude: {}, longitude: {}}}
    platform_type: fake
  - key: {{organization: telekom, name: munich-1}}
    location: {{latitude: 48.1374, longitude: 11.5755}}
    platform_type: fake
apps:
  - key: {{organization: acme, name: echo, version: "1.0"}}
    deployment: docker
    image_path: registry.example.net/acme/echo:1.0
    access_ports: "tcp:{berlin_port}"
  - key: {{organization: acme, name: echo-m, version: "1.0"}}
    deployment: docker
    image_path: registry.example.net/acme/echo:1.0
    access_ports: "tcp:{munich_port}"
cluster_insts:
  - key: {{organization: acme, name: c-berlin}}
    cloudlet: {{organization: telekom, name: berlin-1}}
  - key: {{organization: acme, name: c-munich}}
    cloudlet: {{organization: telekom, name: munich-1}}
app_insts:
  - key: {{organization: acme, name: echo-berlin}}
    app: {{organization: acme, name: echo, version: "1.0"}}
    cloudlet: {{organization: telekom, name: berlin-1}}
    cluster: c-berlin
  - key: {{organization: acme, name: echo-munich}}
    app: {{organization: acme, name: echo-m, version: "1.0"}}
    cloudlet: {{organization: telekom, name: munich-1}}
    cluster: c-munich
"#,
        BERLIN.0, BERLIN.1
    );
    edge_model::document::parse(&text).expect("test document parses")
}

fn echo_app() -> AppKey {
    AppKey {
        organization: "acme".into(),
        name: "echo".into(),
        version: "1.0".into(),
    }
}

fn inst_key(name: &str) -> AppInstKey {
    AppInstKey {
        organization: "acme".into(),
        name: name.into(),
    }
}

fn app_inst(ctl: &Controller, key: &AppInstKey) -> Option<AppInst> {
    match ctl
        .handle
        .core
        .show(None, Some(&ObjectKey::AppInst(key.clone())), None)
        .pop()
    {
        Some(Object::AppInst(i)) => Some(i),
        _ => None,
    }
}

async fn wait_health(ctl: &Controller, key: &AppInstKey, want: HealthCheck, secs: u64) {
    eventually(&format!("{} health {want:?}", key.name), secs, || async {
        (app_inst(ctl, key)?.health == want).then_some(())
    })
    .await;
}

#[derive(Parser)]
struct RootLbCli {
    #[command(flatten)]
    args: dataplane::RootLbArgs,
}

/// A controller (embedded store, its handle `configure`d), a DME subscribed to it, an echo
/// backend on 127.0.0.1, and the echo document applied, berlin-1 healthy.
struct EchoRegion {
    dir: tempfile::TempDir,
    ctl: Controller,
    dme: Dme,
    backend: SocketAddr,
    backend_task: JoinHandle<()>,
    client: pb::controller_client::ControllerClient<tonic::transport::Channel>,
}

async fn echo_region(configure: impl FnOnce(&mut controller::server::Handle)) -> EchoRegion {
    let dir = tempfile::tempdir().unwrap();
    let ctl = start_controller_mtls_with(redb(dir.path()).await, None, configure).await;
    let dme = ctl.dme().await;
    let (backend, backend_task) = echo_backend("127.0.0.1:0".parse().unwrap()).await;
    // The munich instance only needs a port of its own.
    let munich_port = backend.port().wrapping_add(1).max(1024);
    let mut client = ctl.client().await;
    let report = edgectl::apply(&mut client, &document(backend.port(), munich_port))
        .await
        .expect("apply");
    ctl.wait_dme(report.revision).await;
    wait_health(&ctl, &inst_key("echo-berlin"), HealthCheck::Ok, 10).await;
    EchoRegion {
        dir,
        ctl,
        dme,
        backend,
        backend_task,
        client,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rootlb_serves_controller_routes_and_reports_health() {
    let EchoRegion {
        dir: _dir,
        ctl,
        dme,
        backend,
        backend_task,
        mut client,
    } = echo_region(|_| {}).await;
    let berlin = inst_key("echo-berlin");

    // The root LB for berlin-1, its public listeners on 127.0.0.2 so that the public port can
    // equal the backend's port on 127.0.0.1.
    let args = berlin_lb(&ctl);
    let app = echo_app();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let lb = tokio::spawn(dataplane::run_rootlb_until(args, async move {
        let _ = stop_rx.await;
    }));
    let inst = app_inst(&ctl, &berlin).expect("instance exists");
    assert_eq!(inst.mapped_ports.len(), 1, "{inst:?}");
    let public: u16 = inst.mapped_ports[0].public_port.try_into().unwrap();
    assert_eq!(
        public,
        backend.port(),
        "public port keeps the internal number"
    );
    let front = SocketAddr::from(([127, 0, 0, 2], public));

    // Traffic reaches the backend through the root LB; the DME finds the instance.
    let echoed = eventually("echo through the root LB", 10, || echo_via(front)).await;
    assert_eq!(echoed, "ping\n");
    eventually("FindCloudlet finds berlin-1", 10, || {
        dme.find(&app, "26201", BERLIN.0, BERLIN.1)
    })
    .await;
    // The root LB acknowledged what it serves.
    assert!(ctl.handle.acks.get("rootlb-telekom-berlin-1").is_some());

    // Backend down: the instance is marked ServerFail and matching stops returning it.
    backend_task.abort();
    let _ = backend_task.await;
    wait_health(&ctl, &berlin, HealthCheck::ServerFail, 10).await;
    eventually("FindCloudlet stops finding berlin-1", 10, || async {
        dme.find(&app, "26201", BERLIN.0, BERLIN.1)
            .await
            .is_none()
            .then_some(())
    })
    .await;

    // Backend back on the same port: healthy again and found again.
    let (again, backend_task) = echo_backend(backend).await;
    assert_eq!(again, backend);
    wait_health(&ctl, &berlin, HealthCheck::Ok, 10).await;
    eventually("FindCloudlet finds berlin-1 again", 10, || {
        dme.find(&app, "26201", BERLIN.0, BERLIN.1)
    })
    .await;
    assert_eq!(
        eventually("echo after recovery", 10, || echo_via(front)).await,
        "ping\n"
    );

    // Instance deleted: the listener closes.
    let key = ObjectKey::AppInst(berlin.clone());
    edgectl::delete_object(&mut client, &key)
        .await
        .expect("delete");
    eventually("the listener closes", 10, || async {
        let refused = matches!(
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(front)).await,
            Ok(Err(_))
        );
        refused.then_some(())
    })
    .await;

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(40), lb)
        .await
        .expect("the root LB stops")
        .unwrap()
        .expect("the root LB ran cleanly");
    backend_task.abort();
}

/// Root LB arguments for berlin-1, public listeners on 127.0.0.2, fast health checks (down or
/// up after two checks).
fn berlin_lb(ctl: &Controller) -> dataplane::RootLbArgs {
    let mut args = RootLbCli::parse_from([
        "rootlb",
        "--controller",
        &ctl.notify.to_string(),
        "--cloudlet",
        "telekom/berlin-1",
        "--listen-ip",
        "127.0.0.2",
        "--health-interval-ms",
        "200",
        "--health-timeout-ms",
        "150",
        "--health-rise",
        "2",
        "--health-fall",
        "2",
    ])
    .args;
    // The root LB's certificate when the controller requires mutual TLS.
    if let Some(pki) = ctl.pki {
        args.mtls = pki.args(edge_tls::Role::Rootlb);
    }
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudlet_without_its_root_lb_is_offline_until_it_returns() {
    let EchoRegion {
        dir: _dir,
        ctl,
        dme,
        backend,
        backend_task,
        ..
    } = echo_region(|_| {}).await;
    let (berlin, munich) = (inst_key("echo-berlin"), inst_key("echo-munich"));
    let app = echo_app();
    let front = SocketAddr::from(([127, 0, 0, 2], backend.port()));

    for round in 0..2 {
        // The LB connects (round 1: comes back): traffic flows and the instance is healthy.
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let lb = tokio::spawn(dataplane::run_rootlb_until(berlin_lb(&ctl), async move {
            let _ = stop_rx.await;
        }));
        eventually(&format!("echo through the LB, round {round}"), 10, || {
            echo_via(front)
        })
        .await;
        wait_health(&ctl, &berlin, HealthCheck::Ok, 10).await;
        eventually("FindCloudlet finds berlin-1", 10, || {
            dme.find(&app, "26201", BERLIN.0, BERLIN.1)
        })
        .await;

        // The LB goes away: after the grace period its instances are offline and unmatched;
        // the other cloudlet's instance is untouched.
        let _ = stop_tx.send(());
        tokio::time::timeout(Duration::from_secs(40), lb)
            .await
            .expect("the root LB stops")
            .unwrap()
            .expect("the root LB ran cleanly");
        wait_health(&ctl, &berlin, HealthCheck::RootlbOffline, 10).await;
        eventually("FindCloudlet stops finding berlin-1", 10, || async {
            dme.find(&app, "26201", BERLIN.0, BERLIN.1)
                .await
                .is_none()
                .then_some(())
        })
        .await;
        assert_eq!(app_inst(&ctl, &munich).unwrap().health, HealthCheck::Ok);
    }
    backend_task.abort();
}

/// A TCP relay that can be cut the way a network partition cuts: while cut, nothing is
/// forwarded and nothing is closed or reset. Healing drops the connections it carried (their
/// far ends gave up on them long ago) and lets new ones through.
struct Partition {
    addr: SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Partition {
    async fn to(target: SocketAddr) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (cut, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = l.accept().await {
                tokio::spawn(Self::relay(client, target, rx.clone()));
            }
        });
        Self { addr, cut, task }
    }

    async fn relay(
        mut a: TcpStream,
        target: SocketAddr,
        mut cut: tokio::sync::watch::Receiver<bool>,
    ) {
        if *cut.borrow() {
            let _ = cut.wait_for(|c| !c).await;
            return;
        }
        let Ok(mut b) = TcpStream::connect(target).await else {
            return;
        };
        let was_cut = tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut a, &mut b) => false,
            r = cut.wait_for(|c| *c) => r.is_ok(),
        };
        if was_cut {
            // Both sockets stay open, unread and unwritten, until the partition heals.
            let _ = cut.wait_for(|c| !c).await;
        }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_lb_behind_a_silent_partition_goes_offline_and_returns_when_it_heals() {
    let EchoRegion {
        dir: _dir,
        ctl,
        dme,
        backend,
        backend_task,
        ..
    } = echo_region(|h| h.notify_keepalive = Duration::from_secs(1)).await;
    let berlin = inst_key("echo-berlin");
    let app = echo_app();
    let front = SocketAddr::from(([127, 0, 0, 2], backend.port()));

    // The LB reaches the controller only through the partition.
    let partition = Partition::to(ctl.notify).await;
    let mut args = berlin_lb(&ctl);
    args.controller = vec![partition.addr.to_string()];
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let lb = tokio::spawn(dataplane::run_rootlb_until(args, async move {
        let _ = stop_rx.await;
    }));
    eventually("echo through the LB", 10, || echo_via(front)).await;
    wait_health(&ctl, &berlin, HealthCheck::Ok, 10).await;

    for round in 0..2 {
        // Cut: no reset reaches either side, so only the controller's keep-alive can tell.
        partition.set_cut(true);
        wait_health(&ctl, &berlin, HealthCheck::RootlbOffline, 15).await;
        eventually(
            &format!("FindCloudlet stops finding berlin-1, round {round}"),
            10,
            || async {
                dme.find(&app, "26201", BERLIN.0, BERLIN.1)
                    .await
                    .is_none()
                    .then_some(())
            },
        )
        .await;
        // The LB itself keeps carrying traffic on its last table meanwhile.
        assert_eq!(echo_via(front).await.as_deref(), Some("ping\n"));

        // Healed: the LB's dead session ends, it reconnects, and the instance is back.
        partition.set_cut(false);
        wait_health(&ctl, &berlin, HealthCheck::Ok, 15).await;
        eventually(
            &format!("FindCloudlet finds berlin-1 again, round {round}"),
            10,
            || dme.find(&app, "26201", BERLIN.0, BERLIN.1),
        )
        .await;
    }
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(40), lb).await;
    partition.task.abort();
    backend_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_for_another_cloudlet_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = start_controller_mtls(redb(dir.path()).await, None).await;
    let mut client = ctl.client().await;
    edgectl::apply(&mut client, &document(18080, 18081))
        .await
        .expect("apply");
    let (berlin, munich) = (inst_key("echo-berlin"), inst_key("echo-munich"));
    wait_health(&ctl, &berlin, HealthCheck::Ok, 10).await;
    wait_health(&ctl, &munich, HealthCheck::Ok, 10).await;

    // A subscriber filtered to berlin-1 reports both instances down.
    // (A root LB's certificate: the controller requires mutual TLS.)
    let tls = ctl.pki.map(|p| p.client(edge_tls::Role::Rootlb));
    let endpoint =
        edge_tls::grpc::endpoint(&ctl.notify.to_string(), Duration::from_secs(5)).unwrap();
    let channel = edge_tls::grpc::channel(endpoint, tls.as_ref())
        .await
        .unwrap();
    let mut notify = pb::notify_client::NotifyClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::SubscriberMessage>(8);
    let subscribe = SubscriberMessage::Subscribe(Subscription {
        name: "rogue-rootlb".into(),
        role: Role::RootLb,
        want: vec![edge_model::ObjectKind::AppInst],
        cloudlet_filter: Some(CloudletKey {
            organization: "telekom".into(),
            name: "berlin-1".into(),
        }),
        platform_filter: None,
    });
    tx.send(pb::SubscriberMessage::from(&subscribe))
        .await
        .unwrap();
    let _inbound = notify
        .stream(tokio_stream_wrapper(rx))
        .await
        .unwrap()
        .into_inner();
    for key in [&munich, &berlin] {
        let inst = app_inst(&ctl, key).unwrap();
        let report = SubscriberMessage::Report(Object::AppInst(AppInst {
            health: HealthCheck::ServerFail,
            ..inst
        }));
        tx.send(pb::SubscriberMessage::from(&report)).await.unwrap();
    }
    // Reports are applied in order: once berlin's is in, munich's was refused.
    wait_health(&ctl, &berlin, HealthCheck::ServerFail, 10).await;
    assert_eq!(app_inst(&ctl, &munich).unwrap().health, HealthCheck::Ok);
}

/// The request stream of a notify call, from a channel.
fn tokio_stream_wrapper(
    rx: tokio::sync::mpsc::Receiver<pb::SubscriberMessage>,
) -> impl futures::Stream<Item = pb::SubscriberMessage> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
}
