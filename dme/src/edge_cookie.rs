//! Edge-events cookies, one per FindCloudlet answer, signed with the per-instance half of the
//! work done once.
//!
//! The cookie is a JWT whose claims are laid out instance-first: `{"key":{"appinstname":…,
//! …,"location":` is the same for every client sent to one instance, and only the location,
//! `iat` and `exp` follow. That start is padded with JSON whitespace to a multiple of three
//! bytes, so its base64 does not depend on what follows, and the HMAC state after absorbing
//! header and start is kept. A cookie then costs base64 and hashing of some 80 bytes instead of
//! serialising, encoding and hashing about 400. Decoders see ordinary JSON (member order and
//! whitespace are insignificant), so verification is unchanged.
//!
//! The start lives in the instance's own [`PrefixCell`], built on its first cookie. An instance's
//! names never change (a renamed or rebuilt instance is a new one with an empty cell), so the
//! cell needs no content check; it records the key ring it was built with and is bypassed under
//! any other ring. (A separate cache keyed by instance, as before, cost the loaded server about
//! 0.7 µs a cookie in slot lookups and cache misses on the content check.)

use std::io::Write as _;
use std::sync::OnceLock;

use geodata::LatLon;
use serde::Serialize;

use crate::cookie::{KeyRing, TokenPrefix};

/// The instance an edge-events cookie names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstNames<'a> {
    pub name: &'a str,
    pub organization: &'a str,
    pub cluster: &'a str,
    pub cloudlet_org: &'a str,
    pub cloudlet: &'a str,
}

/// Upstream's claim names, instance fields first (`location` comes last, outside the prefix).
#[derive(Serialize)]
struct Start<'a> {
    appinstname: &'a str,
    appinstorg: &'a str,
    clusterorg: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    clustername: &'a str,
    cloudletorg: &'a str,
    cloudletname: &'a str,
}

/// An instance's edge-cookie start, built on its first cookie and kept for the instance's life.
#[derive(Default)]
pub struct PrefixCell(OnceLock<Box<Cached>>);

struct Cached {
    /// [`KeyRing::id`] of the ring the prefix was built with.
    ring: u64,
    prefix: TokenPrefix,
}

impl std::fmt::Debug for PrefixCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "PrefixCell(built)"
        } else {
            "PrefixCell(empty)"
        })
    }
}

/// The cookie for a client at `at` sent to the instance whose cell is `cell` and whose names
/// `names` gives (only called when the cell must be built or cannot be used: looking the names
/// up costs cold reads a cached cookie does not need), issued at `now`, valid until `exp`.
pub fn sign<'n>(
    keys: &KeyRing,
    cell: &PrefixCell,
    names: impl Fn() -> InstNames<'n>,
    at: LatLon,
    now: i64,
    exp: i64,
) -> String {
    let mut buf = [0u8; REST_MAX];
    let rest = rest_of_claims(&mut buf, at, now, exp);
    let cached = cell.0.get_or_init(|| {
        Box::new(Cached {
            ring: keys.id(),
            prefix: prefix(keys, &names()),
        })
    });
    if cached.ring == keys.id() {
        keys.finish_token(&cached.prefix, rest)
    } else {
        keys.finish_token(&prefix(keys, &names()), rest)
    }
}

/// Longest [`rest_of_claims`]: two floats of at most 24 characters, two i64 of at most 20.
const REST_MAX: usize = 192;

/// `{"latitude":…,"longitude":…}},"iat":…,"exp":…}`: what follows the prefix. Numbers are
/// written by serde_json (shortest round-trip floats), several times faster than `fmt`, into
/// `buf` (no allocation).
fn rest_of_claims(buf: &mut [u8; REST_MAX], at: LatLon, now: i64, exp: i64) -> &[u8] {
    let mut rest: &mut [u8] = &mut buf[..];
    // The buffer fits the longest numbers; coordinates are finite by construction.
    let _ = rest.write_all(b"{\"latitude\":");
    let _ = serde_json::to_writer(&mut rest, &at.lat());
    let _ = rest.write_all(b",\"longitude\":");
    let _ = serde_json::to_writer(&mut rest, &at.lon());
    let _ = rest.write_all(b"}},\"iat\":");
    let _ = serde_json::to_writer(&mut rest, &now);
    let _ = rest.write_all(b",\"exp\":");
    let _ = serde_json::to_writer(&mut rest, &exp);
    let _ = rest.write_all(b"}");
    let left = rest.len();
    &buf[..REST_MAX - left]
}

/// Header and instance start of the claims, padded to whole base64 groups, with the MAC state.
fn prefix(keys: &KeyRing, inst: &InstNames<'_>) -> TokenPrefix {
    let start = Start {
        appinstname: inst.name,
        appinstorg: inst.organization,
        clusterorg: inst.organization,
        clustername: inst.cluster,
        cloudletorg: inst.cloudlet_org,
        cloudletname: inst.cloudlet,
    };
    let mut json = b"{\"key\":".to_vec();
    // Serialising a struct of strings cannot fail.
    let _ = serde_json::to_writer(&mut json, &start);
    json.pop(); // the closing brace: `location` follows
    json.extend_from_slice(b",\"location\":");
    while !json.len().is_multiple_of(3) {
        json.push(b' ');
    }
    keys.edge_events_prefix(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<'a>(name: &'a str, cluster: &'a str) -> InstNames<'a> {
        InstNames {
            name,
            organization: "devorg",
            cluster,
            cloudlet_org: "telekom",
            cloudlet: "berlin",
        }
    }

    fn ring() -> KeyRing {
        KeyRing::new(vec![("k".into(), vec![5; 64])]).unwrap()
    }

    #[test]
    fn first_and_cached_cookies_verify_to_the_same_claims() {
        let keys = ring();
        let at = LatLon::new(52.52, -13.000_000_1).unwrap();
        for (name, cluster) in [("a", "c1"), ("b\"quote", ""), ("é", "c2")] {
            let cell = PrefixCell::default();
            let n = names(name, cluster);
            for round in 0..2 {
                let token = sign(&keys, &cell, || n, at, 100 + round, 700);
                let key = keys.verify_edge_events(&token, 699).unwrap();
                assert_eq!(key.appinstname, name);
                assert_eq!(key.appinstorg, "devorg");
                assert_eq!(key.clusterorg, "devorg");
                assert_eq!(key.clustername, cluster);
                assert_eq!(key.cloudletorg, "telekom");
                assert_eq!(key.cloudletname, "berlin");
                assert_eq!(key.location.latitude, at.lat());
                assert_eq!(key.location.longitude, at.lon());
                assert_eq!(
                    keys.verify_edge_events(&token, 700).unwrap_err(),
                    crate::cookie::CookieError::Expired
                );
            }
        }
    }

    #[test]
    fn a_cell_built_under_one_ring_is_not_used_with_another() {
        let (a, b) = (
            ring(),
            KeyRing::new(vec![("k".into(), vec![6; 64])]).unwrap(),
        );
        let cell = PrefixCell::default();
        let at = LatLon::new(1.0, 2.0).unwrap();
        let n = names("x", "c");
        let by_a = sign(&a, &cell, || n, at, 1, 2);
        let by_b = sign(&b, &cell, || n, at, 1, 2);
        assert!(a.verify_edge_events(&by_a, 1).is_ok());
        assert!(
            b.verify_edge_events(&by_b, 1).is_ok(),
            "signed with b's key"
        );
        assert!(a.verify_edge_events(&by_b, 1).is_err());
    }

    #[test]
    fn extreme_numbers_fit_the_rest_buffer() {
        let keys = ring();
        let at = LatLon::new(-89.123_456_789_012_34, -179.987_654_321_098_76).unwrap();
        let token = sign(
            &keys,
            &PrefixCell::default(),
            || names("x", ""),
            at,
            i64::MIN,
            i64::MAX,
        );
        let key = keys.verify_edge_events(&token, 0).unwrap();
        assert_eq!(key.location.latitude, at.lat());
        assert_eq!(key.location.longitude, at.lon());
    }
}
