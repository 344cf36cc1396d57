//! FindCloudlet's decision, free of I/O: (app table, settings, carrier, location, limit, random
//! source) → the ranked instances. Same semantics as the upstream DME (carrier buckets, alliance
//! orgs, public clouds competing with a distance padding, usability, ties by key, very-close
//! sharing), answered from spatial indexes instead of a linear scan.
//!
//! One deliberate difference: upstream's very-close rule flips a coin pairwise during insertion,
//! which is not uniform when more than two instances are near-equal. Here each result position is
//! drawn uniformly among the remaining candidates within `very_close_km` of the nearest remaining
//! one, so n near-equal instances each win 1/n of the time.

use std::cmp::Ordering;

use geodata::{LatLon, SiteIndex};
use rand::Rng;
use smallvec::SmallVec;

use crate::tables::{AppTable, Inst, MatchSettings};

/// One ranked result.
#[derive(Clone, Copy, Debug)]
pub struct Found<'a> {
    pub inst: &'a Inst,
    /// The instance's name.
    pub name: &'a str,
    /// Great-circle distance plus any public-cloud padding, in km.
    pub distance_km: f64,
    /// The carrier bucket the instance was found under (the alliance org for alliance hits).
    pub bucket_org: &'a str,
}

/// Results of one search; inline for the common limits so a search does not allocate for them.
pub type Results<'a> = SmallVec<[Found<'a>; 4]>;

/// Finds up to `limit` usable instances of `table`'s app for a client of `carrier` (already
/// translated from an operator code) at `at`.
pub fn find<'a>(
    table: &'a AppTable,
    settings: &MatchSettings,
    carrier: &str,
    at: LatLon,
    limit: usize,
    rng: &mut impl Rng,
) -> Results<'a> {
    let mut pool = Results::new();
    if limit == 0 {
        return pool;
    }
    let window = if settings.randomize_very_close {
        settings.very_close_km
    } else {
        0.0
    };
    collect_candidates(table, settings, carrier, at, limit, window, &mut pool);
    rank(&mut pool, limit, window, rng);
    pool
}

/// One searched index: a bucket's own or alliance instances, with the bucket's padding.
struct Source<'a> {
    index: &'a SiteIndex<u32>,
    padding: f64,
    org: &'a str,
}

/// The indexes a client of `carrier` is matched against: every bucket for a client that names
/// no carrier; otherwise its carrier's bucket (own and alliance instances) and the public
/// clouds, padded unless the public cloud is the client's carrier.
fn sources<'a>(
    table: &'a AppTable,
    settings: &MatchSettings,
    carrier: &str,
) -> SmallVec<[Source<'a>; 6]> {
    let mut out = SmallVec::new();
    for bucket in &table.buckets {
        let org = &*bucket.org;
        let searched = carrier.is_empty() || bucket.public_cloud || org == carrier;
        if !searched {
            continue;
        }
        let padding = if bucket.public_cloud && !carrier.is_empty() && carrier != org {
            settings.public_cloud_padding_km
        } else {
            0.0
        };
        if !bucket.own.is_empty() {
            out.push(Source {
                index: &bucket.own,
                padding,
                org,
            });
        }
        // Alliance instances only serve clients that name a carrier.
        if !carrier.is_empty() && !bucket.alliance.is_empty() {
            out.push(Source {
                index: &bucket.alliance,
                padding,
                org,
            });
        }
    }
    out
}

fn usable(table: &AppTable, id: u32) -> Option<&Inst> {
    if !table.usable.get(id) {
        return None;
    }
    table.insts.get(id as usize)
}

/// Gathers, in ascending padded distance, every usable candidate that could be chosen: at least
/// `limit` of them, plus all within `window` of the limit-th (the very-close draw may pick those).
fn collect_candidates<'a>(
    table: &'a AppTable,
    settings: &MatchSettings,
    carrier: &str,
    at: LatLon,
    limit: usize,
    window: f64,
    pool: &mut Results<'a>,
) {
    let sources = sources(table, settings, carrier);
    if limit == 1 {
        return collect_one(table, &sources, at, window, pool);
    }
    let mut iters: SmallVec<[_; 6]> = sources
        .iter()
        .map(|s| s.index.nearest_iter(at).peekable())
        .collect();
    loop {
        // Pick the source whose next candidate is nearest once padded.
        let mut best: Option<(usize, f64)> = None;
        for (i, it) in iters.iter_mut().enumerate() {
            if let Some(&(_, d)) = it.peek() {
                let d = d + sources[i].padding;
                if best.is_none_or(|(_, bd)| d < bd) {
                    best = Some((i, d));
                }
            }
        }
        let Some((i, approx)) = best else { break };
        if pool.len() >= limit && approx >= pool[limit - 1].distance_km + window + SLACK_KM {
            break;
        }
        let Some((&id, _)) = iters[i].next() else {
            break;
        };
        if let Some(inst) = usable(table, id) {
            add(table, pool, inst, &sources[i], at);
        }
    }
}

/// The candidates for one result (FindCloudlet), without a merged ordered walk: each source's
/// nearest usable instance (a depth-first search bounded by the best padded distance found so
/// far plus the window, so sources that cannot compete are dismissed after a few box tests,
/// unpadded sources first because they usually win) gives the best padded distance; then only
/// sources that reach within the window of it are searched for every usable instance inside.
/// Allocation-free, and the same candidate set as the general walk: everything padded-nearer
/// than best + window.
fn collect_one<'a>(
    table: &'a AppTable,
    sources: &[Source<'a>],
    at: LatLon,
    window: f64,
    pool: &mut Results<'a>,
) {
    // Per source: its nearest usable instance, padded distance, and the padded distance of
    // its second nearest (infinite if none within reach).
    let mut nearest: SmallVec<[(u32, f64, f64); 6]> =
        SmallVec::from_elem((0, f64::INFINITY, f64::INFINITY), sources.len());
    let mut best = f64::INFINITY;
    for padded in [false, true] {
        for (s, n) in sources.iter().zip(nearest.iter_mut()) {
            if (s.padding > 0.0) != padded {
                continue;
            }
            let reach = best + window + SLACK_KM - s.padding;
            if let Some((&id, km, second)) = s
                .index
                .nearest2_within(at, reach, |&id| usable(table, id).is_some())
            {
                let second = second.map_or(f64::INFINITY, |k| k + s.padding);
                *n = (id, km + s.padding, second);
                best = best.min(n.1);
            }
        }
    }
    if !best.is_finite() {
        return;
    }
    let radius = best + window + SLACK_KM;
    // The usual case: one source reaches the radius and nothing else is inside. The one
    // candidate keeps the index's distance (chord-derived, equal to haversine within 1e-9 km)
    // instead of paying for haversine's trigonometry again; its distance decides nothing.
    let mut reaching = sources.iter().zip(&nearest).filter(|(_, n)| n.1 <= radius);
    if let (Some((s, &(id, d, second))), None) = (reaching.next(), reaching.next())
        && second > radius
        && let Some(inst) = usable(table, id)
    {
        pool.push(Found {
            inst,
            name: table.name(inst),
            distance_km: d,
            bucket_org: s.org,
        });
        return;
    }
    for (s, &(id, d, second)) in sources.iter().zip(&nearest) {
        if d > radius {
            continue;
        }
        if second > radius {
            // The source's only usable instance within the radius is its nearest (the search
            // reached at least as far as the radius): no range search needed.
            if let Some(inst) = usable(table, id) {
                add(table, pool, inst, s, at);
            }
            continue;
        }
        s.index.for_each_within_km(at, radius - s.padding, |&id| {
            if let Some(inst) = usable(table, id) {
                add(table, pool, inst, s, at);
            }
        });
    }
}

/// Adds a usable instance found through `source` to the sorted pool. An instance reachable
/// through two buckets keeps its best (smallest) distance.
fn add<'a>(
    table: &'a AppTable,
    pool: &mut Results<'a>,
    inst: &'a Inst,
    source: &Source<'a>,
    at: LatLon,
) {
    let distance_km = at.distance_km(&inst.location) + source.padding;
    let found = Found {
        inst,
        name: table.name(inst),
        distance_km,
        bucket_org: source.org,
    };
    if let Some(pos) = pool.iter().position(|f| std::ptr::eq(f.inst, inst)) {
        if distance_km < pool[pos].distance_km {
            pool.remove(pos);
        } else {
            return;
        }
    }
    let pos = pool.partition_point(|f| by_distance_then_key(table, f, &found) == Ordering::Less);
    pool.insert(pos, found);
}

/// The index's chord-derived distances and haversine agree to ~1e-9 km; this margin keeps a
/// candidate at the boundary from being cut off by rounding.
const SLACK_KM: f64 = 1e-6;

fn by_distance_then_key(t: &AppTable, a: &Found<'_>, b: &Found<'_>) -> Ordering {
    a.distance_km
        .total_cmp(&b.distance_km)
        .then_with(|| a.name.cmp(b.name))
        .then_with(|| t.organization(a.inst).cmp(t.organization(b.inst)))
}

/// Orders the first `limit` positions: each position takes, uniformly at random, one of the
/// remaining candidates within `window` km of the nearest remaining one (window 0: the nearest,
/// ties by key). Truncates to `limit`.
fn rank(pool: &mut Results<'_>, limit: usize, window: f64, rng: &mut impl Rng) {
    let n = pool.len().min(limit);
    if window > 0.0 {
        for pos in 0..n {
            let nearest = pool[pos].distance_km;
            let near = pool[pos..]
                .iter()
                .take_while(|f| f.distance_km - nearest < window)
                .count();
            if near > 1 {
                let pick = pos + rng.random_range(0..near);
                // Move the pick to `pos`, keeping the rest in order.
                pool[pos..=pick].rotate_right(1);
            }
        }
    }
    pool.truncate(limit);
}

#[cfg(test)]
mod tests;
