//! An immutable spatial index of sites, generic over its payload.
//!
//! Points are stored as Earth-centred unit vectors. Euclidean chord length between unit vectors
//! is strictly monotonic in the great-circle angle, so an ordinary 3-D R-tree ranks sites exactly
//! as haversine would, with no special case at the poles or the antimeridian. (Putting haversine
//! into a 2-D lat/lon R-tree is a known source of wrong neighbours: the tree prunes with planar
//! envelope distances that disagree with the metric.)

use rstar::primitives::GeomWithData;
use rstar::{ParentNode, RTree, RTreeNode};

use crate::latlon::{EARTH_RADIUS_KM, LatLon};

/// A spatial index of sites built once (off the hot path) and then queried read-only.
///
/// The tree is packed by rstar's R-tree bulk loader (sort-tile-recursive clustering over the
/// unit vectors) and then laid out flat: nodes in breadth-first order with each node's children
/// contiguous, sites' vectors and payloads in leaf order. rstar's own nodes are an enum of about
/// 80 bytes per child, each node's children in a separate allocation; the flat form needs about
/// a third of the memory and a query walks contiguous arrays instead of chasing pointers, which
/// is most of a FindCloudlet decision's time. Rebuild and swap atomically when the set of sites
/// changes.
#[derive(Debug, Clone)]
pub struct SiteIndex<T> {
    /// `nodes[0]` is the root (when there are sites).
    nodes: Vec<Node>,
    points: Vec<[f64; 3]>,
    payloads: Vec<T>,
}

/// Most sites kept directly in one node. rstar's bulk loader leaves about two sites per leaf (it
/// splits every node at least in two along each of the three axes); subtrees up to this size are
/// merged into one node whose sites a query scans in a row, which beats descending further
/// (`find` bench at 10k instances: 16 → 650 ns, 32 → 615, 64 → 571, 160 → 636).
const LEAF_SITES: usize = 64;

/// A node's bounding box and its children: a range of `nodes` and a range of sites.
#[derive(Debug, Clone, Copy)]
struct Node {
    lower: [f64; 3],
    upper: [f64; 3],
    nodes: (u32, u32),
    sites: (u32, u32),
}

impl<T> SiteIndex<T> {
    /// Builds the index from `(location, payload)` pairs.
    ///
    /// # Panics
    /// With more than `u32::MAX` sites.
    pub fn build(items: impl IntoIterator<Item = (LatLon, T)>) -> Self {
        let mut payloads: Vec<Option<T>> = Vec::new();
        let mut entries = Vec::new();
        for (at, payload) in items {
            let id = u32::try_from(payloads.len()).expect("at most u32::MAX sites");
            entries.push(GeomWithData::new(at.to_unit_vector(), id));
            payloads.push(Some(payload));
        }
        let mut index = Self {
            nodes: Vec::new(),
            points: Vec::with_capacity(entries.len()),
            payloads: Vec::with_capacity(entries.len()),
        };
        if entries.is_empty() {
            return index;
        }
        let tree = RTree::bulk_load(entries);
        index.nodes.push(Node::from(tree.root()));
        let mut queue = std::collections::VecDeque::from([(0usize, tree.root())]);
        while let Some((at, parent)) = queue.pop_front() {
            let first_node = index.nodes.len() as u32;
            let first_site = index.points.len() as u32;
            let small = subtree_sites(parent) <= LEAF_SITES;
            for child in parent.children() {
                match child {
                    RTreeNode::Leaf(e) => index.push_site(e, &mut payloads),
                    RTreeNode::Parent(p) if small => {
                        for_each_site(p, &mut |e| index.push_site(e, &mut payloads));
                    }
                    RTreeNode::Parent(p) => {
                        queue.push_back((index.nodes.len(), p));
                        index.nodes.push(Node::from(p));
                    }
                }
            }
            let (end_node, end_site) = (index.nodes.len() as u32, index.points.len() as u32);
            let node = &mut index.nodes[at];
            node.nodes = (first_node, end_node);
            node.sites = (first_site, end_site);
        }
        index.nodes.shrink_to_fit();
        index
    }

    fn push_site(&mut self, e: &GeomWithData<[f64; 3], u32>, payloads: &mut [Option<T>]) {
        self.points.push(*e.geom());
        // Every id is taken exactly once: ids are the entries' own indexes.
        let payload = payloads[e.data as usize].take().expect("each site once");
        self.payloads.push(payload);
    }

    /// Number of sites.
    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    /// Whether the index holds no site.
    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// All payloads, in tree order (not by distance).
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.payloads.iter()
    }

    /// Payloads in ascending great-circle distance from `at`, each with that distance in km.
    ///
    /// Lazy: each step costs O(log n), so callers can skip unusable sites (unhealthy, wrong
    /// carrier) and stop as soon as they have enough, without rebuilding the index.
    pub fn nearest_iter(&self, at: LatLon) -> impl Iterator<Item = (&T, f64)> {
        search::Ordered::new(self, at.to_unit_vector())
            .map(|(i, chord_2)| (&self.payloads[i], chord_2_to_km(chord_2)))
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
        let mut best = Best {
            site: None,
            chord_2: exclusive_bound_2(max_km)?,
        };
        if !self.nodes.is_empty() {
            let q = at.to_unit_vector();
            search::nearest(self, 0, &q, &mut |i| filter(&self.payloads[i]), &mut best);
        }
        best.site
            .map(|i| (&self.payloads[i], chord_2_to_km(best.chord_2)))
    }

    /// As [`Self::nearest_within`], also telling how far the second nearest accepted payload
    /// within `max_km` is (`None`: there is none). A caller that wants everything within some
    /// window of the nearest can skip the range search when the second is already outside.
    pub fn nearest2_within(
        &self,
        at: LatLon,
        max_km: f64,
        mut filter: impl FnMut(&T) -> bool,
    ) -> Option<(&T, f64, Option<f64>)> {
        let bound = exclusive_bound_2(max_km)?;
        if self.nodes.is_empty() {
            return None;
        }
        let mut best = search::Best2 {
            site: None,
            first_2: bound,
            second_2: bound,
        };
        let q = at.to_unit_vector();
        search::nearest(self, 0, &q, &mut |i| filter(&self.payloads[i]), &mut best);
        let second = (best.second_2 < bound).then(|| chord_2_to_km(best.second_2));
        best.site
            .map(|i| (&self.payloads[i], chord_2_to_km(best.first_2), second))
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
        if chord_2 >= 0.0 && !self.nodes.is_empty() {
            let q = at.to_unit_vector();
            search::within(self, 0, &q, chord_2, &mut |i| f(&self.payloads[i]));
        }
    }
}

/// The exclusive squared-chord bound of a nearest search within `max_km`, nudged so that a site
/// exactly at `max_km` counts; `None` for a negative or NaN distance.
fn exclusive_bound_2(max_km: f64) -> Option<f64> {
    if max_km == f64::INFINITY {
        return Some(f64::INFINITY);
    }
    let bound = km_to_chord_2(max_km);
    (bound >= 0.0).then_some(bound * (1.0 + 1e-12) + 1e-300)
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

type Packed = ParentNode<GeomWithData<[f64; 3], u32>>;

fn subtree_sites(p: &Packed) -> usize {
    p.children()
        .iter()
        .map(|c| match c {
            RTreeNode::Leaf(_) => 1,
            RTreeNode::Parent(p) => subtree_sites(p),
        })
        .sum()
}

fn for_each_site(p: &Packed, f: &mut impl FnMut(&GeomWithData<[f64; 3], u32>)) {
    for c in p.children() {
        match c {
            RTreeNode::Leaf(e) => f(e),
            RTreeNode::Parent(p) => for_each_site(p, f),
        }
    }
}

impl From<&Packed> for Node {
    fn from(p: &Packed) -> Self {
        let env = p.envelope();
        Self {
            lower: env.lower(),
            upper: env.upper(),
            nodes: (0, 0),
            sites: (0, 0),
        }
    }
}

mod search;

use search::Best;

#[cfg(test)]
mod tests;
