//! The whole `dns` role (`edge_dns::cli::run`) against a scripted notify stream on 127.0.0.1:
//! it subscribes as `dns`, publishes the zone of the snapshot, acknowledges, and follows
//! changes; asked with the real `dig`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use edge_api::notify::{Notice, Role, SubscriberMessage, Subscription};
use edge_api::pb;
use edge_dns::cli::DnsConfig;
use edge_dns::fixture;
use edge_model::{AppInstKey, ObjectKey};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

use common::{dig, short};

const DEDICATED: &str = "arena-dedicated.paris-orange.eu.edge.example.net";

type Notices = mpsc::Sender<Result<pb::Notice, Status>>;

/// A controller's notify service that hands each connection to the test.
struct Script {
    connections: mpsc::Sender<(Subscription, Notices)>,
    acked: watch::Sender<u64>,
}

#[tonic::async_trait]
impl pb::notify_server::Notify for Script {
    type StreamStream = ReceiverStream<Result<pb::Notice, Status>>;

    async fn stream(
        &self,
        req: Request<Streaming<pb::SubscriberMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let mut inbound = req.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::aborted("no Subscribe"))?;
        let Ok(SubscriberMessage::Subscribe(sub)) = SubscriberMessage::try_from(first) else {
            return Err(Status::invalid_argument(
                "the first message must be Subscribe",
            ));
        };
        let acked = self.acked.clone();
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                if let Ok(SubscriberMessage::Ack { version }) = SubscriberMessage::try_from(m) {
                    acked.send_replace(version);
                }
            }
        });
        let (tx, rx) = mpsc::channel(64);
        let _ = self.connections.send((sub, tx)).await;
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

async fn send(notices: &Notices, notice: Notice) -> Result<()> {
    notices
        .send(Ok(pb::Notice::from(&notice)))
        .await
        .context("the subscriber hung up")
}

/// Waits (at most 5 s) until the subscriber acknowledges `version`.
async fn acked(acks: &mut watch::Receiver<u64>, version: u64) -> Result<()> {
    tokio::time::timeout(Duration::from_secs(5), acks.wait_for(|v| *v >= version))
        .await
        .with_context(|| format!("version {version} not acknowledged within 5 s"))??;
    Ok(())
}

/// Asks until `name` gets `status` (at most 50 tries 100 ms apart); the last answer.
async fn until_status(addr: SocketAddr, name: &str, status: &str) -> Result<String> {
    let mut last = String::new();
    for _ in 0..50 {
        last = dig(addr, &[name, "A"]).await?;
        if last.contains(&format!("status: {status}")) {
            return Ok(last);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{name} never got {status}; last answer:\n{last}")
}

#[tokio::test]
async fn follows_the_controller() -> Result<()> {
    let (conn_tx, mut connections) = mpsc::channel(4);
    let (acked_tx, mut acks) = watch::channel(0);
    let script = Script {
        connections: conn_tx,
        acked: acked_tx,
    };
    let notify = TcpListener::bind("127.0.0.1:0").await?;
    let notify_addr = notify.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::notify_server::NotifyServer::new(script))
            .serve_with_incoming(TcpListenerStream::new(notify)),
    );

    let (udp, tcp) = edge_dns::cli::bind("127.0.0.1:0".parse()?).await?;
    let dns = udp.local_addr()?;
    let (_stop, stopped) = oneshot::channel::<()>();
    let config = DnsConfig::new(vec![notify_addr.to_string()], fixture::REGION);
    tokio::spawn(edge_dns::cli::run(config, udp, tcp, async {
        let _ = stopped.await;
    }));

    let (sub, notices) = tokio::time::timeout(Duration::from_secs(5), connections.recv())
        .await
        .context("no subscription within 5 s")?
        .context("notify service gone")?;
    assert_eq!((sub.name.as_str(), sub.role), ("dns", Role::Dns));
    assert_eq!(sub.want, edge_dns::subscribe::WANT);
    assert!(sub.cloudlet_filter.is_none() && sub.platform_filter.is_none());

    until_status(dns, "anything.edge.example.net", "SERVFAIL").await?;
    let region = fixture::region();
    for key in region.keys() {
        let object = object_of(&region, &key)?;
        send(&notices, Notice::Update { version: 1, object }).await?;
    }
    send(&notices, Notice::SnapshotEnd { version: 1 }).await?;
    acked(&mut acks, 1).await?;
    assert_eq!(short(dns, &[DEDICATED, "A"]).await?, ["198.51.100.7"]);
    assert_eq!(
        short(dns, &["+tcp", DEDICATED, "A"]).await?,
        ["198.51.100.7"]
    );

    let key = ObjectKey::AppInst(AppInstKey {
        organization: "Nimbus".into(),
        name: "arena-paris".into(),
    });
    send(&notices, Notice::Delete { version: 2, key }).await?;
    acked(&mut acks, 2).await?;
    until_status(dns, DEDICATED, "NXDOMAIN").await?;
    assert_eq!(
        short(dns, &["arena.edge.example.net", "A"]).await?,
        ["192.0.2.10"]
    );
    Ok(())
}

/// The object under `key` in `region`, as a notice carries it.
fn object_of(
    region: &edge_api::subscriber::Replica,
    key: &ObjectKey,
) -> Result<edge_model::Object> {
    let mut copy = region.clone();
    copy.remove(key)
        .with_context(|| format!("{key:?} not in the region"))
}
