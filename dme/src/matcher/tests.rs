//! The matching rules one by one, and the matcher against the linear upstream algorithm.

use edge_model::{CloudletState, HealthCheck, MaintenanceState, TrackedState};
use geodata::LatLon;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::baseline;
use crate::fixture::{self, Builder};
use crate::matcher::{Found, find};
use crate::tables::Tables;

fn tables(b: Builder) -> Tables {
    Tables::from_deployment(&b.build(), 1).expect("fixture builds")
}

fn names(t: &Tables, carrier: &str, lat: f64, lon: f64, limit: usize) -> Vec<String> {
    let app = t.app(&key_ref()).expect("app");
    let carrier = t.translate_carrier(carrier);
    let at = LatLon::new(lat, lon).unwrap();
    find(
        app,
        &t.settings,
        carrier,
        at,
        limit,
        &mut StdRng::seed_from_u64(7),
    )
    .iter()
    .map(|f| f.name.to_string())
    .collect()
}

fn key_ref() -> crate::tables::AppKeyRef<'static> {
    crate::tables::AppKeyRef {
        organization: "devorg",
        name: "app",
        version: "1.0",
    }
}

fn base() -> Builder {
    Builder::new().app(fixture::app(fixture::app_key()))
}

#[test]
fn carrier_selects_its_own_bucket_and_empty_carrier_searches_all() {
    let k = fixture::app_key();
    let t = tables(
        base()
            .site(&k, "telekom", "berlin", 52.52, 13.405)
            .site(&k, "orange", "paris", 48.8566, 2.3522),
    );
    // A client in Paris on telekom gets Berlin; on orange, Paris; without carrier, the nearest.
    assert_eq!(names(&t, "telekom", 48.85, 2.35, 1), ["berlin"]);
    assert_eq!(names(&t, "orange", 48.85, 2.35, 1), ["paris"]);
    assert_eq!(names(&t, "", 52.5, 13.4, 1), ["berlin"]);
    assert_eq!(names(&t, "", 48.85, 2.35, 1), ["paris"]);
    assert!(names(&t, "vodafone", 48.85, 2.35, 1).is_empty());
    // Carrier names are exact and case-sensitive.
    assert!(names(&t, "Telekom", 48.85, 2.35, 1).is_empty());
}

#[test]
fn operator_codes_translate_to_their_organization() {
    let k = fixture::app_key();
    let t = tables(
        base()
            .operator_code("26201", "telekom")
            .site(&k, "telekom", "berlin", 52.52, 13.405)
            .site(&k, "orange", "paris", 48.8566, 2.3522),
    );
    assert_eq!(names(&t, "26201", 48.85, 2.35, 1), ["berlin"]);
}

#[test]
fn alliance_cloudlets_serve_named_carriers_only() {
    let k = fixture::app_key();
    let t = tables(
        base()
            .site(&k, "telekom", "munich", 48.1351, 11.582)
            .site(&k, "vodafone", "hamburg", 53.5511, 9.9937)
            .with_cloudlet(|c| c.alliance_orgs = vec!["telekom".into()]),
    );
    // Near Hamburg, telekom clients reach vodafone's allied cloudlet.
    assert_eq!(names(&t, "telekom", 53.5, 10.0, 1), ["hamburg"]);
    assert_eq!(names(&t, "telekom", 53.5, 10.0, 5), ["hamburg", "munich"]);
    // A carrier not in the alliance does not.
    assert!(names(&t, "orange", 53.5, 10.0, 1).is_empty());
}

#[test]
fn public_clouds_compete_with_padding() {
    let k = fixture::app_key();
    // Client at Frankfurt (50.11, 8.68); aws ~ 30 km away, telekom ~ 110 km away.
    let t = tables(
        base()
            .site(&k, "aws", "aws-fra", 50.3, 8.9)
            .site(&k, "telekom", "cologne", 50.9375, 6.9603)
            .site(&k, "orange", "strasbourg", 48.5734, 7.7521),
    );
    let (lat, lon) = (50.11, 8.68);
    // A telekom client: aws (~26 km, padded to ~126) still beats cologne (~152 km).
    let d_cologne = LatLon::new(lat, lon)
        .unwrap()
        .distance_km(&LatLon::new(50.9375, 6.9603).unwrap());
    let d_aws = LatLon::new(lat, lon)
        .unwrap()
        .distance_km(&LatLon::new(50.3, 8.9).unwrap());
    assert!(
        d_aws + 100.0 < d_cologne,
        "fixture: aws padded {d_aws} vs cologne {d_cologne}"
    );
    assert_eq!(names(&t, "telekom", lat, lon, 1), ["aws-fra"]);
    // Move the client next to cologne: padding makes telekom win although aws is nearer than 100 km.
    let (lat2, lon2) = (50.5, 8.3);
    let here = LatLon::new(lat2, lon2).unwrap();
    let d_aws2 = here.distance_km(&LatLon::new(50.3, 8.9).unwrap());
    let d_cologne2 = here.distance_km(&LatLon::new(50.9375, 6.9603).unwrap());
    assert!(d_aws2 < d_cologne2 && d_aws2 + 100.0 > d_cologne2);
    assert_eq!(names(&t, "telekom", lat2, lon2, 1), ["cologne"]);
    // Without a carrier, or as the cloud's own carrier, there is no padding.
    assert_eq!(names(&t, "", lat2, lon2, 1), ["aws-fra"]);
    assert_eq!(names(&t, "aws", lat2, lon2, 1), ["aws-fra"]);
    // Public clouds are searched for any carrier, even one with no cloudlets.
    assert_eq!(names(&t, "vodafone", lat2, lon2, 1), ["aws-fra"]);
}

#[test]
fn usability_rules_one_by_one() {
    let k = fixture::app_key();
    let near = |b: Builder| b.site(&k, "telekom", "near", 50.0, 8.0);
    let far = |b: Builder| b.site(&k, "telekom", "far", 52.0, 13.0);
    type Change = Box<dyn Fn(Builder) -> Builder>;
    let cases: Vec<(&str, Change, bool)> = vec![
        ("ready", Box::new(|b| b), true),
        (
            "inst creating",
            Box::new(|b| b.with_inst(|i| i.state = TrackedState::Creating)),
            false,
        ),
        (
            "health fail",
            Box::new(|b| b.with_inst(|i| i.health = HealthCheck::ServerFail)),
            false,
        ),
        (
            "rootlb offline",
            Box::new(|b| b.with_inst(|i| i.health = HealthCheck::RootlbOffline)),
            false,
        ),
        (
            "health unknown",
            Box::new(|b| b.with_inst(|i| i.health = HealthCheck::Unknown)),
            true,
        ),
        (
            "cloudlet offline",
            Box::new(|b| b.with_cloudlet(|c| c.state = CloudletState::Offline)),
            false,
        ),
        (
            "under maintenance",
            Box::new(|b| {
                b.with_cloudlet(|c| c.maintenance_state = MaintenanceState::UnderMaintenance)
            }),
            false,
        ),
        (
            "crm under maintenance is still usable",
            Box::new(|b| {
                b.with_cloudlet(|c| c.maintenance_state = MaintenanceState::CrmUnderMaintenance)
            }),
            true,
        ),
    ];
    for (what, change, usable) in cases {
        // Build "near" as cloudlet then instance so both modifiers apply to it.
        let b = far(base());
        let b = change(near(b));
        let t = tables(b);
        let got = names(&t, "telekom", 50.0, 8.0, 1);
        let want = if usable { "near" } else { "far" };
        assert_eq!(got, [want], "{what}");
    }
}

#[test]
fn exact_ties_break_by_key_and_limits_order_results() {
    let k = fixture::app_key();
    let t = tables(
        base()
            .cloudlet("telekom", "site", 50.0, 8.0)
            .inst(&k, "b-inst", "telekom", "site")
            .inst(&k, "a-inst", "telekom", "site")
            .site(&k, "telekom", "second", 50.5, 8.0)
            .site(&k, "telekom", "third", 51.0, 8.0),
    );
    assert_eq!(names(&t, "telekom", 50.0, 8.0, 1), ["a-inst"]);
    assert_eq!(
        names(&t, "telekom", 50.0, 8.0, 10),
        ["a-inst", "b-inst", "second", "third"]
    );
    assert!(names(&t, "telekom", 50.0, 8.0, 0).is_empty());
}

#[test]
fn very_close_instances_share_load_uniformly() {
    let k = fixture::app_key();
    // Three instances within 1 km of each other, one clearly farther.
    let t = tables(
        base()
            .settings(|s| s.randomize_very_close = true)
            .site(&k, "telekom", "a", 50.000, 8.000)
            .site(&k, "telekom", "b", 50.003, 8.000)
            .site(&k, "telekom", "c", 50.006, 8.000)
            .site(&k, "telekom", "far", 50.100, 8.000),
    );
    let app = t.app(&key_ref()).unwrap();
    let at = LatLon::new(50.0, 8.0).unwrap();
    let mut rng = StdRng::seed_from_u64(42);
    let mut counts = std::collections::HashMap::<String, u32>::new();
    let n = 6000;
    for _ in 0..n {
        let f = find(app, &t.settings, "telekom", at, 1, &mut rng);
        *counts.entry(f[0].name.to_string()).or_default() += 1;
    }
    assert_eq!(counts.get("far"), None, "{counts:?}");
    for name in ["a", "b", "c"] {
        let share = f64::from(counts[name]) / f64::from(n);
        // Expected 1/3; 6000 draws put 4 standard deviations at about ±0.024.
        assert!(
            (share - 1.0 / 3.0).abs() < 0.03,
            "{name}: {share} ({counts:?})"
        );
    }
    // The upstream pairwise coin flip is measurably not uniform for three.
    let mut base_counts = std::collections::HashMap::<String, u32>::new();
    for _ in 0..n {
        let f = baseline::find(app, &t.settings, "telekom", at, 1, &mut rng);
        *base_counts.entry(f[0].name.to_string()).or_default() += 1;
    }
    let max = base_counts.values().copied().max().unwrap_or(0);
    assert!(f64::from(max) / f64::from(n) > 0.4, "{base_counts:?}");
}

#[test]
fn matches_the_linear_upstream_algorithm_on_random_regions() {
    let mut rng = StdRng::seed_from_u64(2026);
    let carriers = ["telekom", "orange", "vodafone", "aws", "gcp"];
    for round in 0..20 {
        let k = fixture::app_key();
        let mut b = base();
        for i in 0..300 {
            let org = carriers[rng.random_range(0..carriers.len())];
            let (lat, lon) = (
                rng.random_range(-89.0..89.0),
                rng.random_range(-180.0..180.0),
            );
            let name = format!("s{i}");
            b = b.site(&k, org, &name, lat, lon);
            if rng.random_bool(0.1) {
                b = b.with_inst(|i| i.health = HealthCheck::ServerFail);
            }
            if rng.random_bool(0.1) {
                let ally = carriers[rng.random_range(0..3)].to_string();
                b = b.with_cloudlet(|c| c.alliance_orgs = vec![ally]);
            }
        }
        let t = tables(b);
        let app = t.app(&key_ref()).unwrap();
        for q in 0..200 {
            let at = LatLon::new(
                rng.random_range(-90.0..90.0),
                rng.random_range(-180.0..180.0),
            )
            .unwrap();
            let carrier = ["", "telekom", "orange", "vodafone", "aws", "nobody"][q % 6];
            let limit = [1, 3, 10][q % 3];
            let got = find(app, &t.settings, carrier, at, limit, &mut rng);
            let want = baseline::find(app, &t.settings, carrier, at, limit, &mut rng);
            fn names<'a>(r: &[Found<'a>]) -> Vec<&'a str> {
                r.iter().map(|f| f.name).collect()
            }
            assert_eq!(
                names(&got),
                names(&want),
                "round {round} query {q} carrier {carrier:?} at {at:?}"
            );
            // A lone one-result candidate keeps the index's chord-derived distance; every
            // other distance is haversine, as upstream's. Both agree to 1e-9 km.
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g.distance_km - w.distance_km).abs() <= 1e-9 * w.distance_km.max(1.0),
                    "round {round} query {q}: {} vs {} km",
                    g.distance_km,
                    w.distance_km
                );
            }
        }
    }
}
