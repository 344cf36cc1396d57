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
//! The prefixes live in a bounded direct-mapped cache (newest wins). An entry is used only if
//! the instance's strings equal the ones it was built from, so a table swap that reuses an
//! address, or two instances in one slot, can never put another instance's names in a cookie.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use geodata::LatLon;
use serde::Serialize;

use crate::cookie::{KeyRing, Purpose, TokenPrefix};

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

struct Entry {
    names: [Box<str>; 5],
    prefix: TokenPrefix,
}

impl Entry {
    fn is_for(&self, n: &InstNames<'_>) -> bool {
        let [a, b, c, d, e] = &self.names;
        **a == *n.name
            && **b == *n.organization
            && **c == *n.cluster
            && **d == *n.cloudlet_org
            && **e == *n.cloudlet
    }
}

/// Signs edge-events cookies; prefixes cached in `slots` (a power of two; 0 disables caching).
pub struct EdgeCookies {
    slots: Box<[ArcSwapOption<Entry>]>,
}

/// Instances whose prefixes are kept by default (about 0.6 KB each).
pub const DEFAULT_SLOTS: usize = 16384;

impl EdgeCookies {
    pub fn new(slots: usize) -> Self {
        let n = if slots == 0 {
            0
        } else {
            slots.next_power_of_two()
        };
        Self {
            slots: (0..n).map(|_| ArcSwapOption::empty()).collect(),
        }
    }

    /// The cookie for a client at `at` sent to `inst`, issued at `now` and valid until `exp`.
    pub fn sign(
        &self,
        keys: &KeyRing,
        inst: &InstNames<'_>,
        at: LatLon,
        now: i64,
        exp: i64,
    ) -> String {
        let rest = rest_of_claims(at, now, exp);
        let Some(slot) = self.slot(inst) else {
            return keys.finish_token(&prefix(keys, inst), &rest);
        };
        let guard = slot.load();
        if let Some(entry) = guard.as_ref().filter(|e| e.is_for(inst)) {
            return keys.finish_token(&entry.prefix, &rest);
        }
        drop(guard);
        let entry = Arc::new(Entry {
            names: [
                inst.name.into(),
                inst.organization.into(),
                inst.cluster.into(),
                inst.cloudlet_org.into(),
                inst.cloudlet.into(),
            ],
            prefix: prefix(keys, inst),
        });
        let token = keys.finish_token(&entry.prefix, &rest);
        slot.store(Some(entry));
        token
    }

    fn slot(&self, inst: &InstNames<'_>) -> Option<&ArcSwapOption<Entry>> {
        if self.slots.is_empty() {
            return None;
        }
        // FNV-1a over the instance and cloudlet names: enough to spread instances over slots;
        // correctness never depends on it (entries are checked by content).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in inst.name.bytes().chain(inst.cloudlet.bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.slots.get(h as usize & (self.slots.len() - 1))
    }
}

/// `{"latitude":…,"longitude":…}},"iat":…,"exp":…}`: what follows the prefix. Numbers are
/// written by serde_json (shortest round-trip floats), several times faster than `fmt`.
fn rest_of_claims(at: LatLon, now: i64, exp: i64) -> Vec<u8> {
    let mut rest = Vec::with_capacity(96);
    // Writing numbers into a Vec cannot fail; coordinates are finite by construction.
    rest.extend_from_slice(b"{\"latitude\":");
    let _ = serde_json::to_writer(&mut rest, &at.lat());
    rest.extend_from_slice(b",\"longitude\":");
    let _ = serde_json::to_writer(&mut rest, &at.lon());
    rest.extend_from_slice(b"}},\"iat\":");
    let _ = serde_json::to_writer(&mut rest, &now);
    rest.extend_from_slice(b",\"exp\":");
    let _ = serde_json::to_writer(&mut rest, &exp);
    rest.push(b'}');
    rest
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
    keys.token_prefix(Purpose::EdgeEvents, &json)
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
    fn cached_and_uncached_cookies_verify_to_the_same_claims() {
        let keys = ring();
        let at = LatLon::new(52.52, -13.000_000_1).unwrap();
        for slots in [0, 1, 64] {
            let c = EdgeCookies::new(slots);
            for (name, cluster) in [("a", "c1"), ("b\"quote", ""), ("a", "c1"), ("é", "c2")] {
                let n = names(name, cluster);
                let token = c.sign(&keys, &n, at, 100, 700);
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
    fn one_slot_shared_by_two_instances_never_mixes_their_names() {
        let keys = ring();
        let c = EdgeCookies::new(1);
        let at = LatLon::new(1.0, 2.0).unwrap();
        for _ in 0..3 {
            for name in ["x", "y"] {
                let token = c.sign(&keys, &names(name, "c"), at, 1, 2);
                assert_eq!(
                    keys.verify_edge_events(&token, 1).unwrap().appinstname,
                    name
                );
            }
        }
    }
}
