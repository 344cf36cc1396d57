//! The InfluxDB sink against a real InfluxDB 1.x: the sink conformance suite, and a whole
//! collection (fake root LB and DME endpoints, a state dir holding this process's pid,
//! constructed objects) read back with InfluxQL.
//!
//! The server comes from `EDGEPLANE_INFLUX_URL` (`control/shepherd/scripts/influx-test-server.sh
//! start` prints it); without it these tests fail, saying so. Each test writes to a database of
//! its own.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use shepherd::collect::process::StateDirSource;
use shepherd::{Collector, InfluxConfig, InfluxSink, MetricsSink, Sources};

use common::conformance::Backend;
use common::{fixtures, ident, influx_exec, influx_query, influx_url, serve_text, unique_db};

struct Influx {
    url: String,
    db: String,
    sink: Arc<InfluxSink>,
}

async fn influx() -> Influx {
    let url = influx_url();
    let db = unique_db("conformance");
    let config = InfluxConfig {
        flush_interval: Duration::from_millis(100),
        ..InfluxConfig::new(url.clone(), db.clone())
    };
    let sink = Arc::new(InfluxSink::start(config).unwrap());
    Influx { url, db, sink }
}

impl Backend for Influx {
    fn sink(&self) -> Arc<dyn MetricsSink> {
        self.sink.clone()
    }

    async fn read(
        &self,
        measurement: &str,
        field: &str,
    ) -> BTreeMap<BTreeMap<String, String>, f64> {
        let q = format!(
            "SELECT last({}) FROM {} GROUP BY *",
            ident(field),
            ident(measurement)
        );
        influx_query(&self.url, &self.db, &q)
            .await
            .into_iter()
            .map(|(_, tags, _, rows)| {
                let v = match &rows[0][1] {
                    Value::Bool(b) => f64::from(u8::from(*b)),
                    v => v.as_f64().unwrap(),
                };
                (tags, v)
            })
            .collect()
    }
}

conformance_tests!(influx());

/// `SELECT * FROM measurement`: one row per point, as column → value.
async fn rows(url: &str, db: &str, measurement: &str) -> Vec<BTreeMap<String, Value>> {
    let q = format!("SELECT * FROM {}", ident(measurement));
    let mut out = Vec::new();
    for (_, _, columns, rows) in influx_query(url, db, &q).await {
        for r in rows {
            out.push(columns.iter().cloned().zip(r).collect());
        }
    }
    out
}

fn s(v: &str) -> Value {
    Value::from(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_reaches_influxdb_with_upstream_names_tags_and_fields() {
    let url = influx_url();
    let db = unique_db("collection");
    let state = tempfile::tempdir().unwrap();
    fixtures::state_dir(state.path());
    let sources = Sources {
        rootlb_metrics: Some(serve_text(fixtures::ROOTLB_PAGE.into()).await),
        dme_metrics: vec![serve_text(fixtures::DME_PAGE.into()).await],
        processes: Some(Arc::new(StateDirSource::new(state.path()))),
    };
    let dme_id = sources.dme_metrics[0]
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let mut collector = Collector::new(fixtures::cloudlet(), sources, Duration::from_secs(5));
    let sink = InfluxSink::start(InfluxConfig::new(url.clone(), db.clone())).unwrap();
    let objects = fixtures::replica();

    // Two rounds: CPU is a difference between readings.
    let t0 = shepherd::agent::unix_ms();
    let first = collector.collect(&objects, t0).await;
    sink.record(&first);
    // Burn some CPU so the second reading differs.
    let spin = std::time::Instant::now();
    while spin.elapsed() < Duration::from_millis(300) {
        std::hint::black_box((0..1000u64).sum::<u64>());
    }
    let second = collector
        .collect(&objects, shepherd::agent::unix_ms())
        .await;
    sink.record(&second);
    tokio::time::timeout(Duration::from_secs(30), sink.flush())
        .await
        .unwrap();
    let stats = sink.stats();
    assert_eq!(
        stats.written,
        (first.len() + second.len()) as u64,
        "{stats:?}"
    );
    assert_eq!((stats.dropped, stats.failed), (0, 0));

    let inst_tags = [
        ("app", s("arena")),
        ("appinst", s("arena-1")),
        ("apporg", s("NimbusGames")),
        ("cloudlet", s("berlin-1")),
        ("cloudletorg", s("TelcoOp")),
        ("cluster", s("c1")),
        ("clusterorg", s("NimbusGames")),
        ("ver", s("2.3")),
    ];
    let has = |row: &BTreeMap<String, Value>, want: &[(&str, Value)]| {
        for (k, v) in want {
            assert_eq!(row.get(*k), Some(v), "{k} in {row:?}");
        }
    };

    let conns = rows(&url, &db, "appinst-connections").await;
    assert_eq!(conns.len(), 2, "one point per round: {conns:?}");
    has(&conns[0], &inst_tags);
    let fields = [
        ("port", s("443")),
        ("active", Value::from(3)),
        ("accepts", Value::from(40)),
        ("handled", Value::from(38)),
        ("bytesSent", Value::from(2000)),
        ("bytesRecvd", Value::from(90000)),
    ];
    has(&conns[0], &fields);

    let udp = rows(&url, &db, "appinst-udp").await;
    has(&udp[0], &inst_tags);
    let fields = [
        ("port", s("7777")),
        ("bytesSent", Value::from(640)),
        ("bytesRecvd", Value::from(1280)),
        ("datagramsSent", Value::from(10)),
        ("datagramsRecvd", Value::from(20)),
        ("sentErrs", Value::from(0)),
        ("overflow", Value::from(2)),
    ];
    has(&udp[0], &fields);

    let mem = rows(&url, &db, "appinst-mem").await;
    assert_eq!(mem.len(), 2);
    has(&mem[0], &inst_tags);
    let rss = mem[0]["mem"].as_i64().unwrap();
    assert!(rss > 1 << 20, "this test process's RSS: {rss}");

    let cpu = rows(&url, &db, "appinst-cpu").await;
    assert_eq!(
        cpu.len(),
        1,
        "only the second round has a CPU rate: {cpu:?}"
    );
    has(&cpu[0], &inst_tags);
    let pct = cpu[0]["cpu"].as_f64().unwrap();
    assert!(pct > 0.0 && pct < 100.0 * 64.0, "cpu {pct}");

    let util = rows(&url, &db, "cloudlet-utilization").await;
    let fields = [
        ("cloudlet", s("berlin-1")),
        ("cloudletorg", s("TelcoOp")),
        ("vCpuUsed", Value::from(6)),
        ("vCpuMax", Value::from(16)),
        ("memUsed", Value::from(8192)),
        ("memMax", Value::from(32768)),
        ("diskUsed", Value::from(120)),
        ("diskMax", Value::from(500)),
    ];
    has(&util[0], &fields);

    let dme = rows(&url, &db, "dme-api").await;
    let fields = [
        ("apporg", s("NimbusGames")),
        ("app", s("arena")),
        ("ver", s("2.3")),
        ("method", s("FindCloudlet")),
        ("cloudlet", s("berlin-1")),
        ("cloudletorg", s("TelcoOp")),
        ("dmeId", s(&dme_id)),
        ("reqs", Value::from(12)),
        ("errs", Value::from(2)),
        ("foundCloudlet", Value::from(9)),
        ("notFound", Value::from(1)),
        ("5ms", Value::from(6)),
        ("50ms", Value::from(6)),
    ];
    has(&dme[0], &fields);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_is_created_once_and_again_when_dropped() {
    let url = influx_url();
    let db = unique_db("recreate");
    let config = InfluxConfig::new(url.clone(), db.clone());
    let sink = InfluxSink::start(config).unwrap();
    let point = |v: i64| shepherd::Point::new("m", shepherd::agent::unix_ms()).field("v", v);
    sink.record(&[point(1)]);
    tokio::time::timeout(Duration::from_secs(30), sink.flush())
        .await
        .unwrap();
    // Someone drops the database under the sink: the next write recreates it.
    influx_exec(&url, &format!("DROP DATABASE {}", ident(&db))).await;
    sink.record(&[point(2)]);
    tokio::time::timeout(Duration::from_secs(30), sink.flush())
        .await
        .unwrap();
    let got = rows(&url, &db, "m").await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["v"], Value::from(2));
    let s = sink.stats();
    assert_eq!((s.written, s.failed), (2, 0), "{s:?}");
}

/// The line module's escaping rules, as the real server reads them: every position holding
/// its separators, and the backslashes 1.x cannot carry written as `/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_in_every_position_read_back() {
    let url = influx_url();
    let db = unique_db("hostile");
    let sink = InfluxSink::start(InfluxConfig::new(url.clone(), db.clone())).unwrap();
    let t = shepherd::agent::unix_ms();
    let p = shepherd::Point::new("m,1 x=y", t)
        .tag("k ,=", "a,b c=d")
        .tag("plain", r"back\slash")
        .tag("trail", r"end\")
        .tag("broken", "two\nlines")
        .field("f 1=,", 1i64)
        .field("s", "q\"u\\o, x=y\nz");
    sink.record(&[p]);
    tokio::time::timeout(Duration::from_secs(30), sink.flush())
        .await
        .unwrap();
    assert_eq!(sink.stats().written, 1, "{:?}", sink.stats());
    let got = rows(&url, &db, "m,1 x=y").await;
    assert_eq!(got.len(), 1, "{got:?}");
    let want = [
        ("k ,=", s("a,b c=d")),
        ("plain", s(r"back\slash")),
        ("trail", s("end/")),
        ("broken", s("two lines")),
        ("f 1=,", Value::from(1)),
        ("s", s("q\"u\\o, x=y\nz")),
    ];
    for (k, v) in want {
        assert_eq!(got[0].get(k), Some(&v), "{k} in {:?}", got[0]);
    }
}
