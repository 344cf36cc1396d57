//! DME page → `dme-api`, one point per (apporg, app, ver, method).
//!
//! Sources, all labelled `{apporg,app,ver,method}`: `dme_api_requests_total` → `reqs`,
//! `dme_api_errors_total` → `errs`, `dme_api_found_cloudlet_total` → `foundCloudlet`,
//! `dme_api_not_found_total` → `notFound` (ours; upstream has no such field), and the
//! histogram `dme_api_latency_seconds_bucket{le}` → one field per bucket named after its bound
//! (`5ms`, `1.5s`), counting the requests of that bucket alone (upstream's buckets were not
//! cumulative, Prometheus's are); the `+Inf` bucket is `reqs` again and is left out. Counts are
//! cumulative since the DME started. Tags: those four, the Shepherd's cloudlet, and `dmeId`
//! (the scraped DME's `host:port`).

use std::collections::BTreeMap;

use edge_model::CloudletKey;

use super::{cloudlet_tags, count, measurement};
use crate::line::Point;
use crate::promtext::Page;

/// The label names that identify an API series, in tag order.
const KEY_LABELS: [&str; 4] = ["apporg", "app", "ver", "method"];

#[derive(Debug, Default)]
struct Api {
    counts: BTreeMap<&'static str, f64>,
    /// (bound in seconds, cumulative count)
    buckets: Vec<(f64, f64)>,
}

/// The points of a DME page.
pub fn points(page: &Page, dme_id: &str, cloudlet: &CloudletKey, now_ms: i64) -> Vec<Point> {
    let mut apis: BTreeMap<[&str; 4], Api> = BTreeMap::new();
    for s in &page.samples {
        let field = match s.name.as_str() {
            "dme_api_requests_total" => "reqs",
            "dme_api_errors_total" => "errs",
            "dme_api_found_cloudlet_total" => "foundCloudlet",
            "dme_api_not_found_total" => "notFound",
            "dme_api_latency_seconds_bucket" => "",
            _ => continue,
        };
        let mut key = [""; 4];
        for (slot, label) in key.iter_mut().zip(KEY_LABELS) {
            *slot = s.label(label).unwrap_or("");
        }
        let api = apis.entry(key).or_default();
        if !field.is_empty() {
            *api.counts.entry(field).or_default() += s.value;
        } else if let Some(le) = s.label("le").and_then(|b| b.parse::<f64>().ok())
            && le.is_finite()
            && le >= 0.0
        {
            api.buckets.push((le, s.value));
        }
    }
    apis.into_iter()
        .filter_map(|(key, api)| point(key, api, dme_id, cloudlet, now_ms))
        .collect()
}

fn point(
    key: [&str; 4],
    mut api: Api,
    dme_id: &str,
    cloudlet: &CloudletKey,
    now_ms: i64,
) -> Option<Point> {
    let mut p = Point::new(measurement::DME_API, now_ms);
    p.tags = cloudlet_tags(cloudlet);
    p.tags.insert("dmeId".into(), dme_id.to_owned());
    for (label, value) in KEY_LABELS.iter().zip(key) {
        p.tags.insert((*label).to_owned(), value.to_owned());
    }
    for (field, v) in api.counts {
        p = p.field(field, count(v));
    }
    api.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut below = 0.0;
    for (bound, cumulative) in api.buckets {
        p = p.field(bound_name(bound), count(cumulative - below));
        below = cumulative.max(below);
    }
    (!p.fields.is_empty()).then_some(p)
}

/// A bucket bound in seconds as upstream's field name: `0s`, `500us`, `5ms`, `2.5ms`, `1s`.
pub fn bound_name(seconds: f64) -> String {
    // Rounded to a thousandth of the unit: 0.025 s is "25ms", not "25.000000000000004ms".
    let fmt = |v: f64, unit: &str| format!("{}{unit}", (v * 1000.0).round() / 1000.0);
    if seconds <= 0.0 {
        "0s".to_owned()
    } else if seconds >= 1.0 {
        fmt(seconds, "s")
    } else if seconds >= 1e-3 {
        fmt(seconds * 1e3, "ms")
    } else {
        fmt(seconds * 1e6, "us")
    }
}

#[cfg(test)]
mod tests;
