//! Walks over the flat tree of [`SiteIndex`]: depth-first branch-and-bound for the nearest site
//! and for range queries (no allocation, the call stack is the tree's depth), and a best-first
//! ordered walk with a priority queue for callers that want sites in distance order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::SiteIndex;

/// What a nearest search keeps of the accepted sites it meets, and the squared chord beyond
/// which nothing more can change it (the walk prunes against that bound).
pub(super) trait Keep {
    fn bound_2(&self) -> f64;
    /// An accepted site nearer than [`Keep::bound_2`].
    fn offer(&mut self, site: usize, chord_2: f64);
}

/// The best site so far of a nearest search.
pub(super) struct Best {
    pub site: Option<usize>,
    /// Squared chord to `site`; while there is none, the exclusive bound of the search.
    pub chord_2: f64,
}

impl Keep for Best {
    fn bound_2(&self) -> f64 {
        self.chord_2
    }

    fn offer(&mut self, site: usize, chord_2: f64) {
        self.site = Some(site);
        self.chord_2 = chord_2;
    }
}

/// The two nearest sites so far, for a search that also wants to know whether a second
/// accepted site lies within its bound.
pub(super) struct Best2 {
    pub site: Option<usize>,
    /// Squared chord to `site`; while there is none, the exclusive bound of the search.
    pub first_2: f64,
    /// Squared chord to the second nearest accepted site; the exclusive bound while there is
    /// none. Nodes are pruned against this one.
    pub second_2: f64,
}

impl Keep for Best2 {
    fn bound_2(&self) -> f64 {
        self.second_2
    }

    fn offer(&mut self, site: usize, chord_2: f64) {
        if chord_2 < self.first_2 {
            self.second_2 = self.first_2;
            self.first_2 = chord_2;
            self.site = Some(site);
        } else {
            self.second_2 = chord_2;
        }
    }
}

/// Child nodes sorted on the stack; a node with more (rstar packs about six) is walked
/// unsorted, slower but exact.
const MAX_SORTED: usize = 16;

#[inline]
fn point_2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let (x, y, z) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    x * x + y * y + z * z
}

/// Squared distance from `q` to the box (0 inside).
#[inline]
fn box_2(q: &[f64; 3], lower: &[f64; 3], upper: &[f64; 3]) -> f64 {
    let mut sum = 0.0;
    for i in 0..3 {
        let d = (lower[i] - q[i]).max(q[i] - upper[i]).max(0.0);
        sum += d * d;
    }
    sum
}

/// Offers `best` every site accepted by `filter` below node `n` that is nearer than its bound,
/// children nearest first (monomorphised per [`Keep`], so each search pays only for itself).
pub(super) fn nearest<T>(
    ix: &SiteIndex<T>,
    n: usize,
    q: &[f64; 3],
    filter: &mut impl FnMut(usize) -> bool,
    best: &mut impl Keep,
) {
    let node = &ix.nodes[n];
    for i in node.sites.0 as usize..node.sites.1 as usize {
        let d = point_2(q, &ix.points[i]);
        if d < best.bound_2() && filter(i) {
            best.offer(i, d);
        }
    }
    let (first, end) = (node.nodes.0 as usize, node.nodes.1 as usize);
    if end - first > MAX_SORTED {
        for c in first..end {
            let child = &ix.nodes[c];
            if box_2(q, &child.lower, &child.upper) < best.bound_2() {
                nearest(ix, c, q, filter, best);
            }
        }
        return;
    }
    let mut order = [(0.0f64, 0u32); MAX_SORTED];
    let mut len = 0;
    for c in first..end {
        let child = &ix.nodes[c];
        let d = box_2(q, &child.lower, &child.upper);
        if d < best.bound_2() {
            // Insertion sort of a handful of entries.
            let mut j = len;
            while j > 0 && order[j - 1].0 > d {
                order[j] = order[j - 1];
                j -= 1;
            }
            order[j] = (d, c as u32);
            len += 1;
        }
    }
    for &(d, c) in &order[..len] {
        if d < best.bound_2() {
            nearest(ix, c as usize, q, filter, best);
        }
    }
}

/// Calls `f` with every site below node `n` whose squared chord to `q` is at most `max_2`.
pub(super) fn within<T>(
    ix: &SiteIndex<T>,
    n: usize,
    q: &[f64; 3],
    max_2: f64,
    f: &mut impl FnMut(usize),
) {
    let node = &ix.nodes[n];
    for i in node.sites.0 as usize..node.sites.1 as usize {
        if point_2(q, &ix.points[i]) <= max_2 {
            f(i);
        }
    }
    for c in node.nodes.0 as usize..node.nodes.1 as usize {
        let child = &ix.nodes[c];
        if box_2(q, &child.lower, &child.upper) <= max_2 {
            within(ix, c, q, max_2, f);
        }
    }
}

/// A queued node or site of the ordered walk, nearest first.
#[derive(PartialEq)]
struct Queued {
    chord_2: f64,
    site: bool,
    index: usize,
}

impl Eq for Queued {}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap. Sites before nodes at equal distance, so a site
        // is yielded as soon as nothing can be nearer.
        other
            .chord_2
            .total_cmp(&self.chord_2)
            .then(self.site.cmp(&other.site))
    }
}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Sites in ascending distance: (site index, squared chord).
pub(super) struct Ordered<'a, T> {
    ix: &'a SiteIndex<T>,
    q: [f64; 3],
    heap: BinaryHeap<Queued>,
}

impl<'a, T> Ordered<'a, T> {
    pub(super) fn new(ix: &'a SiteIndex<T>, q: [f64; 3]) -> Self {
        let mut heap = BinaryHeap::new();
        if !ix.nodes.is_empty() {
            heap.push(Queued {
                chord_2: 0.0,
                site: false,
                index: 0,
            });
        }
        Self { ix, q, heap }
    }
}

impl<T> Iterator for Ordered<'_, T> {
    type Item = (usize, f64);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(top) = self.heap.pop() {
            if top.site {
                return Some((top.index, top.chord_2));
            }
            let node = &self.ix.nodes[top.index];
            for i in node.sites.0 as usize..node.sites.1 as usize {
                let chord_2 = point_2(&self.q, &self.ix.points[i]);
                self.heap.push(Queued {
                    chord_2,
                    site: true,
                    index: i,
                });
            }
            for c in node.nodes.0 as usize..node.nodes.1 as usize {
                let child = &self.ix.nodes[c];
                let chord_2 = box_2(&self.q, &child.lower, &child.upper);
                self.heap.push(Queued {
                    chord_2,
                    site: false,
                    index: c,
                });
            }
        }
        None
    }
}
