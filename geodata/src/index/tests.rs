//! Tests for [`SiteIndex`]: the index must agree with a brute-force haversine scan, including at
//! the poles and across the antimeridian.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::SiteIndex;
use crate::latlon::{LatLon, haversine_km};

/// Distances from the chord must match haversine to 1e-9 relative; below 1 km an absolute
/// 1e-9 km applies, since the chord of nearly coincident points loses relative precision.
fn tolerance_km(d: f64) -> f64 {
    1e-9 * d.max(1.0)
}

fn ll(lat: f64, lon: f64) -> LatLon {
    LatLon::new(lat, lon).unwrap()
}

/// A point uniform on the sphere, or (one time in three) one crowded near a pole or against the
/// antimeridian, where lat/lon geometry usually goes wrong.
fn random_point(rng: &mut StdRng) -> LatLon {
    let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    let uniform_lat = (2.0 * rng.random::<f64>() - 1.0).asin().to_degrees();
    let uniform_lon = rng.random_range(-180.0..=180.0);
    match rng.random_range(0..6) {
        0 => ll(sign * (90.0 - rng.random_range(0.0..0.5)), uniform_lon),
        1 => ll(uniform_lat, sign * (180.0 - rng.random_range(0.0..0.5))),
        _ => ll(uniform_lat, uniform_lon),
    }
}

fn random_sites(rng: &mut StdRng, n: usize) -> (Vec<LatLon>, SiteIndex<usize>) {
    let mut sites: Vec<LatLon> = (0..n).map(|_| random_point(rng)).collect();
    // Exact poles and both signs of the antimeridian, which random draws never hit.
    sites.extend([
        ll(90.0, 0.0),
        ll(-90.0, 45.0),
        ll(10.0, 180.0),
        ll(-10.0, -180.0),
    ]);
    let index = SiteIndex::build(sites.iter().copied().enumerate().map(|(i, p)| (p, i)));
    (sites, index)
}

/// All sites sorted by haversine distance from `at`.
fn brute_force(sites: &[LatLon], at: LatLon) -> Vec<(usize, f64)> {
    let mut all: Vec<(usize, f64)> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| (i, haversine_km(at, *s)))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1));
    all
}

/// Checks one ranked answer against the brute-force ranking: rank by rank, the site the index
/// returned is (within tolerance) as far as the brute-force site at that rank, so only ties may
/// be reordered, and the reported distance equals haversine.
fn assert_same_ranking(sites: &[LatLon], at: LatLon, got: &[(&usize, f64)], want: &[(usize, f64)]) {
    assert_eq!(got.len(), want.len(), "query {at:?}");
    for (rank, (&(&id, reported), &(want_id, want_d))) in got.iter().zip(want).enumerate() {
        let actual = haversine_km(at, sites[id]);
        assert!(
            (actual - want_d).abs() <= tolerance_km(want_d),
            "query {at:?} rank {rank}: index gave site {id} at {actual} km, brute force site \
             {want_id} at {want_d} km"
        );
        assert!(
            (reported - actual).abs() <= tolerance_km(actual),
            "query {at:?} site {id}: reported {reported} km, haversine {actual} km"
        );
    }
}

#[test]
fn nearest_iter_matches_brute_force_haversine() {
    let mut rng = StdRng::seed_from_u64(0x6e0_da7a);
    let (sites, index) = random_sites(&mut rng, 2000);
    for _ in 0..3000 {
        let at = random_point(&mut rng);
        let want = brute_force(&sites, at);
        let got: Vec<_> = index.nearest_iter(at).take(20).collect();
        assert_same_ranking(&sites, at, &got, &want[..20]);

        let (first, d) = index.nearest(at, |_| true).unwrap();
        assert_same_ranking(&sites, at, &[(first, d)], &want[..1]);
    }
}

#[test]
fn full_iteration_visits_every_site_in_order() {
    let mut rng = StdRng::seed_from_u64(7);
    let (sites, index) = random_sites(&mut rng, 500);
    for _ in 0..50 {
        let at = random_point(&mut rng);
        let got: Vec<_> = index.nearest_iter(at).collect();
        assert_same_ranking(&sites, at, &got, &brute_force(&sites, at));
    }
    assert_eq!(index.len(), sites.len());
    let mut all: Vec<usize> = index.iter().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..sites.len()).collect::<Vec<_>>());
}

#[test]
fn antimeridian_and_pole_neighbours_are_found() {
    let index = SiteIndex::build([
        (ll(0.0, 179.9), "east of the line"),
        (ll(0.0, -179.9), "west of the line"),
        (ll(0.0, 170.0), "far east"),
        (ll(89.99, 180.0), "across the pole"),
        (ll(89.0, 0.0), "same meridian, further"),
    ]);
    let order: Vec<_> = index
        .nearest_iter(ll(0.0, -179.95))
        .map(|(s, _)| *s)
        .take(3)
        .collect();
    assert_eq!(order, ["west of the line", "east of the line", "far east"]);

    let (site, d) = index.nearest(ll(89.99, 0.0), |_| true).unwrap();
    assert_eq!(*site, "across the pole");
    assert!((d - haversine_km(ll(89.99, 0.0), ll(89.99, 180.0))).abs() < 1e-9);
}

#[test]
fn nearest_skips_filtered_sites_and_calls_filter_once_each() {
    let mut rng = StdRng::seed_from_u64(11);
    let (sites, index) = random_sites(&mut rng, 300);
    for _ in 0..200 {
        let at = random_point(&mut rng);
        let mut seen = HashSet::new();
        let got = index.nearest(at, |&id| {
            assert!(seen.insert(id), "filter called twice for site {id}");
            id % 3 == 0
        });
        let want: Vec<_> = brute_force(&sites, at)
            .into_iter()
            .filter(|(id, _)| id % 3 == 0)
            .collect();
        assert_same_ranking(&sites, at, &[got.unwrap()], &want[..1]);

        let got_k = index.nearest_k(at, 5, |id| id % 3 == 0);
        assert_same_ranking(&sites, at, &got_k, &want[..5]);
    }
    assert!(index.nearest(ll(0.0, 0.0), |_| false).is_none());
    assert!(index.nearest_k(ll(0.0, 0.0), 3, |_| false).is_empty());
}

#[test]
fn k_larger_than_len_and_k_zero() {
    let index = SiteIndex::build([(ll(1.0, 1.0), 1), (ll(2.0, 2.0), 2), (ll(3.0, 3.0), 3)]);
    let got: Vec<i32> = index
        .nearest_k(ll(0.0, 0.0), 10, |_| true)
        .iter()
        .map(|(s, _)| **s)
        .collect();
    assert_eq!(got, [1, 2, 3]);
    assert!(index.nearest_k(ll(0.0, 0.0), 0, |_| true).is_empty());
}

#[test]
fn within_km_matches_brute_force() {
    let mut rng = StdRng::seed_from_u64(13);
    let (sites, index) = random_sites(&mut rng, 1000);
    for _ in 0..300 {
        let at = random_point(&mut rng);
        let radius = rng.random_range(0.0..3000.0);
        let got: Vec<_> = index.within_km(at, radius).collect();
        let mut want = brute_force(&sites, at);
        want.retain(|&(_, d)| d <= radius);
        // A site exactly on the boundary may fall either side by rounding; random radii make
        // that practically impossible, so the counts must agree.
        assert_same_ranking(&sites, at, &got, &want);
    }
    assert_eq!(index.within_km(ll(0.0, 0.0), -1.0).count(), 0);
    assert_eq!(index.within_km(ll(0.0, 0.0), f64::NAN).count(), 0);
}

#[test]
fn empty_index_answers_nothing() {
    let index: SiteIndex<u32> = SiteIndex::build([]);
    let at = ll(48.85, 2.35);
    assert!(index.is_empty());
    assert_eq!(index.len(), 0);
    assert_eq!(index.iter().count(), 0);
    assert_eq!(index.nearest_iter(at).count(), 0);
    assert!(index.nearest(at, |_| true).is_none());
    assert!(index.nearest_k(at, 5, |_| true).is_empty());
    assert_eq!(index.within_km(at, 1e6).count(), 0);
}

#[test]
fn antipodal_distance_is_finite() {
    let index = SiteIndex::build([(ll(-33.87, 151.21), ())]);
    let (_, d) = index.nearest(ll(33.87, -28.79), |_| true).unwrap();
    assert!(
        (d - std::f64::consts::PI * crate::EARTH_RADIUS_KM).abs() < 1e-3,
        "{d}"
    );
}

/// Memory guard for the DME's per-instance budget: a site costs its unit vector and payload,
/// a node (about one per five sites) its box and two child ranges.
#[test]
fn sites_and_nodes_stay_small() {
    assert_eq!(size_of::<super::Node>(), 64);
    let index = SiteIndex::build(
        (0..10_000).map(|i| (ll(f64::from(i % 170) - 85.0, f64::from(i % 359) - 179.0), i)),
    );
    assert_eq!(index.len(), 10_000);
    assert!(
        index.nodes.len() < 10_000 / 3,
        "{} nodes",
        index.nodes.len()
    );
    assert_eq!(index.points.len(), 10_000);
}

#[test]
fn for_each_within_km_matches_brute_force() {
    let mut rng = StdRng::seed_from_u64(17);
    let (sites, index) = random_sites(&mut rng, 1000);
    for _ in 0..300 {
        // Small radii as the DME uses (the very-close window) as well as large ones.
        let radius = if rng.random_bool(0.5) {
            rng.random_range(0.0..5.0)
        } else {
            rng.random_range(0.0..25_000.0)
        };
        let at = random_point(&mut rng);
        let mut got = Vec::new();
        index.for_each_within_km(at, radius, |&i| got.push(i));
        got.sort_unstable();
        let mut want: Vec<usize> = brute_force(&sites, at)
            .into_iter()
            .filter(|&(_, d)| d <= radius)
            .map(|(i, _)| i)
            .collect();
        want.sort_unstable();
        assert_eq!(got, want, "radius {radius} km at {at:?}");
    }
    // A site exactly at the radius is inside; the whole sphere at half the circumference.
    let at = ll(0.0, 0.0);
    let exact = haversine_km(at, sites[0]);
    let count = |index: &SiteIndex<usize>, radius: f64, want: usize| {
        let mut n = 0;
        let mut seen = false;
        index.for_each_within_km(at, radius, |&i| {
            n += 1;
            seen |= i == want;
        });
        (n, seen)
    };
    assert!(count(&index, exact, 0).1);
    assert_eq!(count(&index, 30_000.0, 0).0, sites.len());
    assert_eq!(count(&index, -1.0, 0).0, 0);
    assert_eq!(count(&index, f64::NAN, 0).0, 0);
    let empty: SiteIndex<usize> = SiteIndex::build([]);
    assert_eq!(count(&empty, 1e6, 0).0, 0);
}

#[test]
fn nearest_within_respects_the_bound_and_the_filter() {
    let mut rng = StdRng::seed_from_u64(19);
    let (sites, index) = random_sites(&mut rng, 1000);
    for _ in 0..300 {
        let at = random_point(&mut rng);
        let max_km = rng.random_range(0.0..3000.0);
        let odd_only = rng.random_bool(0.5);
        let keep = |i: &usize| !odd_only || i % 2 == 1;
        let want = brute_force(&sites, at)
            .into_iter()
            .find(|(i, d)| keep(i) && *d <= max_km);
        let got = index.nearest_within(at, max_km, keep);
        match (got, want) {
            (None, None) => {}
            (Some((&g, gd)), Some((w, wd))) => {
                assert!(
                    (gd - wd).abs() <= tolerance_km(wd),
                    "{g} at {gd} vs {w} at {wd}"
                );
                assert!(keep(&g));
            }
            (got, want) => panic!("got {got:?}, want {want:?} within {max_km} km of {at:?}"),
        }
    }
    let at = ll(0.0, 0.0);
    let exact = haversine_km(at, sites[0]);
    let d0 = index
        .nearest_within(at, exact, |&i| i == 0)
        .map(|(&i, _)| i);
    assert_eq!(d0, Some(0), "a site exactly at the bound is inside");
    assert!(index.nearest_within(at, -1.0, |_| true).is_none());
    assert!(index.nearest_within(at, f64::NAN, |_| true).is_none());
}

#[test]
fn nearest2_within_reports_the_two_nearest_accepted() {
    let mut rng = StdRng::seed_from_u64(19);
    let (sites, index) = random_sites(&mut rng, 1500);
    for _ in 0..400 {
        let at = random_point(&mut rng);
        let max_km = if rng.random_bool(0.3) {
            f64::INFINITY
        } else {
            rng.random_range(0.0..3000.0)
        };
        let odd_only = rng.random_bool(0.5);
        let accept = |i: usize| !odd_only || i % 2 == 1;
        let mut want = brute_force(&sites, at);
        want.retain(|&(i, d)| accept(i) && d <= max_km);
        let got = index.nearest2_within(at, max_km, |&i| accept(i));
        match (got, want.first()) {
            (None, None) => {}
            (Some((&i, d, second)), Some(&(_, d1))) => {
                assert!((d - d1).abs() <= tolerance_km(d1), "{d} vs {d1}");
                assert!((haversine_km(at, sites[i]) - d1).abs() <= tolerance_km(d1));
                match (second, want.get(1)) {
                    (None, None) => {}
                    (Some(s), Some(&(_, d2))) => assert!((s - d2).abs() <= tolerance_km(d2)),
                    (s, w) => panic!("query {at:?}: second {s:?}, brute force {w:?}"),
                }
            }
            (got, want) => panic!("query {at:?}: index {got:?}, brute force {want:?}"),
        }
    }
}
