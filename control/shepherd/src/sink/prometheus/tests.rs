use super::*;
use crate::promtext::parse;

const HOUR: Duration = Duration::from_secs(3600);

fn point(app: &str, active: i64) -> Point {
    Point::new("appinst-connections", 1)
        .tag("app", app)
        .tag("port", "443")
        .field("active", active)
        .field("bytesSent", 10i64)
}

#[test]
fn renders_one_gauge_per_field_with_the_latest_value() {
    let sink = PrometheusSink::new(HOUR, 100);
    sink.record(&[point("arena", 1), point("chess", 2)]);
    sink.record(&[point("arena", 5)]);
    assert_eq!(
        sink.render(),
        "\
# TYPE appinst_connections_active gauge
appinst_connections_active{app=\"arena\",port=\"443\"} 5
appinst_connections_active{app=\"chess\",port=\"443\"} 2
# TYPE appinst_connections_bytesSent gauge
appinst_connections_bytesSent{app=\"arena\",port=\"443\"} 10
appinst_connections_bytesSent{app=\"chess\",port=\"443\"} 10
"
    );
    let s = sink.stats();
    assert_eq!((s.accepted, s.written, s.dropped, s.failed), (3, 3, 0, 0));
}

#[test]
fn values_and_labels_read_back_through_the_parser() {
    let sink = PrometheusSink::new(HOUR, 100);
    let hostile = "a,b c=d \"q\" \\ \n ü";
    sink.record(&[Point::new("m-1", 1)
        .tag("dme id", hostile)
        .field("f", 0.125)
        .field("up", true)
        .field("big", 1e300)
        .field("name", "text")]);
    let page = parse(&sink.render());
    assert_eq!(page.bad_lines, 0);
    let got: Vec<_> = page
        .samples
        .iter()
        .map(|s| (s.name.as_str(), s.label("dme_id"), s.value))
        .collect();
    assert_eq!(
        got,
        [
            ("m_1_big", Some(hostile), 1e300),
            ("m_1_f", Some(hostile), 0.125),
            ("m_1_up", Some(hostile), 1.0),
        ]
    );
}

#[test]
fn a_point_without_numbers_fails_and_tags_that_sanitise_alike_keep_the_first() {
    let sink = PrometheusSink::new(HOUR, 100);
    sink.record(&[Point::new("m", 1).field("s", "only text")]);
    sink.record(&[Point::new("m", 1)
        .tag("a-b", "1")
        .tag("a_b", "2")
        .field("v", 1i64)]);
    assert_eq!(sink.render(), "# TYPE m_v gauge\nm_v{a_b=\"1\"} 1\n");
    let s = sink.stats();
    assert_eq!((s.accepted, s.written, s.failed), (2, 1, 1));
}

#[test]
fn stale_series_disappear() {
    let sink = PrometheusSink::new(Duration::ZERO, 100);
    sink.record(&[point("arena", 1)]);
    assert_eq!(sink.render(), "");
}

#[test]
fn new_series_beyond_the_cap_are_dropped_and_counted() {
    let sink = PrometheusSink::new(HOUR, 2);
    sink.record(&[point("a", 1), point("b", 1), point("a", 2)]);
    // "a" fills both slots (two fields); "b" has no room; updating "a" still works.
    let s = sink.stats();
    assert_eq!((s.accepted, s.dropped), (2, 1));
    assert!(sink.render().contains("{app=\"a\",port=\"443\"} 2\n"));
    // Stale series free their slots.
    let sink = PrometheusSink::new(Duration::ZERO, 2);
    sink.record(&[point("a", 1)]);
    sink.record(&[point("b", 1)]);
    assert_eq!(sink.stats().dropped, 0);
}
