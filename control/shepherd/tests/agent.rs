//! `shepherd::run` end to end without InfluxDB: a fake controller (a notify server on
//! 127.0.0.1 that sends a snapshot of fixture objects), a fake root LB metrics endpoint and a
//! state dir holding this process's pid; the points must show up on Shepherd's Prometheus
//! endpoint, and shutdown must end the run.

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_api::notify::{Notice, Role, SubscriberMessage, Subscription};
use edge_api::pb;
use edge_model::ObjectKind;
use shepherd::collect::process::StateDirSource;
use shepherd::http::HttpClient;
use shepherd::{ShepherdConfig, Sources};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

use common::fixtures;

/// Sends every subscriber a snapshot of the fixture objects at version 1, and reports the
/// subscription it got.
struct FakeController {
    subscriptions: mpsc::Sender<Subscription>,
}

type NoticeStream = Pin<Box<dyn Stream<Item = Result<pb::Notice, Status>> + Send>>;

#[tonic::async_trait]
impl pb::notify_server::Notify for FakeController {
    type StreamStream = NoticeStream;

    async fn stream(
        &self,
        req: Request<Streaming<pb::SubscriberMessage>>,
    ) -> Result<Response<NoticeStream>, Status> {
        let mut inbound = req.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::aborted("no subscribe"))?;
        let Ok(SubscriberMessage::Subscribe(sub)) = SubscriberMessage::try_from(first) else {
            return Err(Status::invalid_argument("expected Subscribe"));
        };
        let _ = self.subscriptions.try_send(sub);
        let (tx, rx) = mpsc::channel(64);
        for object in fixtures::objects() {
            let n = Notice::Update { version: 1, object };
            let _ = tx.send(Ok(pb::Notice::from(&n))).await;
        }
        let _ = tx
            .send(Ok(pb::Notice::from(&Notice::SnapshotEnd { version: 1 })))
            .await;
        // Keep the stream open (and read acknowledgements) until the subscriber leaves.
        tokio::spawn(async move {
            let _tx = tx;
            while let Ok(Some(_)) = inbound.message().await {}
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

async fn fake_controller() -> (String, mpsc::Receiver<Subscription>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel(8);
    let svc = pb::notify_server::NotifyServer::new(FakeController { subscriptions: tx });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_collects_what_the_controller_describes_onto_the_prometheus_endpoint() {
    let (controller, mut subscriptions) = fake_controller().await;
    let state = tempfile::tempdir().unwrap();
    fixtures::state_dir(state.path());
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", metrics.local_addr().unwrap());
    let config = ShepherdConfig {
        sources: Sources {
            rootlb_metrics: Some(common::serve_text(fixtures::ROOTLB_PAGE.into()).await),
            dme_metrics: vec![common::refused_url().await + "/metrics"],
            processes: Some(Arc::new(StateDirSource::new(state.path()))),
        },
        metrics_listener: Some(metrics),
        interval: Duration::from_millis(200),
        ..ShepherdConfig::new(vec![controller], fixtures::cloudlet())
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(shepherd::run(config, async {
        let _ = stopped.await;
    }));

    let sub = tokio::time::timeout(Duration::from_secs(10), subscriptions.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sub.role, Role::Shepherd);
    assert_eq!(sub.cloudlet_filter, Some(fixtures::cloudlet()));
    for kind in [
        ObjectKind::CloudletInfo,
        ObjectKind::AppInst,
        ObjectKind::App,
    ] {
        assert!(sub.want.contains(&kind), "{kind:?} in {:?}", sub.want);
    }

    // Every expected series, with the instance's tags, within 10 s (a round every 200 ms).
    let wanted = [
        "appinst_connections_active{app=\"arena\",appinst=\"arena-1\",apporg=\"NimbusGames\",\
         cloudlet=\"berlin-1\",cloudletorg=\"TelcoOp\",cluster=\"c1\",clusterorg=\"NimbusGames\",\
         port=\"443\",ver=\"2.3\"} 3\n",
        "appinst_udp_overflow{",
        "appinst_mem_mem{",
        "appinst_cpu_cpu{",
        "cloudlet_utilization_vCpuMax{cloudlet=\"berlin-1\",cloudletorg=\"TelcoOp\"} 16\n",
        // Shepherd's own counters: the refused DME scrape is counted.
        "shepherd_scrapeErrors{cloudlet=\"berlin-1\",cloudletorg=\"TelcoOp\"} ",
        "shepherd_prometheusWritten{",
    ];
    let http = HttpClient::new(Duration::from_secs(5), 16 << 20);
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = match http.get(&metrics_url).await {
            Ok(r) => String::from_utf8_lossy(&r.body).into_owned(),
            Err(_) => String::new(),
        };
        if wanted.iter().all(|w| page.contains(w)) || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for w in wanted {
        assert!(page.contains(w), "{w:?} missing from:\n{page}");
    }
    let scrape_errors = shepherd::promtext::parse(&page)
        .samples
        .into_iter()
        .find(|s| s.name == "shepherd_scrapeErrors")
        .map(|s| s.value);
    assert!(scrape_errors >= Some(1.0), "{scrape_errors:?}");

    // The DME endpoint refuses: collection went on without it. Shutdown ends the run.
    drop(stop);
    let r = tokio::time::timeout(Duration::from_secs(10), run).await;
    assert!(matches!(r, Ok(Ok(Ok(())))), "{r:?}");
    // The endpoint closes with it (its task sees the stop on its next turn).
    let deadline = Instant::now() + Duration::from_secs(5);
    while http.get(&metrics_url).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the endpoint still answers after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_zero_interval_is_refused() {
    let config = ShepherdConfig {
        interval: Duration::ZERO,
        ..ShepherdConfig::new(vec!["127.0.0.1:1".into()], fixtures::cloudlet())
    };
    let r = shepherd::run(config, std::future::ready(())).await;
    assert!(matches!(r, Err(shepherd::ShepherdError::Interval)), "{r:?}");
}
