//! DME page → the edge-events measurements, with upstream's names and tags:
//!
//! - `latency-metric`, one point per label set of `dme_edge_latency_ms_*` (app, instance,
//!   cloudlet, `locationtile`, carrier, `datanetworktype`, `deviceos`, `devicemodel`): `avg`,
//!   `min`, `max`, `variance`, `stddev` (the gauges), `numsamples` (`_count`), `total`
//!   (`_sum`), `signalstrength` (`dme_edge_signal_strength`), and one field per bucket named
//!   after its lower bound (`0s`, `5ms`, `10ms`, `25ms`, `50ms`, `100ms`), counting that bucket
//!   alone (upstream's buckets are by lower bound and not cumulative; Prometheus's `le` ones
//!   are cumulative upper bounds).
//! - `device-metric`: `numsessions` from `dme_edge_sessions_total`.
//! - `custom-metric`: the same statistics from `dme_edge_custom_*` (tag `stat`), `numsamples`
//!   from `dme_edge_custom_count`.
//!
//! Tags also carry `dmeId`, the scraped DME's `host:port`. Counts are cumulative since the DME
//! started.

use std::collections::BTreeMap;

use crate::line::Point;
use crate::promtext::{Page, Sample};

pub const LATENCY: &str = "latency-metric";
pub const DEVICE: &str = "device-metric";
pub const CUSTOM: &str = "custom-metric";

/// Bucket bounds (ms) and upstream's field names (by lower bound).
const BUCKETS: [(&str, &str); 6] = [
    ("5", "0s"),
    ("10", "5ms"),
    ("25", "10ms"),
    ("50", "25ms"),
    ("100", "50ms"),
    ("+Inf", "100ms"),
];

type Labels = Vec<(String, String)>;

/// The points of the edge-events series of a DME page.
pub fn points(page: &Page, dme_id: &str, now_ms: i64) -> Vec<Point> {
    let mut series: BTreeMap<(&'static str, Labels), BTreeMap<String, f64>> = BTreeMap::new();
    for s in &page.samples {
        let Some((measurement, field)) = field_of(s) else {
            continue;
        };
        let labels: Labels = s
            .labels
            .iter()
            .filter(|(k, _)| k != "le")
            .cloned()
            .collect();
        let fields = series.entry((measurement, labels)).or_default();
        fields.insert(field, s.value);
    }
    series
        .into_iter()
        .filter_map(|((measurement, labels), fields)| {
            let mut p = Point::new(measurement, now_ms).tag("dmeId", dme_id);
            for (k, v) in labels {
                p.tags.insert(k, v);
            }
            let fields = if measurement == LATENCY {
                per_bucket(fields)
            } else {
                fields
            };
            for (k, v) in fields {
                p = p.field(k, v);
            }
            (!p.fields.is_empty()).then_some(p)
        })
        .collect()
}

/// Which measurement and field a sample feeds (bucket samples as `le=BOUND` for now).
fn field_of(s: &Sample) -> Option<(&'static str, String)> {
    let stat = |rest: &str| match rest {
        "avg" | "min" | "max" | "variance" | "stddev" => Some(rest.to_string()),
        _ => None,
    };
    let name = s.name.as_str();
    if let Some(rest) = name.strip_prefix("dme_edge_latency_ms_") {
        let field = match rest {
            "bucket" => format!("le={}", s.label("le")?),
            "count" => "numsamples".into(),
            "sum" => "total".into(),
            other => stat(other)?,
        };
        return Some((LATENCY, field));
    }
    if name == "dme_edge_signal_strength" {
        return Some((LATENCY, "signalstrength".into()));
    }
    if name == "dme_edge_sessions_total" {
        return Some((DEVICE, "numsessions".into()));
    }
    let rest = name.strip_prefix("dme_edge_custom_")?;
    let field = match rest {
        "count" => "numsamples".into(),
        other => stat(other)?,
    };
    Some((CUSTOM, field))
}

/// Cumulative `le` buckets to upstream's per-bucket fields.
fn per_bucket(mut fields: BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let mut below = 0.0;
    for (bound, name) in BUCKETS {
        if let Some(c) = fields.remove(&format!("le={bound}")) {
            fields.insert(name.to_string(), (c - below).max(0.0));
            below = c.max(below);
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::FieldValue;

    #[test]
    fn edge_series_become_upstream_measurements() {
        let text = r#"# TYPE dme_edge_latency_ms histogram
dme_edge_latency_ms_bucket{app="a",appinst="i",locationtile="t",le="5"} 4
dme_edge_latency_ms_bucket{app="a",appinst="i",locationtile="t",le="10"} 5
dme_edge_latency_ms_bucket{app="a",appinst="i",locationtile="t",le="25"} 5
dme_edge_latency_ms_bucket{app="a",appinst="i",locationtile="t",le="50"} 5
dme_edge_latency_ms_bucket{app="a",appinst="i",locationtile="t",le="100"} 5
dme_edge_latency_ms_bucket{app="a",appinst="i",locationtile="t",le="+Inf"} 6
dme_edge_latency_ms_sum{app="a",appinst="i",locationtile="t"} 130.5
dme_edge_latency_ms_count{app="a",appinst="i",locationtile="t"} 6
dme_edge_latency_ms_avg{app="a",appinst="i",locationtile="t"} 21.75
dme_edge_signal_strength{app="a",appinst="i",locationtile="t"} 3
dme_edge_sessions_total{app="a",appinst="i",locationtile="t"} 2
dme_edge_custom_count{app="a",stat="jump"} 3
dme_edge_custom_max{app="a",stat="jump"} 9
dme_edge_streams_open 4
"#;
        let page = crate::promtext::parse(text);
        let pts = points(&page, "dme:1", 7);
        let by = |m: &str| pts.iter().find(|p| p.measurement == m).unwrap();
        let lat = by(LATENCY);
        assert_eq!(lat.tags["dmeId"], "dme:1");
        assert_eq!(lat.tags["locationtile"], "t");
        let f = |k: &str| lat.fields.get(k).cloned();
        assert_eq!(f("0s"), Some(FieldValue::from(4.0)));
        assert_eq!(f("5ms"), Some(FieldValue::from(1.0)));
        assert_eq!(f("10ms"), Some(FieldValue::from(0.0)));
        assert_eq!(f("100ms"), Some(FieldValue::from(1.0)));
        assert_eq!(f("numsamples"), Some(FieldValue::from(6.0)));
        assert_eq!(f("total"), Some(FieldValue::from(130.5)));
        assert_eq!(f("signalstrength"), Some(FieldValue::from(3.0)));
        assert!(!lat.fields.keys().any(|k| k.starts_with("le=")));
        assert_eq!(by(DEVICE).fields["numsessions"], FieldValue::from(2.0));
        let custom = by(CUSTOM);
        assert_eq!(custom.tags["stat"], "jump");
        assert_eq!(custom.fields["max"], FieldValue::from(9.0));
        assert_eq!(pts.len(), 3, "{pts:?}");
    }
}
