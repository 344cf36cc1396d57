use std::str::FromStr;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{Name, RData, RecordType};

use super::*;
use crate::fixture::{self, shared_lb};
use crate::zone::{self, Zone, ZoneOptions};

fn zone() -> Zone {
    let options = ZoneOptions {
        region: fixture::REGION.into(),
        nameserver: vec![fixture::ip("127.0.0.1")],
    };
    zone::build(&fixture::region(), &options)
        .unwrap()
        .with_serial(42)
}

fn ask(name: &str, qtype: RecordType) -> Reply {
    reply(&zone(), &Name::from_str(name).unwrap(), qtype)
}

fn data(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.data.to_string()).collect()
}

fn types(records: &[Record]) -> Vec<RecordType> {
    records.iter().map(Record::record_type).collect()
}

#[test]
fn addresses_by_family() {
    let berlin = format!("{}.", shared_lb("telekom", "berlin"));
    let r = ask(&berlin, RecordType::A);
    assert_eq!((r.code, r.authoritative), (ResponseCode::NoError, true));
    assert_eq!(data(&r.answers), ["192.0.2.10"]);
    assert_eq!(r.answers[0].ttl, RECORD_TTL);
    assert_eq!(r.answers[0].name.to_ascii(), berlin);
    assert!(r.authority.is_empty());

    let official = ask("ARENA.edge.example.net.", RecordType::A);
    assert_eq!(data(&official.answers), ["192.0.2.10", "198.51.100.7"]);

    let paris = ask(
        &format!("{}.", shared_lb("orange", "paris")),
        RecordType::AAAA,
    );
    assert_eq!(data(&paris.answers), ["2001:db8::20"]);
}

#[test]
fn name_without_the_type_is_nodata_with_soa() {
    let r = ask(&format!("{}.", shared_lb("orange", "paris")), RecordType::A);
    assert_eq!((r.code, r.authoritative), (ResponseCode::NoError, true));
    assert!(r.answers.is_empty());
    assert_eq!(types(&r.authority), [RecordType::SOA]);

    let mx = ask("arena.edge.example.net.", RecordType::MX);
    assert!(mx.answers.is_empty() && mx.code == ResponseCode::NoError);
}

#[test]
fn unknown_name_is_nxdomain_with_soa() {
    let r = ask("nope.edge.example.net.", RecordType::A);
    assert_eq!((r.code, r.authoritative), (ResponseCode::NXDomain, true));
    assert_eq!(types(&r.authority), [RecordType::SOA]);
    let RData::SOA(soa) = &r.authority[0].data else {
        panic!("not an SOA: {:?}", r.authority[0]);
    };
    assert_eq!((soa.serial, soa.minimum), (42, SOA_MINIMUM));
    assert_eq!(soa.mname.to_ascii(), "ns.edge.example.net.");
    assert_eq!(r.authority[0].name.to_ascii(), "edge.example.net.");
}

#[test]
fn outside_the_zone_is_refused() {
    let r = ask("www.example.com.", RecordType::A);
    assert_eq!((r.code, r.authoritative), (ResponseCode::Refused, false));
    assert!(r.answers.is_empty() && r.authority.is_empty());
}

#[test]
fn apex_answers_soa_and_ns() {
    let soa = ask("edge.example.net.", RecordType::SOA);
    assert_eq!(types(&soa.answers), [RecordType::SOA]);
    assert!(soa.authority.is_empty());

    let ns = ask("Edge.Example.Net.", RecordType::NS);
    assert_eq!(data(&ns.answers), ["ns.edge.example.net."]);
    assert_eq!(data(&ns.additionals), ["127.0.0.1"], "glue");

    let a = ask("edge.example.net.", RecordType::A);
    assert!(a.answers.is_empty());
    assert_eq!(types(&a.authority), [RecordType::SOA]);

    let ns_below = ask("arena.edge.example.net.", RecordType::NS);
    assert!(ns_below.answers.is_empty(), "NS only at the apex");
}

#[test]
fn any_gives_every_address() {
    let r = ask("arena.edge.example.net.", RecordType::ANY);
    assert_eq!(types(&r.answers), [RecordType::A, RecordType::A]);
    let apex = ask("edge.example.net.", RecordType::ANY);
    assert_eq!(types(&apex.answers), [RecordType::SOA, RecordType::NS]);
}
