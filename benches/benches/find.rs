//! A whole FindCloudlet decision without network: `dme::matcher::find` (per-carrier R-trees,
//! lazily merged, very-close randomisation on as in production) against `dme::baseline::find`
//! (upstream's linear scan) on the same table, at 100 / 10k / 100k instances of one app (four
//! carriers plus a padded public cloud, sites at world cities), and at 1M instances spread over
//! 10k apps of 100 instances each on 10k shared cloudlets.

// The shipped binary's allocator (src/main.rs), so allocation costs match production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use dme::Tables;
use dme::tables::{AppKeyRef, AppTable, MatchSettings};
use edgeplane_benches::{Query, RegionSpec, World, app_key, queries, region};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

type Finder = for<'a> fn(
    &'a AppTable,
    &MatchSettings,
    &str,
    geodata::LatLon,
    usize,
    &mut SmallRng,
) -> dme::matcher::Results<'a>;

fn matcher<'a>(
    t: &'a AppTable,
    s: &MatchSettings,
    c: &str,
    at: geodata::LatLon,
    l: usize,
    r: &mut SmallRng,
) -> dme::matcher::Results<'a> {
    dme::matcher::find(t, s, c, at, l, r)
}

fn baseline<'a>(
    t: &'a AppTable,
    s: &MatchSettings,
    c: &str,
    at: geodata::LatLon,
    l: usize,
    r: &mut SmallRng,
) -> dme::matcher::Results<'a> {
    dme::baseline::find(t, s, c, at, l, r)
}

/// Benchmarks one finder over `(app, query)` pairs taken in turn.
fn run(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    size: usize,
    settings: &MatchSettings,
    work: &[(Arc<AppTable>, Query)],
    f: Finder,
) {
    g.bench_function(BenchmarkId::new(name, size), |b| {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut i = 0usize;
        b.iter(|| {
            let (app, q) = &work[i % work.len()];
            i += 1;
            let found = f(app, settings, q.carrier, q.at, 1, &mut rng);
            black_box(found.first().map(|f| f.distance_km))
        });
    });
}

fn one_app(c: &mut Criterion) {
    let world = World::load().unwrap();
    let qs = queries(&world, 4096, 11);
    for n in [100, 10_000, 100_000] {
        let tables = Tables::from_deployment(&region(&world, &RegionSpec::one_app(n)), 1).unwrap();
        let app = tables.apps().next().unwrap().clone();
        let work: Vec<_> = qs.iter().map(|q| (app.clone(), q.clone())).collect();
        let mut g = c.benchmark_group("find_one_app");
        g.sample_size(if n >= 100_000 { 10 } else { 50 })
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(if n >= 100_000 { 4 } else { 2 }));
        run(&mut g, "matcher", n, &tables.settings, &work, matcher);
        run(&mut g, "baseline", n, &tables.settings, &work, baseline);
        g.finish();
    }
}

fn many_apps(c: &mut Criterion) {
    let world = World::load().unwrap();
    let spec = RegionSpec::many_apps(10_000, 100, 10_000);
    let tables = {
        let doc = region(&world, &spec);
        Tables::from_deployment(&doc, 1).unwrap()
    };
    let mut rng = SmallRng::seed_from_u64(5);
    let work: Vec<_> = queries(&world, 4096, 13)
        .into_iter()
        .map(|q| {
            let key = app_key(rng.random_range(0..spec.apps));
            let kref = AppKeyRef {
                organization: &key.organization,
                name: &key.name,
                version: &key.version,
            };
            (tables.app(&kref).unwrap().clone(), q)
        })
        .collect();
    let mut g = c.benchmark_group("find_10k_apps");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let n = spec.instances();
    run(&mut g, "matcher", n, &tables.settings, &work, matcher);
    run(&mut g, "baseline", n, &tables.settings, &work, baseline);
    // The same, with the app looked up by key first (as the service does from the cookie).
    let keys: Vec<_> = work
        .iter()
        .map(|(app, q)| (app.app.key.clone(), q.clone()))
        .collect();
    g.bench_function(BenchmarkId::new("lookup_and_matcher", n), |b| {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut i = 0usize;
        b.iter(|| {
            let (key, q) = &keys[i % keys.len()];
            i += 1;
            let kref = AppKeyRef {
                organization: &key.organization,
                name: &key.name,
                version: &key.version,
            };
            let app = tables.app(&kref).unwrap();
            let found = dme::matcher::find(app, &tables.settings, q.carrier, q.at, 1, &mut rng);
            black_box(found.first().map(|f| f.distance_km))
        });
    });
    g.finish();
}

criterion_group!(benches, one_app, many_apps);
criterion_main!(benches);
