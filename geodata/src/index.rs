//! An immutable spatial index of sites, generic over its payload.
//!
//! Points are stored as Earth-centred unit vectors. Euclidean chord length between unit vectors
//! is strictly monotonic in the great-circle angle, so an ordinary 3-D R-tree ranks sites exactly
//! as haversine would, with no special case at the poles or the antimeridian. (Putting haversine
//! into a 2-D lat/lon R-tree is a known source of wrong neighbours: the tree prunes with planar
//! envelope distances that disagree with the metric.)

use rstar::RTree;
use rstar::primitives::GeomWithData;

use crate::latlon::{EARTH_RADIUS_KM, LatLon};

/// One indexed site: the unit vector and the payload, nothing else. No `LatLon` copy is kept
/// because callers that need coordinates can put them in `T`, and the DME's per-instance memory
/// budget is tight.
type Entry<T> = GeomWithData<[f64; 3], T>;

/// A spatial index of sites built once (off the hot path) and then queried read-only.
///
/// Rebuild and swap atomically when the set of sites changes; `bulk_load` of 10⁴ sites takes
/// a few milliseconds, a nearest-neighbour query about a microsecond.
#[derive(Debug, Clone)]
pub struct SiteIndex<T> {
    tree: RTree<Entry<T>>,
}

impl<T> SiteIndex<T> {
    /// Builds the index from `(location, payload)` pairs with rstar's bulk loader, which packs
    /// the tree better and faster than repeated inserts.
    pub fn build(items: impl IntoIterator<Item = (LatLon, T)>) -> Self {
        let entries: Vec<Entry<T>> = items
            .into_iter()
            .map(|(at, payload)| GeomWithData::new(at.to_unit_vector(), payload))
            .collect();
        Self {
            tree: RTree::bulk_load(entries),
        }
    }

    /// Number of sites.
    pub fn len(&self) -> usize {
        self.tree.size()
    }

    /// Whether the index holds no site.
    pub fn is_empty(&self) -> bool {
        self.tree.size() == 0
    }

    /// All payloads, in tree order (not by distance).
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.tree.iter().map(|entry| &entry.data)
    }

    /// Payloads in ascending great-circle distance from `at`, each with that distance in km.
    ///
    /// Lazy: each step costs O(log n), so callers can skip unusable sites (unhealthy, wrong
    /// carrier) and stop as soon as they have enough, without rebuilding the index.
    pub fn nearest_iter(&self, at: LatLon) -> impl Iterator<Item = (&T, f64)> {
        self.tree
            .nearest_neighbor_iter_with_distance_2(at.to_unit_vector())
            .map(|(entry, chord_2)| (&entry.data, chord_2_to_km(chord_2)))
    }

    /// The nearest payload accepted by `filter`, with its distance in km.
    ///
    /// A depth-first branch-and-bound walk of the R-tree's nodes, nearer children first, with
    /// the distance arithmetic written out for unit vectors: no priority queue, no allocation,
    /// and `filter` sees each payload at most once. Several times cheaper than rstar's generic
    /// nearest-neighbour search (see `benches/`), which matters because FindCloudlet runs one
    /// per carrier bucket.
    pub fn nearest(&self, at: LatLon, filter: impl FnMut(&T) -> bool) -> Option<(&T, f64)> {
        self.nearest_within(at, f64::INFINITY, filter)
    }

    /// [`Self::nearest`] among the sites within `max_km` (inclusive, up to rounding of ~1e-9
    /// km): the bound prunes the walk from the start, so a search that cannot beat what the
    /// caller already has costs a few box tests.
    pub fn nearest_within(
        &self,
        at: LatLon,
        max_km: f64,
        mut filter: impl FnMut(&T) -> bool,
    ) -> Option<(&T, f64)> {
        let bound = if max_km == f64::INFINITY {
            f64::INFINITY
        } else {
            km_to_chord_2(max_km)
        };
        if bound < 0.0 {
            return None;
        }
        // `Best` holds an exclusive bound; nudge it so a site exactly at `max_km` counts.
        let mut best = Best {
            entry: None,
            chord_2: bound * (1.0 + 1e-12) + 1e-300,
        };
        search::nearest(
            self.tree.root(),
            &at.to_unit_vector(),
            &mut filter,
            &mut best,
        );
        best.entry.map(|e| (&e.data, chord_2_to_km(best.chord_2)))
    }

    /// Up to `k` nearest payloads accepted by `filter`, in ascending distance, with distances
    /// in km. Returns fewer than `k` when fewer sites pass the filter.
    pub fn nearest_k(
        &self,
        at: LatLon,
        k: usize,
        mut filter: impl FnMut(&T) -> bool,
    ) -> Vec<(&T, f64)> {
        if k == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(k.min(self.len()));
        out.extend(
            self.nearest_iter(at)
                .filter(|(payload, _)| filter(payload))
                .take(k),
        );
        out
    }

    /// Payloads within `radius_km` (inclusive) of `at`, in ascending distance, with distances
    /// in km. A negative or NaN radius yields nothing.
    pub fn within_km(&self, at: LatLon, radius_km: f64) -> impl Iterator<Item = (&T, f64)> {
        // Built on the sorted iterator so results come nearest first and the walk stops at the
        // first site beyond the radius.
        self.nearest_iter(at)
            .take_while(move |&(_, distance)| distance <= radius_km)
    }

    /// Calls `f` with every payload within `radius_km` (inclusive, up to rounding of ~1e-9 km)
    /// of `at`, in no particular order. Cheaper than [`Self::within_km`] when the caller sorts
    /// or picks itself: a depth-first walk, no priority queue, no allocation. A negative or NaN
    /// radius visits nothing.
    pub fn for_each_within_km(&self, at: LatLon, radius_km: f64, mut f: impl FnMut(&T)) {
        let chord_2 = km_to_chord_2(radius_km);
        if chord_2 >= 0.0 {
            search::within(self.tree.root(), &at.to_unit_vector(), chord_2, &mut |e| {
                f(&e.data)
            });
        }
    }
}

/// The squared chord of a great-circle distance (the inverse of [`chord_2_to_km`]), padded by a
/// relative 1e-12 so that a site exactly at the radius is not lost to rounding; -1 (selects
/// nothing) for a negative or NaN radius. Radii beyond half the circumference cover the sphere.
fn km_to_chord_2(radius_km: f64) -> f64 {
    if radius_km.is_nan() || radius_km < 0.0 {
        return -1.0;
    }
    let half_angle = (radius_km / (2.0 * EARTH_RADIUS_KM)).min(std::f64::consts::FRAC_PI_2);
    let chord = 2.0 * half_angle.sin();
    chord * chord * (1.0 + 1e-12) + 1e-18
}

/// Converts a squared chord between unit vectors to great-circle kilometres: c = 2·sin(θ/2), so
/// d = R·θ = 2R·asin(c/2). The clamp keeps near-antipodal rounding (c/2 a hair above 1) from
/// producing NaN.
fn chord_2_to_km(chord_2: f64) -> f64 {
    let half_chord = (chord_2.sqrt() / 2.0).min(1.0);
    2.0 * EARTH_RADIUS_KM * half_chord.asin()
}

#[path = "index_search.rs"]
mod search;

use search::Best;

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
