//! The conformance suite every [`MetricsSink`] passes: one async function per behaviour, run
//! against a [`Backend`] that can read back what the sink stored. `conformance_tests!` expands
//! to one test per behaviour.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shepherd::{MetricsSink, Point};

/// A sink under test, and a way to read what its backend stored.
pub trait Backend {
    fn sink(&self) -> Arc<dyn MetricsSink>;

    /// The latest value of every series of `field` of `measurement`, by tags (booleans as
    /// 0/1). Called after a flush.
    fn read(
        &self,
        measurement: &str,
        field: &str,
    ) -> impl Future<Output = BTreeMap<BTreeMap<String, String>, f64>>;
}

/// Expands to one `#[tokio::test]` per behaviour, each on a fresh backend from `$make` (an
/// async expression).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            latest_value_per_series,
            every_field_kind,
            hostile_tag_values_read_back,
            measurements_do_not_mix,
            counts_add_up,
            record_never_waits,
        );
    };
    (@each $make:expr; $($name:ident,)+) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let backend = $make.await;
            common::conformance::$name(&backend).await;
        }
    )+};
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn now_ms() -> i64 {
    shepherd::agent::unix_ms()
}

/// Flush, bounded: a sink that never finishes fails the test instead of hanging it.
async fn flush(sink: &dyn MetricsSink) {
    tokio::time::timeout(Duration::from_secs(30), sink.flush())
        .await
        .expect("flush finished within 30 s");
}

pub async fn latest_value_per_series(b: &impl Backend) {
    let sink = b.sink();
    let t = now_ms();
    let p = |app: &str, v: i64, ts: i64| {
        Point::new("appinst-connections", ts)
            .tag("app", app)
            .tag("port", "443")
            .field("active", v)
    };
    sink.record(&[p("arena", 1, t), p("chess", 5, t)]);
    sink.record(&[p("arena", 2, t + 1)]);
    flush(sink.as_ref()).await;
    let got = b.read("appinst-connections", "active").await;
    let want = BTreeMap::from([
        (tags(&[("app", "arena"), ("port", "443")]), 2.0),
        (tags(&[("app", "chess"), ("port", "443")]), 5.0),
    ]);
    assert_eq!(got, want);
}

pub async fn every_field_kind(b: &impl Backend) {
    let sink = b.sink();
    let p = Point::new("kinds", now_ms())
        .tag("k", "v")
        .field("float", 0.125)
        .field("int", 7i64)
        .field("big", i64::MAX / 2)
        .field("up", true)
        .field("down", false);
    sink.record(&[p]);
    flush(sink.as_ref()).await;
    let want = [
        ("float", 0.125),
        ("int", 7.0),
        ("big", (i64::MAX / 2) as f64),
        ("up", 1.0),
        ("down", 0.0),
    ];
    for (field, value) in want {
        let got = b.read("kinds", field).await;
        assert_eq!(
            got,
            BTreeMap::from([(tags(&[("k", "v")]), value)]),
            "{field}"
        );
    }
}

/// Tag values as app and organisation names may have them: separators of both formats.
pub async fn hostile_tag_values_read_back(b: &impl Backend) {
    let values = [
        "a,b c=d",
        "q\"uote\"",
        "back\\slash",
        "eq=",
        "ü→😀",
        "tab\there",
        "{brace}",
        "  spaces  ",
    ];
    let sink = b.sink();
    let t = now_ms();
    let points: Vec<Point> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Point::new("hostile", t).tag("app", *v).field("n", i as i64))
        .collect();
    sink.record(&points);
    flush(sink.as_ref()).await;
    let got = b.read("hostile", "n").await;
    let want: BTreeMap<_, _> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (tags(&[("app", v)]), i as f64))
        .collect();
    assert_eq!(got, want);
}

pub async fn measurements_do_not_mix(b: &impl Backend) {
    let sink = b.sink();
    let t = now_ms();
    sink.record(&[
        Point::new("appinst-cpu", t)
            .tag("app", "x")
            .field("cpu", 12.5),
        Point::new("appinst-mem", t)
            .tag("app", "x")
            .field("mem", 4096i64),
    ]);
    flush(sink.as_ref()).await;
    let x = || tags(&[("app", "x")]);
    assert_eq!(
        b.read("appinst-cpu", "cpu").await,
        BTreeMap::from([(x(), 12.5)])
    );
    assert_eq!(
        b.read("appinst-mem", "mem").await,
        BTreeMap::from([(x(), 4096.0)])
    );
    assert!(b.read("appinst-cpu", "mem").await.is_empty());
}

pub async fn counts_add_up(b: &impl Backend) {
    let sink = b.sink();
    let t = now_ms();
    let points: Vec<Point> = (0..250)
        .map(|i| Point::new("counted", t + i).tag("k", "v").field("i", i))
        .collect();
    sink.record(&points);
    flush(sink.as_ref()).await;
    let s = sink.stats();
    assert_eq!(
        (s.accepted, s.written, s.dropped, s.failed),
        (250, 250, 0, 0)
    );
    let got = b.read("counted", "i").await;
    assert_eq!(got, BTreeMap::from([(tags(&[("k", "v")]), 249.0)]));
}

/// A producer never waits: far more points than any buffer holds go in at once, each either
/// accepted or dropped, and what was accepted is then written.
pub async fn record_never_waits(b: &impl Backend) {
    let sink = b.sink();
    let t = now_ms();
    let (rounds, per_round) = (30, 1_000);
    let started = Instant::now();
    for r in 0..rounds {
        let points: Vec<Point> = (0..per_round)
            .map(|i| {
                Point::new("flood", t + r)
                    .tag("series", format!("s{i}"))
                    .field("v", r)
            })
            .collect();
        sink.record(&points);
    }
    let took = started.elapsed();
    let s = sink.stats();
    assert_eq!(s.accepted + s.dropped, (rounds * per_round) as u64, "{s:?}");
    // Building the points dominates; a sink that waited on its backend would take seconds.
    assert!(took < Duration::from_secs(5), "recording took {took:?}");
    flush(sink.as_ref()).await;
    let s = sink.stats();
    assert_eq!(s.written + s.failed, s.accepted, "{s:?}");
    assert_eq!(s.failed, 0, "{s:?}");
}
