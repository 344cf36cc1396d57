//! Tests for [`GeoIp`] on small databases written in memory with `mmdb-writer`, in both record
//! layouts, for IPv4 and IPv6, hits and misses.

use std::net::IpAddr;

use mmdb_writer::ipnet::IpNet;
use mmdb_writer::{IpVersion, Value, Writer};
use serde::Serialize;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// A GeoIP2-City record, as MaxMind writes it (with a few fields we ignore).
fn geoip2_city(lat: f64, lon: f64, country: &str, city: &str) -> Value {
    Value::map([
        (
            "city",
            Value::map([
                ("geoname_id", Value::from(2_988_507_u32)),
                ("names", Value::map([("en", city), ("fr", city)])),
            ]),
        ),
        ("country", Value::map([("iso_code", country)])),
        (
            "location",
            Value::map([
                ("accuracy_radius", Value::from(20_u16)),
                ("latitude", Value::from(lat)),
                ("longitude", Value::from(lon)),
                ("time_zone", Value::from("Europe/Paris")),
            ]),
        ),
    ])
}

/// The flat DB-IP city record.
#[derive(Serialize)]
struct Flat<L> {
    city: &'static str,
    country_code: &'static str,
    latitude: L,
    longitude: L,
    postcode: &'static str,
    state1: &'static str,
    timezone: &'static str,
}

fn flat<L>(latitude: L, longitude: L) -> Flat<L> {
    Flat {
        city: "Mountain View",
        country_code: "US",
        latitude,
        longitude,
        postcode: "94043",
        state1: "California",
        timezone: "America/Los_Angeles",
    }
}

fn hit(lat: f64, lon: f64, country: &str, city: &str) -> Option<GeoIpHit> {
    Some(GeoIpHit {
        location: LatLon::new(lat, lon).unwrap(),
        country_code: Some(country.to_owned()),
        city: Some(city.to_owned()),
    })
}

fn geoip2_db() -> GeoIp {
    let mut w = Writer::new("GeoIP2-City");
    w.insert_value(
        net("203.0.113.0/24"),
        geoip2_city(48.8534, 2.3488, "FR", "Paris"),
    )
    .unwrap();
    w.insert_value(
        net("2001:db8::/32"),
        geoip2_city(35.6895, 139.6917, "JP", "Tokyo"),
    )
    .unwrap();
    // Country-level record: no location, so no hit.
    w.insert_value(
        net("198.18.0.0/15"),
        Value::map([("country", Value::map([("iso_code", "DE")]))]),
    )
    .unwrap();
    w.insert_value(net("192.0.2.0/24"), geoip2_city(95.0, 2.0, "FR", "Nowhere"))
        .unwrap();
    GeoIp::from_bytes(w.to_bytes().unwrap()).unwrap()
}

#[test]
fn geoip2_layout_ipv4_and_ipv6() {
    let db = geoip2_db();
    assert_eq!(db.database_type(), "GeoIP2-City");
    let paris = hit(48.8534, 2.3488, "FR", "Paris");
    assert_eq!(db.lookup(ip("203.0.113.7")).unwrap(), paris);
    assert_eq!(db.lookup(ip("::ffff:203.0.113.7")).unwrap(), paris);
    assert_eq!(
        db.lookup(ip("2001:db8::1")).unwrap(),
        hit(35.6895, 139.6917, "JP", "Tokyo")
    );
    assert_eq!(db.lookup(ip("198.51.100.1")).unwrap(), None);
    assert_eq!(db.lookup(ip("2001:db9::1")).unwrap(), None);
}

#[test]
fn records_without_usable_coordinates_are_misses() {
    let db = geoip2_db();
    assert_eq!(db.lookup(ip("198.18.1.1")).unwrap(), None, "no location");
    assert_eq!(db.lookup(ip("192.0.2.1")).unwrap(), None, "latitude 95");
}

#[test]
fn flat_layout_ipv4_database() {
    let mut w = Writer::builder("city ipv4")
        .ip_version(IpVersion::V4)
        .build();
    w.insert(net("192.0.2.0/24"), &flat(37.422, -122.085))
        .unwrap();
    // DB-IP may store coordinates as 32-bit floats; they must widen, not fail.
    w.insert(net("198.51.100.0/24"), &flat(37.5_f32, -122.25_f32))
        .unwrap();
    w.insert(net("203.0.113.0/24"), &flat(37.0, 200.0)).unwrap();
    w.insert(net("198.18.0.0/15"), &flat(37_i32, -122_i32))
        .unwrap();
    let db = GeoIp::from_bytes(w.to_bytes().unwrap()).unwrap();

    assert_eq!(
        db.lookup(ip("192.0.2.5")).unwrap(),
        hit(37.422, -122.085, "US", "Mountain View")
    );
    assert_eq!(
        db.lookup(ip("::ffff:192.0.2.5")).unwrap(),
        hit(37.422, -122.085, "US", "Mountain View")
    );
    assert_eq!(
        db.lookup(ip("198.51.100.9")).unwrap(),
        hit(37.5, -122.25, "US", "Mountain View")
    );
    assert_eq!(
        db.lookup(ip("198.18.0.1")).unwrap(),
        hit(37.0, -122.0, "US", "Mountain View")
    );
    assert_eq!(db.lookup(ip("203.0.113.1")).unwrap(), None, "longitude 200");
    assert_eq!(db.lookup(ip("10.0.0.1")).unwrap(), None);
    // An IPv4-only database knows nothing about IPv6: a miss, not an error.
    assert_eq!(db.lookup(ip("2001:db8::1")).unwrap(), None);
}

#[test]
fn flat_layout_ipv6_database() {
    let mut w = Writer::new("city ipv6");
    w.insert(net("2001:db8::/32"), &flat(37.422, -122.085))
        .unwrap();
    let db = GeoIp::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(
        db.lookup(ip("2001:db8:1::1")).unwrap(),
        hit(37.422, -122.085, "US", "Mountain View")
    );
    assert_eq!(db.lookup(ip("2001:db9::1")).unwrap(), None);
}

#[test]
fn unknown_database_type_is_probed_per_record() {
    let mut w = Writer::new("Edgeplane-Test-City");
    w.insert(net("192.0.2.0/24"), &flat(37.422, -122.085))
        .unwrap();
    w.insert_value(
        net("203.0.113.0/24"),
        geoip2_city(48.8534, 2.3488, "FR", "Paris"),
    )
    .unwrap();
    // Fits the GeoIP2 layout (unknown fields are ignored) but has no location: a miss.
    w.insert_value(net("198.51.100.0/24"), Value::map([("latitude", "north")]))
        .unwrap();
    // Fits neither layout: `city` is neither a string nor a map of names.
    w.insert_value(net("198.18.0.0/15"), Value::map([("city", 5_u32)]))
        .unwrap();
    let db = GeoIp::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(
        db.lookup(ip("192.0.2.1")).unwrap(),
        hit(37.422, -122.085, "US", "Mountain View")
    );
    assert_eq!(
        db.lookup(ip("203.0.113.1")).unwrap(),
        hit(48.8534, 2.3488, "FR", "Paris")
    );
    assert_eq!(db.lookup(ip("198.51.100.1")).unwrap(), None);
    assert!(matches!(
        db.lookup(ip("198.18.0.1")),
        Err(GeoIpError::Decode { .. })
    ));
}

#[test]
fn wrong_record_shape_is_a_decode_error_naming_the_ip() {
    let mut w = Writer::new("GeoIP2-City");
    w.insert_value(net("192.0.2.0/24"), Value::map([("location", "somewhere")]))
        .unwrap();
    let db = GeoIp::from_bytes(w.to_bytes().unwrap()).unwrap();
    let err = db.lookup(ip("192.0.2.1")).unwrap_err();
    assert!(matches!(err, GeoIpError::Decode { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("192.0.2.1") && message.contains("GeoIP2-City"),
        "{message}"
    );
}

#[test]
fn open_reads_a_file_and_names_it_on_error() {
    let mut w = Writer::new("GeoIP2-City");
    w.insert_value(
        net("203.0.113.0/24"),
        geoip2_city(48.8534, 2.3488, "FR", "Paris"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city.mmdb");
    std::fs::write(&path, w.to_bytes().unwrap()).unwrap();
    let db = GeoIp::open(&path).unwrap();
    assert_eq!(
        db.lookup(ip("203.0.113.1")).unwrap(),
        hit(48.8534, 2.3488, "FR", "Paris")
    );

    let missing = dir.path().join("missing.mmdb");
    let message = GeoIp::open(&missing).unwrap_err().to_string();
    assert!(message.contains("missing.mmdb"), "{message}");

    let garbage = dir.path().join("garbage.mmdb");
    std::fs::write(&garbage, b"not a database").unwrap();
    let err = GeoIp::open(&garbage).unwrap_err();
    assert!(err.to_string().contains("garbage.mmdb"), "{err}");
}

#[test]
fn from_bytes_rejects_garbage() {
    let err = GeoIp::from_bytes(b"\xab\xcd\xefMaxMind.com but not really".to_vec()).unwrap_err();
    assert!(matches!(err, GeoIpError::InvalidDatabase(_)), "{err:?}");
    assert!(matches!(
        GeoIp::from_bytes(Vec::new()),
        Err(GeoIpError::InvalidDatabase(_))
    ));
}

#[test]
fn layout_follows_database_type() {
    assert_eq!(Layout::from_database_type("GeoIP2-City"), Layout::GeoIp2);
    assert_eq!(Layout::from_database_type("GeoLite2-City"), Layout::GeoIp2);
    assert_eq!(Layout::from_database_type("city ipv4"), Layout::Flat);
    assert_eq!(Layout::from_database_type("City IPv6"), Layout::Flat);
    assert_eq!(Layout::from_database_type("DBIP-City-Lite"), Layout::Probe);
    assert_eq!(Layout::from_database_type(""), Layout::Probe);
}
