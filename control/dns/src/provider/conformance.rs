//! The behaviour every [`DnsProvider`] must show (feature `testing`): [`run`] drives a fresh
//! provider through publishes of the standard test region and panics, assert-style, on the
//! first violation. A backend's test is one call of it.

use std::net::IpAddr;
use std::sync::Arc;

use edge_model::{AppInstKey, ObjectKey};

use super::{DnsProvider, ProviderError};
use crate::fixture::{self, shared_lb};
use crate::zone::{self, Answer, Zone, ZoneOptions};

const DEDICATED: &str = "arena-dedicated.paris-orange.eu.edge.example.net";
const OFFICIAL: &str = "arena.edge.example.net";

fn addrs(list: &[&str]) -> Answer {
    let mut v: Vec<IpAddr> = list.iter().map(|s| fixture::ip(s)).collect();
    v.sort();
    Answer::Addresses(v)
}

fn zone_of(objects: &edge_api::subscriber::Replica, serial: u32) -> Arc<Zone> {
    let options = ZoneOptions {
        region: fixture::REGION.into(),
        nameserver: Vec::new(),
    };
    Arc::new(
        zone::build(objects, &options)
            .expect("zone builds")
            .with_serial(serial),
    )
}

async fn expect<P: DnsProvider>(provider: &P, name: &str, want: &Answer) {
    let got = provider.lookup(name).await;
    assert_eq!(got.as_ref(), Ok(want), "lookup of {name}");
}

/// Runs the whole suite on `provider`, which must serve no zone yet.
pub async fn run<P: DnsProvider>(provider: &P) {
    let mut region = fixture::region();
    provider
        .publish(zone_of(&region, 1))
        .await
        .expect("first publish");
    let berlin = shared_lb("telekom", "berlin");
    expect(provider, &berlin, &addrs(&["192.0.2.10"])).await;
    expect(
        provider,
        &berlin.to_ascii_uppercase(),
        &addrs(&["192.0.2.10"]),
    )
    .await;
    expect(
        provider,
        &shared_lb("orange", "paris"),
        &addrs(&["2001:db8::20"]),
    )
    .await;
    expect(provider, DEDICATED, &addrs(&["198.51.100.7"])).await;
    expect(provider, OFFICIAL, &addrs(&["192.0.2.10", "198.51.100.7"])).await;
    expect(provider, fixture::ROOT, &Answer::NoData).await;
    expect(provider, "nope.edge.example.net", &Answer::NxDomain).await;
    expect(provider, "example.com", &Answer::Refused).await;

    // An instance goes away: its name with it, and the official FQDN loses its address.
    region.remove(&ObjectKey::AppInst(AppInstKey {
        organization: "Nimbus".into(),
        name: "arena-paris".into(),
    }));
    let second = zone_of(&region, 2);
    provider
        .publish(second.clone())
        .await
        .expect("second publish");
    expect(provider, DEDICATED, &Answer::NxDomain).await;
    expect(provider, OFFICIAL, &addrs(&["192.0.2.10"])).await;

    // Republishing the live records is a no-op whatever the serial.
    provider
        .publish(Arc::new((*second).clone().with_serial(1)))
        .await
        .expect("republishing the same records");

    // A change under a serial that is not newer is refused; the live zone keeps serving.
    let stale = zone_of(&fixture::region(), 2);
    let err = provider.publish(stale).await.expect_err("stale serial");
    assert!(
        matches!(
            err,
            ProviderError::StaleSerial {
                live: 2,
                published: 2,
                ..
            }
        ),
        "{err}"
    );
    expect(provider, DEDICATED, &Answer::NxDomain).await;

    // Serials compare in RFC 1982 order: 2 + 2^31 - 1 is still newer than 2.
    let wrapped = zone_of(&fixture::region(), 2u32.wrapping_add((1 << 31) - 1));
    provider.publish(wrapped).await.expect("newer serial");
    expect(provider, DEDICATED, &addrs(&["198.51.100.7"])).await;
}
