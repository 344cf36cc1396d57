//! Depth-first branch-and-bound walks over the nodes of the index's rstar tree, with the
//! distance arithmetic written out for 3-D points. rstar's own nearest-neighbour search is
//! generic over dimensions and number types and keeps a priority queue of nodes; the DME runs
//! one search per carrier bucket on every FindCloudlet, so this module does the same work with
//! a few comparisons per child and nothing but the call stack (the tree is a handful of levels
//! deep).

use rstar::{ParentNode, RTreeNode};

use super::Entry;

/// The best site so far of a nearest search.
pub(super) struct Best<'a, T> {
    pub entry: Option<&'a Entry<T>>,
    /// Squared chord to `entry` (infinity when there is none).
    pub chord_2: f64,
}

/// Children sorted on the stack. rstar's nodes hold at most 6 (its default parameters; the bulk
/// loader may put a few more in one); a node with more is walked unsorted, slower but exact.
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

#[inline]
fn child_2<T>(q: &[f64; 3], child: &RTreeNode<Entry<T>>) -> f64 {
    match child {
        RTreeNode::Leaf(e) => point_2(q, e.geom()),
        RTreeNode::Parent(p) => {
            let env = p.envelope();
            box_2(q, &env.lower(), &env.upper())
        }
    }
}

/// Finds the nearest entry accepted by `filter` below `node` that is nearer than `best`.
pub(super) fn nearest<'a, T>(
    node: &'a ParentNode<Entry<T>>,
    q: &[f64; 3],
    filter: &mut impl FnMut(&T) -> bool,
    best: &mut Best<'a, T>,
) {
    let children = node.children();
    if children.len() > MAX_SORTED {
        for child in children {
            visit(child, child_2(q, child), q, filter, best);
        }
        return;
    }
    let mut order = [(0.0f64, 0u8); MAX_SORTED];
    let mut n = 0;
    for (i, child) in children.iter().enumerate() {
        let d = child_2(q, child);
        if d < best.chord_2 {
            // Insertion sort: at most MAX_SORTED entries, mostly already in place.
            let mut j = n;
            while j > 0 && order[j - 1].0 > d {
                order[j] = order[j - 1];
                j -= 1;
            }
            order[j] = (d, i as u8);
            n += 1;
        }
    }
    for &(d, i) in &order[..n] {
        visit(&children[i as usize], d, q, filter, best);
    }
}

#[inline]
fn visit<'a, T>(
    child: &'a RTreeNode<Entry<T>>,
    d: f64,
    q: &[f64; 3],
    filter: &mut impl FnMut(&T) -> bool,
    best: &mut Best<'a, T>,
) {
    if d >= best.chord_2 {
        return;
    }
    match child {
        RTreeNode::Leaf(e) => {
            if filter(&e.data) {
                best.entry = Some(e);
                best.chord_2 = d;
            }
        }
        RTreeNode::Parent(p) => nearest(p, q, filter, best),
    }
}

/// Calls `f` with every entry below `node` whose squared chord to `q` is at most `max_2`.
pub(super) fn within<'a, T>(
    node: &'a ParentNode<Entry<T>>,
    q: &[f64; 3],
    max_2: f64,
    f: &mut impl FnMut(&'a Entry<T>),
) {
    for child in node.children() {
        if child_2(q, child) <= max_2 {
            match child {
                RTreeNode::Leaf(e) => f(e),
                RTreeNode::Parent(p) => within(p, q, max_2, f),
            }
        }
    }
}
