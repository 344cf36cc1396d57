//! Tests of [`super`]: upstream's statistics vectors, buckets and tiles.

use super::*;

fn stats(v: &[f64]) -> Stats {
    statistics(v.iter().copied())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn statistics_follow_upstream_rules() {
    assert_eq!(stats(&[]), Stats::default());
    assert_eq!(stats(&[-1.0, -2.0]), Stats::default());
    let one = stats(&[0.0]);
    assert_eq!(
        (one.num_samples, one.avg, one.variance, one.std_dev),
        (1, 0.0, 0.0, 0.0)
    );
    let mixed = stats(&[-1.0, 2.0, -3.0, 4.0]);
    assert_eq!(mixed.num_samples, 2);
    assert_eq!((mixed.min, mixed.max, mixed.avg), (2.0, 4.0, 3.0));
    assert!(close(mixed.variance, 2.0) && close(mixed.std_dev, 2f64.sqrt()));
    let many: Vec<f64> = (1..=9999).map(f64::from).collect();
    let s = stats(&many);
    assert_eq!((s.num_samples, s.min, s.max), (9999, 1.0, 9999.0));
    assert!(close(s.avg, 5000.0));
    // Unbiased variance of 1..n is n(n+1)/12.
    assert!(close(s.variance, 9999.0 * 10000.0 / 12.0), "{}", s.variance);
}

#[test]
fn rolling_equals_recomputation_over_batches() {
    let mut r = Rolling::default();
    r.add([1.12, 2.354, -7.0].into_iter());
    r.add([3.85, 4.23, 5.33].into_iter());
    let all = stats(&[1.12, 2.354, 3.85, 4.23, 5.33]);
    assert_eq!(r.n, 5);
    assert!(close(r.avg, all.avg) && close(r.variance(), all.variance));
    assert_eq!((r.min, r.max), (1.12, 5.33));
    // Upstream's e2e example: 0s:4, 5ms:1.
    assert_eq!(r.buckets, [4, 1, 0, 0, 0, 0]);
}

#[test]
fn buckets_by_lower_bound_of_truncated_ms() {
    for (ms, b) in [
        (0.0, 0),
        (4.99, 0),
        (5.0, 1),
        (9.9, 1),
        (10.0, 2),
        (49.0, 3),
        (50.0, 4),
        (99.9, 4),
        (100.0, 5),
        (1e9, 5),
    ] {
        assert_eq!(bucket(ms), b, "{ms}");
    }
}

#[test]
fn tiles_match_upstream_examples() {
    let t = |lat, lon| location_tile(LatLon::new(lat, lon).unwrap(), 2);
    assert_eq!(
        t(31.0, -91.0),
        "-90.998922,30.984896_-91.016888,31.002985_2"
    );
    assert_eq!(
        t(35.0, -95.0),
        "-94.987424,34.982364_-95.005390,35.000452_2"
    );
}

#[test]
fn metrics_render_escaped_series() {
    let m = Metrics::default();
    let mut labels = String::new();
    label(&mut labels, "app", "a\"b");
    label(&mut labels, "cloudlet", "c");
    m.latency(&labels, [1.0, 7.0, 120.0].into_iter(), 3);
    m.session(&labels);
    m.session(&labels);
    let mut out = String::new();
    m.render(&mut out);
    assert!(
        out.contains(r#"dme_edge_latency_ms_bucket{app="a\"b",cloudlet="c",le="5"} 1"#),
        "{out}"
    );
    assert!(out.contains(r#"dme_edge_latency_ms_bucket{app="a\"b",cloudlet="c",le="+Inf"} 3"#));
    assert!(out.contains(r#"dme_edge_sessions_total{app="a\"b",cloudlet="c"} 2"#));
    assert!(out.contains(r#"dme_edge_signal_strength{app="a\"b",cloudlet="c"} 3"#));
}
