//! Runs N FindCloudlet decisions (matcher or linear baseline) on the 10k-instance bench table,
//! for instruction counting under `valgrind --tool=callgrind`, which is repeatable on a noisy
//! shared machine where wall-clock benchmarks are not: run it with two N and subtract to
//! cancel the set-up.
//!
//! `find_icount matcher|baseline|service N [INSTANCES]` (`service`: `Dme::find_cloudlet` whole,
//! with registered clients' cookies, so session verification, the decision and the signed reply)

use std::hint::black_box;

use dme::Tables;
use edgeplane_benches::{RegionSpec, World, queries, region};
use rand::SeedableRng;
use rand::rngs::SmallRng;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("matcher");
    let n: usize = args
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let size: usize = args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let world = World::load()?;
    let qs = queries(&world, 4096, 11);
    let tables = Tables::from_deployment(&region(&world, &RegionSpec::one_app(size)), 1)?;
    let app = tables.apps().next().expect("one app").clone();
    let settings = &tables.settings;
    if which == "service" {
        return service(tables, &qs, n);
    }
    let mut rng = SmallRng::seed_from_u64(3);
    let mut sum = 0.0;
    for i in 0..n {
        let q = &qs[i % qs.len()];
        let found = match which {
            "baseline" => dme::baseline::find(&app, settings, q.carrier, q.at, 1, &mut rng),
            _ => dme::matcher::find(&app, settings, q.carrier, q.at, 1, &mut rng),
        };
        sum += found.first().map_or(0.0, |f| f.distance_km);
    }
    println!("{which} {n}: {}", black_box(sum));
    Ok(())
}

fn service(tables: Tables, qs: &[edgeplane_benches::Query], n: usize) -> anyhow::Result<()> {
    let keys = dme::cookie::KeyRing::new(vec![("k1".into(), vec![7; 64])])?;
    let dme = dme::Dme::new(tables, keys, dme::DmeConfig::default(), None);
    let ctx = dme::Ctx::now(Some(std::net::Ipv4Addr::new(10, 1, 2, 3).into()));
    let reqs = edgeplane_benches::registered_finds(&dme, &dme::fixture::app_key(), qs, ctx)?;
    let mut bytes = 0;
    for i in 0..n {
        let reply = dme
            .find_cloudlet(&reqs[i % reqs.len()], ctx)
            .map_err(|e| anyhow::anyhow!(e.message))?;
        bytes += black_box(reply).edge_events_cookie.len();
    }
    println!("service {n}: {bytes}");
    Ok(())
}
