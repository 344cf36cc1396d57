//! The upstream DME's search, reimplemented as a linear scan: every instance of every searched
//! carrier bucket, haversine per instance, insertion into a bounded sorted list with the pairwise
//! very-close coin flip. It is the baseline the benchmarks compare against and the oracle the
//! matcher's tests check against (with randomisation off both must agree exactly).

use geodata::LatLon;
use rand::Rng;

use crate::matcher::{Found, Results};
use crate::tables::{AppTable, MatchSettings};

/// Upstream's algorithm over the same table.
pub fn find<'a>(
    table: &'a AppTable,
    settings: &MatchSettings,
    carrier: &str,
    at: LatLon,
    limit: usize,
    rng: &mut impl Rng,
) -> Results<'a> {
    let mut list = Results::new();
    for bucket in &table.buckets {
        let org = &*bucket.org;
        if !(carrier.is_empty() || bucket.public_cloud || org == carrier) {
            continue;
        }
        let padding = if bucket.public_cloud && !carrier.is_empty() && carrier != org {
            settings.public_cloud_padding_km
        } else {
            0.0
        };
        let alliance = (!carrier.is_empty()).then_some(&bucket.alliance);
        let ids = bucket
            .own
            .iter()
            .chain(alliance.into_iter().flat_map(|a| a.iter()));
        for &id in ids {
            let inst = &table.insts[id as usize];
            if !table.usable.get(id) {
                continue;
            }
            let found = Found {
                inst,
                name: table.name(inst),
                distance_km: at.distance_km(&inst.location) + padding,
                bucket_org: org,
            };
            insert(table, &mut list, found, limit, settings, rng);
        }
    }
    list
}

/// Upstream's bounded insertion: before the first entry that is farther (ties: key order), or,
/// when randomising, before a very-close entry on a coin flip.
fn insert<'a>(
    table: &AppTable,
    list: &mut Results<'a>,
    found: Found<'a>,
    limit: usize,
    settings: &MatchSettings,
    rng: &mut impl Rng,
) {
    // An instance reachable through two buckets keeps its best distance (as the matcher does).
    if let Some(i) = list.iter().position(|f| std::ptr::eq(f.inst, found.inst)) {
        if found.distance_km >= list[i].distance_km {
            return;
        }
        list.remove(i);
    }
    let mut pos = list.len();
    for (i, existing) in list.iter().enumerate() {
        let diff = (found.distance_km - existing.distance_km).abs();
        if settings.randomize_very_close && diff < settings.very_close_km {
            if rng.random_bool(0.5) {
                pos = i;
                break;
            }
            continue;
        }
        let closer = found.distance_km < existing.distance_km
            || (found.distance_km == existing.distance_km
                && (found.name, table.organization(found.inst))
                    < (existing.name, table.organization(existing.inst)));
        if closer {
            pos = i;
            break;
        }
    }
    if pos < limit {
        list.insert(pos, found);
        list.truncate(limit);
    }
}
