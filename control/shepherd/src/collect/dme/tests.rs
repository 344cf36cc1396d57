use super::*;
use crate::collect::fixtures::cloudlet;
use crate::line::FieldValue;
use crate::promtext::parse;

const PAGE: &str = r#"
# TYPE dme_api_requests_total counter
dme_api_requests_total{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet"} 10
dme_api_errors_total{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet"} 1
dme_api_found_cloudlet_total{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet"} 8
dme_api_not_found_total{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet"} 1
dme_api_latency_seconds_bucket{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet",le="0.01"} 7
dme_api_latency_seconds_bucket{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet",le="0.005"} 4
dme_api_latency_seconds_bucket{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet",le="0.1"} 10
dme_api_latency_seconds_bucket{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet",le="+Inf"} 10
dme_api_latency_seconds_sum{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet"} 0.2
dme_api_latency_seconds_count{apporg="NimbusGames",app="arena",ver="2.3",method="FindCloudlet"} 10
dme_api_requests_total{apporg="NimbusGames",app="arena",ver="2.3",method="RegisterClient"} 3
process_cpu_seconds_total 12
"#;

#[test]
fn one_point_per_api_with_bucket_counts_by_bound() {
    let out = points(&parse(PAGE), "127.0.0.1:38001", &cloudlet(), 9);
    assert_eq!(out.len(), 2);
    let find = &out[0];
    assert_eq!(find.measurement, "dme-api");
    assert_eq!(find.timestamp_ms, 9);
    let tags: Vec<_> = find
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        tags,
        [
            ("app", "arena"),
            ("apporg", "NimbusGames"),
            ("cloudlet", "berlin-1"),
            ("cloudletorg", "TelcoOp"),
            ("dmeId", "127.0.0.1:38001"),
            ("method", "FindCloudlet"),
            ("ver", "2.3"),
        ]
    );
    let fields: Vec<_> = find.fields.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let int = FieldValue::Integer;
    assert_eq!(
        fields,
        [
            ("100ms", &int(3)),
            ("10ms", &int(3)),
            ("5ms", &int(4)),
            ("errs", &int(1)),
            ("foundCloudlet", &int(8)),
            ("notFound", &int(1)),
            ("reqs", &int(10)),
        ]
    );
    let register = &out[1];
    assert_eq!(register.tags["method"], "RegisterClient");
    assert_eq!(register.fields.len(), 1);
    assert_eq!(register.fields["reqs"], int(3));
}

#[test]
fn no_dme_series_no_points() {
    assert!(points(&parse("up 1\n"), "d", &cloudlet(), 0).is_empty());
}

#[test]
fn names_bounds_like_upstream() {
    let table = [
        (0.0, "0s"),
        (0.0005, "500us"),
        (0.001, "1ms"),
        (0.0025, "2.5ms"),
        (0.005, "5ms"),
        (0.025, "25ms"),
        (0.1, "100ms"),
        (0.25, "250ms"),
        (1.0, "1s"),
        (2.5, "2.5s"),
        (-1.0, "0s"),
    ];
    for (bound, want) in table {
        assert_eq!(bound_name(bound), want, "{bound}");
    }
}

#[test]
fn calls_before_an_app_is_known_count_under_empty_tags() {
    // RegisterClient that failed before naming an app: empty labels (left out when written).
    let page = r#"
dme_api_requests_total{apporg="",app="",ver="",method="RegisterClient"} 1
dme_api_latency_seconds_bucket{apporg="",app="",ver="",method="RegisterClient",le="0.0001"} 1
"#;
    let out = points(&parse(page), "d", &cloudlet(), 0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].tags["app"], "");
    assert_eq!(out[0].fields["100us"], FieldValue::Integer(1));
    let mut line = String::new();
    crate::line::encode(&out[0], &mut line).unwrap();
    assert_eq!(
        line,
        "dme-api,cloudlet=berlin-1,cloudletorg=TelcoOp,dmeId=d,method=RegisterClient 100us=1i,reqs=1i 0\n"
    );
}
