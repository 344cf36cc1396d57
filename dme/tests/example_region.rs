//! The shipped example document serves what its header promises.

mod common;

use std::path::PathBuf;

use common::*;
use dme::proto::find_cloudlet_reply::FindStatus;
use edge_model::AppKey;

#[tokio::test]
async fn example_region_answers_as_documented() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/region.yaml");
    let doc = edge_model::document::load(&path).expect("example parses");
    let tables = dme::Tables::from_deployment(&doc, 1).expect("example builds");
    let s = start_dme(dme::Dme::new(
        tables,
        keys(),
        dme::DmeConfig::default(),
        None,
    ))
    .await;
    let app = AppKey {
        organization: "NimbusGames".into(),
        name: "arena-shooter".into(),
        version: "2.3".into(),
    };
    let cookie = s.register(&app).await;
    let mut c = s.client().await;
    let find = |carrier: &str, lat: f64, lon: f64| find_request(&cookie, carrier, lat, lon);
    let r = c
        .find_cloudlet(find("26201", 52.3906, 13.0645))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.fqdn,
        "arena-shooter23-nimbusgames.berlin-1-telekom.eu.edge.example.net"
    );
    // Hamburg is under maintenance: a phone there is sent elsewhere.
    let r = c
        .find_cloudlet(find("26201", 53.55, 9.99))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status, FindStatus::FindFound as i32);
    assert!(!r.fqdn.contains("hamburg"), "{}", r.fqdn);
    // Telekom near Düsseldorf reaches Vodafone's allied cloudlet.
    let r = c
        .find_cloudlet(find("26201", 51.2277, 6.7735))
        .await
        .unwrap()
        .into_inner();
    assert!(r.fqdn.contains("dusseldorf-1-vodafone"), "{}", r.fqdn);
}
