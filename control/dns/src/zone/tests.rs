use std::net::IpAddr;

use edge_api::subscriber::Replica;
use edge_model::{IpAccess, Object, ObjectKey, TrackedState};

use super::*;
use crate::fixture::{self, ROOT, cloudlet_key, ip, shared_lb};

const DEDICATED: &str = "arena-dedicated.paris-orange.eu.edge.example.net";

fn options() -> ZoneOptions {
    ZoneOptions {
        region: fixture::REGION.into(),
        nameserver: Vec::new(),
    }
}

fn addrs(list: &[&str]) -> Answer {
    let mut v: Vec<IpAddr> = list.iter().map(|s| ip(s)).collect();
    v.sort();
    Answer::Addresses(v)
}

/// The standard region changed by `edit`, built.
fn zone_of(edit: impl FnOnce(&mut Replica)) -> Zone {
    let mut r = fixture::region();
    edit(&mut r);
    build(&r, &options()).expect("zone builds")
}

fn inst_of(r: &Replica, name: &str) -> AppInst {
    let key = edge_model::AppInstKey {
        organization: "Nimbus".into(),
        name: name.into(),
    };
    r.app_inst(&key).expect("fixture instance").clone()
}

/// One rule, checked as a table: (what, change to the standard region, name, answer).
type Case = (&'static str, fn(&mut Replica), String, Answer);

#[test]
fn rules() {
    let berlin = shared_lb("telekom", "berlin");
    let paris = shared_lb("orange", "paris");
    let official = "arena.edge.example.net".to_owned();
    let unchanged: fn(&mut Replica) = |_| {};
    let cases: Vec<Case> = vec![
        (
            "shared root LB",
            unchanged,
            berlin.clone(),
            addrs(&["192.0.2.10"]),
        ),
        (
            "IPv6 root LB",
            unchanged,
            paris.clone(),
            addrs(&["2001:db8::20"]),
        ),
        (
            "a root LB serving no instance: no name",
            |r| {
                r.remove(&ObjectKey::AppInst(inst_of(r, "lobby-paris").key));
            },
            paris.clone(),
            Answer::NxDomain,
        ),
        (
            "the last instance on a shared root LB gone: no name",
            |r| {
                r.remove(&ObjectKey::AppInst(inst_of(r, "arena-berlin").key));
            },
            berlin.clone(),
            Answer::NxDomain,
        ),
        (
            "dedicated cluster",
            unchanged,
            DEDICATED.into(),
            addrs(&["198.51.100.7"]),
        ),
        (
            "official FQDN: every serving address",
            unchanged,
            official.clone(),
            addrs(&["192.0.2.10", "198.51.100.7"]),
        ),
        (
            "dedicated without node address: the root LB",
            |r| {
                let c = fixture::cluster(
                    "Nimbus",
                    "dedicated",
                    &cloudlet_key("orange", "paris"),
                    IpAccess::Dedicated,
                    None,
                );
                r.insert(c);
            },
            DEDICATED.into(),
            addrs(&["2001:db8::20"]),
        ),
        (
            "instance not READY: no name",
            |r| {
                let mut i = inst_of(r, "arena-paris");
                i.state = TrackedState::Creating;
                r.insert(Object::AppInst(i));
            },
            DEDICATED.into(),
            Answer::NxDomain,
        ),
        (
            "instance not READY: not behind the official FQDN",
            |r| {
                let mut i = inst_of(r, "arena-paris");
                i.state = TrackedState::DeleteRequested;
                r.insert(Object::AppInst(i));
            },
            official.clone(),
            addrs(&["192.0.2.10"]),
        ),
        (
            "no root LB address: no shared name",
            |r| {
                r.insert(fixture::info("telekom", "berlin", None));
            },
            berlin.clone(),
            Answer::NxDomain,
        ),
        (
            "no instance served: official FQDN absent",
            |r| {
                r.remove(&ObjectKey::AppInst(inst_of(r, "arena-berlin").key));
                r.remove(&ObjectKey::AppInst(inst_of(r, "arena-paris").key));
            },
            official.clone(),
            Answer::NxDomain,
        ),
        (
            "uri in another case and with the dot",
            |r| {
                let mut i = inst_of(r, "arena-paris");
                i.uri = "Other.Paris-Orange.EU.Edge.Example.NET.".into();
                r.insert(Object::AppInst(i));
            },
            "other.paris-orange.eu.edge.example.net".into(),
            addrs(&["198.51.100.7"]),
        ),
        (
            "cluster of another organization is not the instance's",
            |r| {
                r.remove(&ObjectKey::ClusterInst(ClusterKey {
                    organization: "Nimbus".into(),
                    name: "dedicated".into(),
                }));
                r.insert(fixture::cluster(
                    "Other",
                    "dedicated",
                    &cloudlet_key("orange", "paris"),
                    IpAccess::Dedicated,
                    Some("203.0.113.1"),
                ));
            },
            DEDICATED.into(),
            addrs(&["2001:db8::20"]),
        ),
        (
            "empty non-terminal",
            unchanged,
            "paris-orange.eu.edge.example.net".into(),
            Answer::NoData,
        ),
        ("apex", unchanged, ROOT.into(), Answer::NoData),
        (
            "unknown name",
            unchanged,
            "nope.edge.example.net".into(),
            Answer::NxDomain,
        ),
        (
            "below an existing name",
            unchanged,
            format!("x.{berlin}"),
            Answer::NxDomain,
        ),
        (
            "outside the zone",
            unchanged,
            "example.com".into(),
            Answer::Refused,
        ),
        (
            "parent of the zone",
            unchanged,
            "example.net".into(),
            Answer::Refused,
        ),
        (
            "suffix that is not a label boundary",
            unchanged,
            "xedge.example.net".into(),
            Answer::Refused,
        ),
    ];
    for (what, edit, name, want) in cases {
        let zone = zone_of(edit);
        assert_eq!(zone.lookup(&name), want, "{what}: {name}");
    }
}

#[test]
fn names_outside_the_zone_are_left_out() {
    let zone = zone_of(|r| {
        r.insert(fixture::app(
            "Nimbus",
            "arena",
            &["arena.nimbus.com", "a.edge.example.net"],
        ));
        let mut i = inst_of(r, "arena-paris");
        i.uri = "arena.paris.other.org".into();
        r.insert(Object::AppInst(i));
    });
    assert_eq!(zone.lookup("arena.nimbus.com"), Answer::Refused);
    assert_eq!(zone.lookup("a.edge.example.net"), addrs(&["192.0.2.10"]));
    assert!(zone.names().all(|(n, _)| n.ends_with(".edge.example.net")));
    assert!(zone.skipped().is_empty(), "{:?}", zone.skipped());
}

#[test]
fn lookup_ignores_case_and_trailing_dot() {
    let zone = zone_of(|_| {});
    let upper = format!("{}.", shared_lb("telekom", "berlin").to_ascii_uppercase());
    assert_eq!(zone.lookup(&upper), addrs(&["192.0.2.10"]));
    assert_eq!(zone.lookup("EDGE.example.NET."), Answer::NoData);
}

#[test]
fn bad_names_are_skipped_and_reported() {
    let zone = zone_of(|r| {
        let mut i = inst_of(r, "arena-paris");
        i.uri = "bad name.edge.example.net".into();
        r.insert(Object::AppInst(i));
        let long = format!("{}.edge.example.net", "a".repeat(64));
        r.insert(fixture::app(
            "Nimbus",
            "arena",
            &[long.as_str(), "x..edge.example.net"],
        ));
    });
    let skipped = zone.skipped().join("\n");
    assert!(
        skipped.contains("uri of app instance Nimbus/arena-paris"),
        "{skipped}"
    );
    assert!(skipped.contains("character ' '"), "{skipped}");
    assert!(skipped.contains("longer than 63"), "{skipped}");
    assert!(skipped.contains("empty label"), "{skipped}");
    // The rest of the zone is there.
    assert_eq!(
        zone.lookup(&shared_lb("telekom", "berlin")),
        addrs(&["192.0.2.10"])
    );
}

#[test]
fn origin_comes_from_settings() {
    let zone = zone_of(|r| {
        r.insert(fixture::settings("Apps.Example.ORG."));
        // The controller names instances under the root it has.
        let mut i = inst_of(r, "arena-berlin");
        i.uri = naming::shared_root_lb_fqdn(
            &cloudlet_key("telekom", "berlin"),
            fixture::REGION,
            "apps.example.org",
        );
        r.insert(Object::AppInst(i));
    });
    assert_eq!(zone.origin(), "apps.example.org");
    assert_eq!(
        zone.lookup(&shared_lb("telekom", "berlin")),
        Answer::Refused
    );
    let berlin = naming::shared_root_lb_fqdn(
        &cloudlet_key("telekom", "berlin"),
        fixture::REGION,
        "apps.example.org",
    );
    assert_eq!(zone.lookup(&berlin), addrs(&["192.0.2.10"]));

    let defaulted = zone_of(|r| {
        r.remove(&ObjectKey::Settings);
    });
    assert_eq!(defaulted.origin(), Settings::default().app_dns_root);
}

#[test]
fn bad_origin_is_an_error_naming_it() {
    for root in ["", ".", "bad root.net", "a..b"] {
        let mut r = fixture::region();
        r.insert(fixture::settings(root));
        let e = build(&r, &options()).expect_err(root);
        assert!(e.to_string().contains(&format!("{root:?}")), "{e}");
    }
}

#[test]
fn nameserver_addresses() {
    let mut r = fixture::region();
    r.insert(fixture::settings(ROOT));
    let opts = ZoneOptions {
        nameserver: vec![ip("127.0.0.1"), ip("::1")],
        ..options()
    };
    let zone = build(&r, &opts).unwrap();
    assert_eq!(zone.nameserver(), "ns.edge.example.net");
    assert_eq!(
        zone.lookup("ns.edge.example.net"),
        addrs(&["127.0.0.1", "::1"])
    );
    assert_eq!(
        zone_of(|_| {}).lookup("ns.edge.example.net"),
        Answer::NxDomain
    );
}

#[test]
fn same_records_ignores_the_serial() {
    let a = zone_of(|_| {});
    let b = a.clone().with_serial(7);
    assert!(a.same_records(&b) && a != b);
    assert!(!a.same_records(&Zone::empty(ROOT).unwrap()));
}

#[test]
fn serials_advance() {
    assert_eq!(next_serial(0, 1_700_000_000), 1_700_000_000);
    assert_eq!(next_serial(1_700_000_000, 1_700_000_000), 1_700_000_001);
    assert_eq!(next_serial(1_700_000_005, 1_700_000_000), 1_700_000_006);
    assert_eq!(next_serial(u32::MAX, 5), 5, "wraps in serial order");
    assert!(serial_newer(0, u32::MAX));
    assert!(!serial_newer(3, 3));
    assert!(!serial_newer(1, 2));
}
