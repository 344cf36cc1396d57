//! The spatial index alone (`geodata::SiteIndex`): nearest site, the five nearest, and bulk
//! build, at 100, 10k and 100k sites at world cities; queries at world cities too.

// The shipped binary's allocator (src/main.rs), so allocation costs match production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use edgeplane_benches::{World, queries};
use geodata::{LatLon, SiteIndex};
use rand::SeedableRng;
use rand::rngs::SmallRng;

const SIZES: [usize; 3] = [100, 10_000, 100_000];

fn sites(world: &World, n: usize) -> Vec<(LatLon, u32)> {
    let mut rng = SmallRng::seed_from_u64(n as u64);
    (0..n)
        .map(|i| {
            (
                world.point(&mut rng, 0.05),
                u32::try_from(i).unwrap_or(u32::MAX),
            )
        })
        .collect()
}

fn index(c: &mut Criterion) {
    let world = World::load().unwrap();
    let qs = queries(&world, 4096, 9);
    let mut g = c.benchmark_group("index");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in SIZES {
        let idx = SiteIndex::build(sites(&world, n));
        g.bench_with_input(BenchmarkId::new("nearest", n), &idx, |b, idx| {
            let mut i = 0usize;
            b.iter(|| {
                let q = &qs[i % qs.len()];
                i += 1;
                black_box(idx.nearest(q.at, |_| true))
            });
        });
        g.bench_with_input(BenchmarkId::new("nearest_iter_take5", n), &idx, |b, idx| {
            let mut i = 0usize;
            b.iter(|| {
                let q = &qs[i % qs.len()];
                i += 1;
                idx.nearest_iter(q.at)
                    .take(5)
                    .fold(0.0, |acc, (_, d)| acc + d)
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("index_build");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let items = sites(&world, n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &items, |b, items| {
            b.iter(|| SiteIndex::build(items.iter().copied()));
        });
    }
    g.finish();
}

criterion_group!(benches, index);
criterion_main!(benches);
