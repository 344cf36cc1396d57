//! A down or silent InfluxDB never holds up collection: points beyond the buffer are dropped
//! and counted, the batches that were taken are retried a bounded number of times and then
//! counted as failed, and a flush still finishes. Needs no InfluxDB.

mod common;

use std::time::{Duration, Instant};

use shepherd::{InfluxConfig, InfluxSink, MetricsSink, Point};

fn config(url: String) -> InfluxConfig {
    InfluxConfig {
        capacity: 100,
        batch: 10,
        flush_interval: Duration::from_millis(50),
        timeout: Duration::from_millis(200),
        attempts: 2,
        retry_delay: Duration::from_millis(20),
        ..InfluxConfig::new(url, "metrics")
    }
}

fn points(n: i64) -> Vec<Point> {
    (0..n)
        .map(|i| Point::new("m", i).tag("k", "v").field("i", i))
        .collect()
}

/// Records far more than the buffer holds, checks it took no time and every point is
/// accounted for, then flushes (bounded) and checks nothing was written.
async fn drops_and_counts(url: String) {
    let sink = InfluxSink::start(config(url)).unwrap();
    let started = Instant::now();
    for _ in 0..10 {
        sink.record(&points(1_000));
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "recording took {took:?}");
    let s = sink.stats();
    assert_eq!(s.accepted + s.dropped, 10_000, "{s:?}");
    // The buffer holds 100; the writer may have taken a batch or two out meanwhile.
    assert!(s.accepted <= 200 && s.dropped >= 9_800, "{s:?}");

    // Every batch is given up after its attempts; the flush ends in bounded time.
    tokio::time::timeout(Duration::from_secs(60), sink.flush())
        .await
        .expect("flush of an unreachable InfluxDB finished");
    let s = sink.stats();
    assert_eq!((s.written, s.failed), (0, s.accepted), "{s:?}");

    // Still down: new points are taken and given up again, never waited on.
    let started = Instant::now();
    sink.record(&points(5));
    assert!(started.elapsed() < Duration::from_millis(100));
    tokio::time::timeout(Duration::from_secs(60), sink.flush())
        .await
        .unwrap();
    let after = sink.stats();
    assert_eq!(after.failed, s.failed + 5, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_influxdb_drops_and_counts_without_blocking() {
    drops_and_counts(common::refused_url().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_influxdb_drops_and_counts_without_blocking() {
    drops_and_counts(common::silent_url().await).await;
}

#[test]
fn bad_configurations_are_refused() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    for url in ["", "localhost:8086", "https://127.0.0.1:8086", "http://"] {
        assert!(
            InfluxSink::start(InfluxConfig::new(url, "m")).is_err(),
            "{url:?}"
        );
    }
    assert!(InfluxSink::start(InfluxConfig::new("http://127.0.0.1:1", "")).is_err());
    let zero = InfluxConfig {
        capacity: 0,
        batch: 0,
        attempts: 0,
        ..InfluxConfig::new("http://127.0.0.1:1", "m")
    };
    assert!(InfluxSink::start(zero).is_ok());
}
