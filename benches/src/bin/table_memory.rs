//! Table memory per app instance: builds a region (default 10k apps × 100 instances = 1M
//! instances on 10k shared cloudlets), then measures what `Tables::from_deployment` adds, two
//! ways:
//! - process RSS (`VmRSS`) before and after the build, with the deployment document already
//!   built and still alive (so it is not counted). Temporaries the build frees but the allocator
//!   keeps resident inflate this figure a little;
//! - live heap bytes, counted by a thin wrapper around the system allocator: exact requested
//!   bytes, without malloc's own per-block overhead (about 8–16 bytes per allocation, so the
//!   allocation count is reported too).
//!
//! Then a breakdown by structure (instance records, their strings, spatial indexes, the rest).
//!
//! Usage: `cargo run --release -p edgeplane-benches --bin table_memory -- [APPS] [PER_APP] [CLOUDLETS]`

// The unsafe items of this binary are the counting allocator below (`GlobalAlloc` can only be
// implemented in an `unsafe impl`; it forwards every call unchanged to `System`) and one call to
// glibc's `malloc_trim`, which returns freed heap pages to the kernel so that RSS shows what is
// live. They exist only in this measuring tool, never in a shipped binary.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};

use dme::Tables;
use edgeplane_benches::{RegionSpec, World, region, rss_bytes};
use geodata::SiteIndex;

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

fn grew(by: isize) {
    let now = LIVE_BYTES.fetch_add(by, Relaxed) + by;
    PEAK_BYTES.fetch_max(usize::try_from(now).unwrap_or(0), Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees hold; the counters are plain atomics and never touch the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size() as isize);
            LIVE_BLOCKS.fetch_add(1, Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size() as isize);
            LIVE_BLOCKS.fetch_add(1, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: glibc's malloc_trim takes a byte count and only releases free heap memory.
    unsafe { malloc_trim(0) };
    true
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}

fn heap() -> (isize, isize) {
    (LIVE_BYTES.load(Relaxed), LIVE_BLOCKS.load(Relaxed))
}

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / (1024.0 * 1024.0))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let apps = args.first().copied().unwrap_or(10_000);
    let per_app = args.get(1).copied().unwrap_or(100);
    let cloudlets = args.get(2).copied().unwrap_or(10_000);
    let spec = RegionSpec::many_apps(apps, per_app, cloudlets);
    let n = spec.instances() as f64;

    let world = World::load()?;
    let t = std::time::Instant::now();
    let doc = region(&world, &spec);
    let doc_time = t.elapsed();
    trim();
    let (h0, b0) = heap();
    let rss0 = rss_bytes()?;
    PEAK_BYTES.store(usize::try_from(h0).unwrap_or(0), Relaxed);
    let t = std::time::Instant::now();
    let tables = Tables::from_deployment(&doc, 1)?;
    let build_time = t.elapsed();
    let rss1 = rss_bytes()?;
    let (h1, b1) = heap();
    // Temporaries of the build (freed) that the allocator still holds count in rss1; trimmed,
    // RSS shows the live tables (plus fragmentation). The document was trimmed-in before rss0
    // too, so both sides are measured alike.
    let rss2 = trim().then(rss_bytes).transpose()?;
    let peak = PEAK_BYTES.load(Relaxed) as f64 - h0 as f64;

    println!(
        "region: {apps} apps x {per_app} instances = {} instances on {} cloudlets \
         (document built in {doc_time:.2?}, tables in {build_time:.2?})",
        spec.instances(),
        spec.cloudlets
    );
    let rss = rss1 as f64 - rss0 as f64;
    let live = (h1 - h0) as f64;
    let blocks = (b1 - b0) as f64;
    println!(
        "RSS delta:        {:>10}  = {:>6.1} bytes/instance",
        mib(rss),
        rss / n
    );
    if let Some(rss2) = rss2 {
        let rss = rss2 as f64 - rss0 as f64;
        println!(
            "RSS delta after malloc_trim: {:>10}  = {:>6.1} bytes/instance",
            mib(rss),
            rss / n
        );
    }
    println!(
        "live heap delta:  {:>10}  = {:>6.1} bytes/instance ({:.2} allocations/instance; \
         peak during build {:.1} bytes/instance)",
        mib(live),
        live / n,
        blocks / n,
        peak / n
    );

    // Breakdown, from the public structure of the tables.
    let mut inst_vecs = 0usize;
    let mut names = 0usize;
    let mut uri_bytes = 0usize;
    let mut cloudlets_seen = HashSet::new();
    let mut index_entries = 0usize;
    let mut bucket_count = 0usize;
    let mut index_sets: Vec<Vec<(geodata::LatLon, u32)>> = Vec::new();
    for app in tables.apps() {
        inst_vecs += app.insts.capacity() * size_of::<dme::tables::Inst>();
        for inst in &app.insts {
            names += app.name(inst).len();
            uri_bytes += app.uri(inst).len();
            cloudlets_seen.insert(std::sync::Arc::as_ptr(&inst.cloudlet) as usize);
        }
        bucket_count += app.buckets.len();
        for b in &app.buckets {
            index_entries += b.own.len() + b.alliance.len();
            for idx in [&b.own, &b.alliance] {
                index_sets.push(
                    idx.iter()
                        .map(|&id| (app.insts[id as usize].location, id))
                        .collect(),
                );
            }
        }
    }
    // Rebuild the same indexes on their own to weigh them.
    let (i0, ib0) = heap();
    let rebuilt: Vec<SiteIndex<u32>> = index_sets
        .iter()
        .map(|set| SiteIndex::build(set.iter().copied()))
        .collect();
    let (i1, ib1) = heap();
    // The indexes live inline in their buckets; only their heap counts here.
    let index_bytes = (i1 - i0) as f64 - (rebuilt.capacity() * size_of::<SiteIndex<u32>>()) as f64;
    let index_blocks = (ib1 - ib0) as f64 - 1.0;
    drop(rebuilt);
    drop(index_sets);

    let row = |what: &str, bytes: f64| {
        println!(
            "  {what:<46} {:>10}  {:>6.1} B/inst  {:>5.1} %",
            mib(bytes),
            bytes / n,
            100.0 * bytes / live
        );
    };
    println!("breakdown of the live heap delta:");
    row(
        &format!(
            "Inst records ({} B each, Vec capacity)",
            size_of::<dme::tables::Inst>()
        ),
        inst_vecs as f64,
    );
    row(
        &format!("spatial indexes ({index_entries} entries, {index_blocks:.0} blocks)"),
        index_bytes,
    );
    row("instance URIs (in the name arena)", uri_bytes as f64);
    row("instance names (name arena)", names as f64);
    // Per-app structures: the Arc'd AppTable, its bucket array (each bucket holds two R-tree
    // roots inline), and the map entry.
    let per_app = tables.app_count() * (size_of::<dme::tables::AppTable>() + 16)
        + bucket_count * size_of::<dme::tables::Bucket>();
    row(
        &format!(
            "AppTable {} B + {bucket_count} Bucket structs {} B",
            size_of::<dme::tables::AppTable>(),
            size_of::<dme::tables::Bucket>()
        ),
        per_app as f64,
    );
    // Each app's API counters (a shard per core, up to four), weighed on one of them; 16 B for
    // the Arc's counts.
    let (c0, _) = heap();
    let one = dme::api_stats::AppStats::default();
    let (c1, _) = heap();
    drop(one);
    let counters = tables.app_count() as f64 * ((c1 - c0) as f64 + 16.0);
    row(
        &format!("API counters, {} B per app", c1 - c0 + 16),
        counters,
    );
    let accounted = inst_vecs as f64
        + index_bytes
        + uri_bytes as f64
        + names as f64
        + per_app as f64
        + counters;
    row(
        &format!(
            "rest: {} apps (strings, map), {} cloudlet recs",
            tables.app_count(),
            cloudlets_seen.len()
        ),
        live - accounted,
    );
    let verdict = if live / n <= 300.0 { "met" } else { "NOT met" };
    println!("target <= 300 bytes/instance (live heap): {verdict}");
    drop(tables);
    drop(doc);
    Ok(())
}
