//! The embedded server on real sockets, asked by the real `dig` (Debian package `dnsutils`):
//! a zone built from objects answers over UDP and TCP, unknown names under the zone are
//! NXDOMAIN, names outside it REFUSED, a republished zone takes effect at once, and shutdown is
//! prompt.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use edge_api::subscriber::Replica;
use edge_dns::fixture::{self, shared_lb};
use edge_dns::{Embedded, ZoneOptions, zone};
use edge_model::{AppInstKey, ObjectKey};
use tokio::sync::oneshot;

use common::{dig, short};

const DEDICATED: &str = "arena-dedicated.paris-orange.eu.edge.example.net";

/// A server on 127.0.0.1 (any port), stopped when dropped.
struct Server {
    addr: SocketAddr,
    provider: Arc<Embedded>,
    _stop: oneshot::Sender<()>,
}

async fn start() -> Result<Server> {
    let (udp, tcp) = edge_dns::cli::bind("127.0.0.1:0".parse()?).await?;
    let addr = udp.local_addr()?;
    assert_eq!(addr, tcp.local_addr()?, "UDP and TCP share the port");
    let provider = Arc::new(Embedded::new());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(edge_dns::server::serve(udp, tcp, provider.clone(), async {
        let _ = stopped.await;
    }));
    Ok(Server {
        addr,
        provider,
        _stop: stop,
    })
}

fn publish(server: &Server, objects: &Replica, serial: u32) -> Result<()> {
    let options = ZoneOptions {
        region: fixture::REGION.into(),
        nameserver: Vec::new(),
    };
    let zone = zone::build(objects, &options)?.with_serial(serial);
    server.provider.replace(Arc::new(zone))?;
    Ok(())
}

#[tokio::test]
async fn answers_from_the_published_zone() -> Result<()> {
    let server = start().await?;
    publish(&server, &fixture::region(), 1)?;
    let berlin = shared_lb("telekom", "berlin");

    assert_eq!(short(server.addr, &[&berlin, "A"]).await?, ["192.0.2.10"]);
    assert_eq!(
        short(server.addr, &["+tcp", &berlin, "A"]).await?,
        ["192.0.2.10"]
    );
    assert_eq!(
        short(server.addr, &[DEDICATED, "A"]).await?,
        ["198.51.100.7"]
    );
    let paris = shared_lb("orange", "paris");
    assert_eq!(
        short(server.addr, &[&paris, "AAAA"]).await?,
        ["2001:db8::20"]
    );
    let official = short(server.addr, &["ARENA.Edge.Example.Net", "A"]).await?;
    assert_eq!(official, ["192.0.2.10", "198.51.100.7"]);

    let full = dig(server.addr, &[&berlin, "A"]).await?;
    assert!(full.contains("status: NOERROR"), "{full}");
    assert!(full.contains("flags: qr aa"), "authoritative: {full}");
    assert!(full.contains(" 30 IN A 192.0.2.10"), "TTL 30: {full}");

    let nodata = dig(server.addr, &[&paris, "A"]).await?;
    assert!(nodata.contains("status: NOERROR"), "{nodata}");
    assert!(
        nodata.contains("ANSWER: 0") && nodata.contains(" IN SOA "),
        "{nodata}"
    );

    let soa = short(server.addr, &["edge.example.net", "SOA"]).await?;
    assert_eq!(soa.len(), 1);
    assert!(
        soa[0].starts_with("ns.edge.example.net. hostmaster.edge.example.net. 1 "),
        "{soa:?}"
    );
    assert_eq!(
        short(server.addr, &["edge.example.net", "NS"]).await?,
        ["ns.edge.example.net."]
    );
    Ok(())
}

#[tokio::test]
async fn unknown_names_and_other_zones() -> Result<()> {
    let server = start().await?;
    publish(&server, &fixture::region(), 1)?;

    for transport in ["+notcp", "+tcp"] {
        let nx = dig(server.addr, &[transport, "nope.edge.example.net", "A"]).await?;
        assert!(nx.contains("status: NXDOMAIN"), "{nx}");
        assert!(nx.contains("flags: qr aa"), "{nx}");
        assert!(
            nx.contains("IN SOA ns.edge.example.net."),
            "SOA in authority: {nx}"
        );

        let refused = dig(server.addr, &[transport, "www.example.com", "A"]).await?;
        assert!(refused.contains("status: REFUSED"), "{refused}");
    }
    Ok(())
}

#[tokio::test]
async fn republished_zone_drops_a_deleted_instance() -> Result<()> {
    let server = start().await?;
    let mut objects = fixture::region();
    publish(&server, &objects, 1)?;
    assert_eq!(
        short(server.addr, &[DEDICATED, "A"]).await?,
        ["198.51.100.7"]
    );

    objects.remove(&ObjectKey::AppInst(AppInstKey {
        organization: "Nimbus".into(),
        name: "arena-paris".into(),
    }));
    publish(&server, &objects, 2)?;
    let gone = dig(server.addr, &[DEDICATED, "A"]).await?;
    assert!(gone.contains("status: NXDOMAIN"), "{gone}");
    let official = short(server.addr, &["arena.edge.example.net", "A"]).await?;
    assert_eq!(official, ["192.0.2.10"]);
    Ok(())
}

#[tokio::test]
async fn servfail_until_a_zone_is_published() -> Result<()> {
    let server = start().await?;
    let out = dig(server.addr, &["anything.edge.example.net", "A"]).await?;
    assert!(out.contains("status: SERVFAIL"), "{out}");
    Ok(())
}

#[tokio::test]
async fn stops_on_shutdown() -> Result<()> {
    let (udp, tcp) = edge_dns::cli::bind("127.0.0.1:0".parse()?).await?;
    let addr = udp.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(edge_dns::server::serve(
        udp,
        tcp,
        Arc::new(Embedded::new()),
        async {
            let _ = stopped.await;
        },
    ));
    // An idle TCP client must not hold the shutdown up.
    let _idle = tokio::net::TcpStream::connect(addr).await?;
    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(2), task).await???;
    Ok(())
}
