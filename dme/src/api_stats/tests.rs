use std::time::Duration;

use super::render::{escape_label_value, render_apps};
use super::*;

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

#[test]
fn bucket_bounds_are_inclusive_upper_bounds() {
    assert_eq!(bucket(0), 0);
    assert_eq!(bucket(100_000), 0, "exactly 0.1 ms is le=0.0001");
    assert_eq!(bucket(100_001), 1);
    assert_eq!(bucket(250_000), 1);
    assert_eq!(bucket(999_999), 3);
    assert_eq!(bucket(1_000_000), 3);
    assert_eq!(bucket(1_000_000_000), 11, "exactly 1 s is le=1");
    assert_eq!(bucket(1_000_000_001), 12, "slower is +Inf");
    assert_eq!(bucket(u64::MAX), 12);
    for (i, &bound) in LATENCY_BOUNDS_NS.iter().enumerate() {
        assert_eq!(bucket(bound), i);
        assert_eq!(bucket(bound + 1), i + 1);
        // The label says the same bound in seconds.
        let le: f64 = LATENCY_LE[i].parse().unwrap();
        assert!((le * 1e9 - bound as f64).abs() < 1e-3, "{le} vs {bound}");
    }
    assert_eq!(LATENCY_LE[BUCKETS - 1], "+Inf");
}

#[test]
fn shards_add_up() {
    let s = AppStats::with_shards(4);
    for shard in 0..4 {
        for _ in 0..=shard {
            s.record_in(shard, Method::FindCloudlet, Outcome::Found, us(50));
        }
        s.record_in(shard, Method::FindCloudlet, Outcome::NotFound, us(300));
        s.record_in(shard, Method::FindCloudlet, Outcome::Error, us(2_000));
    }
    s.record_in(9, Method::GetLocation, Outcome::Ok, us(1)); // out of range: shard 0
    let t = s.totals(Method::FindCloudlet);
    assert_eq!(t.found, 1 + 2 + 3 + 4);
    assert_eq!(t.not_found, 4);
    assert_eq!(t.errors, 4);
    assert_eq!(t.requests(), 18);
    assert_eq!(t.buckets[0], 10);
    assert_eq!(t.buckets[2], 4, "0.3 ms is le=0.0005");
    assert_eq!(t.buckets[4], 4, "2 ms is le=0.0025");
    assert_eq!(t.sum_ns, (10 * 50 + 4 * 300 + 4 * 2_000) * 1_000);
    assert_eq!(s.totals(Method::GetLocation).requests(), 1);
    let touched = s.touched();
    assert_eq!(
        touched,
        (1 << Method::FindCloudlet as u32) | (1 << Method::GetLocation as u32)
    );
    assert_eq!(s.totals(Method::RegisterClient), Totals::default());
}

#[test]
fn threads_record_without_losing_counts() {
    let s = AppStats::with_shards(2);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for i in 0..10_000u64 {
                    let outcome = if i % 10 == 0 {
                        Outcome::Error
                    } else {
                        Outcome::Ok
                    };
                    s.record(Method::RegisterClient, outcome, us(i % 3));
                }
            });
        }
    });
    let t = s.totals(Method::RegisterClient);
    assert_eq!(t.requests(), 40_000);
    assert_eq!(t.errors, 4_000);
    assert_eq!(t.sum_ns, 4 * (3333 + 2 * 3333) * 1_000);
}

#[test]
fn method_names_and_bits_are_distinct() {
    let names: std::collections::HashSet<_> = Method::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(names.len(), METHODS);
    for (i, m) in Method::ALL.iter().enumerate() {
        assert_eq!(*m as usize, i, "ALL is in declaration order");
    }
    assert!(Method::FindCloudlet.finds() && Method::PlatformFindCloudlet.finds());
    assert!(!Method::RegisterClient.finds());
}

#[test]
fn escaping_follows_the_text_format() {
    let mut s = String::new();
    escape_label_value("a\\b\"c\nd é", &mut s);
    assert_eq!(s, r#"a\\b\"c\nd é"#);
}

#[test]
fn renders_only_called_rpcs_with_cumulative_buckets() {
    let app = AppStats::with_shards(2);
    app.record_in(0, Method::FindCloudlet, Outcome::Found, us(80));
    app.record_in(1, Method::FindCloudlet, Outcome::NotFound, us(400));
    app.record_in(
        1,
        Method::FindCloudlet,
        Outcome::Error,
        Duration::from_secs(2),
    );
    let unknown = AppStats::with_shards(1);
    unknown.record_in(0, Method::RegisterClient, Outcome::Error, Duration::ZERO);
    let idle = AppStats::with_shards(1);
    let text = render_apps(
        [
            (["dev\"org", "app", "1.0"], &app),
            (["idle", "app", "1.0"], &idle),
            (["", "", ""], &unknown),
        ]
        .into_iter(),
    );
    let l = r#"apporg="dev\"org",app="app",ver="1.0",method="FindCloudlet""#;
    let u = r#"apporg="",app="",ver="",method="RegisterClient""#;
    for line in [
        format!("dme_api_requests_total{{{l}}} 3"),
        format!("dme_api_errors_total{{{l}}} 1"),
        format!("dme_api_found_cloudlet_total{{{l}}} 1"),
        format!("dme_api_not_found_total{{{l}}} 1"),
        format!("dme_api_latency_seconds_bucket{{{l},le=\"0.0001\"}} 1"),
        format!("dme_api_latency_seconds_bucket{{{l},le=\"0.00025\"}} 1"),
        format!("dme_api_latency_seconds_bucket{{{l},le=\"0.0005\"}} 2"),
        format!("dme_api_latency_seconds_bucket{{{l},le=\"1\"}} 2"),
        format!("dme_api_latency_seconds_bucket{{{l},le=\"+Inf\"}} 3"),
        format!("dme_api_latency_seconds_sum{{{l}}} 2.00048"),
        format!("dme_api_latency_seconds_count{{{l}}} 3"),
        format!("dme_api_requests_total{{{u}}} 1"),
        format!("dme_api_errors_total{{{u}}} 1"),
        format!("dme_api_latency_seconds_sum{{{u}}} 0"),
    ] {
        assert!(text.lines().any(|x| x == line), "missing {line} in\n{text}");
    }
    assert!(!text.contains("idle"), "an app never called has no series");
    assert!(
        !text.contains(
            r#"dme_api_found_cloudlet_total{apporg="",app="",ver="",method="RegisterClient""#
        ),
        "found / not found only for the finding RPCs"
    );
    // Each family once, its samples together, as the format requires.
    for name in [
        "dme_api_requests_total",
        "dme_api_errors_total",
        "dme_api_found_cloudlet_total",
        "dme_api_not_found_total",
        "dme_api_latency_seconds",
    ] {
        assert_eq!(text.matches(&format!("# TYPE {name} ")).count(), 1);
    }
    assert_eq!(
        text.lines().filter(|l| l.contains("_bucket{")).count(),
        2 * BUCKETS
    );
}

#[tokio::test]
async fn scrapes_share_a_render_only_if_it_started_after_them() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    let scrapes = Scrapes::default();
    let renders = Arc::new(AtomicUsize::new(0));
    let render = || {
        let renders = renders.clone();
        move || format!("render {}", renders.fetch_add(1, Relaxed))
    };
    assert_eq!(&scrapes.get(render()).await.unwrap()[..], b"render 0");
    // Sequential scrapes each see a fresh render.
    assert_eq!(&scrapes.get(render()).await.unwrap()[..], b"render 1");
    assert!(scrapes.get(|| panic!("render failed")).await.is_none());
    assert_eq!(&scrapes.get(render()).await.unwrap()[..], b"render 2");
}
