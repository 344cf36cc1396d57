//! `GET /metrics` over real sockets: REST and gRPC calls that succeed and fail, then the exact
//! counters, under the right app (or the unknown app) and RPC.

mod common;

use std::collections::HashMap;

use common::*;
use dme::fixture;
use dme::proto::{self, platform_os_client::PlatformOsClient};
use http_body_util::{BodyExt, Empty};
use serde_json::json;

/// GETs `path`; returns the status, the content type and the body.
async fn get(s: &Server, path: &str) -> (u16, String, String) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let uri = format!("http://{}{path}", s.http).parse().unwrap();
    let resp = client.get(uri).await.expect("GET");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// The samples of a scrape: series (name and labels, as written) → value.
async fn scrape(s: &Server) -> HashMap<String, String> {
    let (status, content_type, text) = get(s, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("sample line");
            (series.to_string(), value.to_string())
        })
        .collect()
}

fn series(name: &str, app: [&str; 3], method: &str) -> String {
    let [org, app, ver] = app;
    format!(r#"{name}{{apporg="{org}",app="{app}",ver="{ver}",method="{method}"}}"#)
}

/// Asserts the counters of one app and RPC: requests, errors, and found / not found when given.
fn assert_counts(
    m: &HashMap<String, String>,
    app: [&str; 3],
    method: &str,
    (requests, errors): (u64, u64),
    found: Option<(u64, u64)>,
) {
    let value = |name: &str| m.get(&series(name, app, method)).cloned();
    let n = |v: u64| Some(v.to_string());
    let what = format!("{app:?} {method}");
    assert_eq!(value("dme_api_requests_total"), n(requests), "{what}");
    assert_eq!(value("dme_api_errors_total"), n(errors), "{what}");
    assert_eq!(
        value("dme_api_latency_seconds_count"),
        n(requests),
        "{what}"
    );
    let inf = m.get(
        &series("dme_api_latency_seconds_bucket", app, method).replace("\"}", "\",le=\"+Inf\"}"),
    );
    assert_eq!(inf.cloned(), n(requests), "{what}: +Inf bucket");
    let (found_n, not_found_n) = found.map_or((None, None), |(f, nf)| (n(f), n(nf)));
    assert_eq!(value("dme_api_found_cloudlet_total"), found_n, "{what}");
    assert_eq!(value("dme_api_not_found_total"), not_found_n, "{what}");
}

const APP: [&str; 3] = ["devorg", "app", "1.0"];
const PLATFORM: [&str; 3] = ["platos", "PlatosEnablingLayer", "1.0"];
const UNKNOWN: [&str; 3] = ["", "", ""];

#[tokio::test]
async fn rest_and_grpc_calls_are_counted_per_app_and_rpc() {
    let s = start(region()).await;
    let (status, _) = s
        .post(
            "/v1/registerclient",
            r#"{"org_name":"devorg","app_name":"app","app_vers":"1.0"}"#,
        )
        .await;
    assert_eq!(status, 200);
    let cookie = s.register(&fixture::app_key()).await;
    let platform = s.register(&platform_key()).await;
    // REST: found twice, then a request without a location (an error of the app).
    let find = json!({"session_cookie": cookie, "carrier_name": "orange",
        "gps_location": {"latitude": 48.85, "longitude": 2.35}});
    for _ in 0..2 {
        assert_eq!(s.post("/v1/findcloudlet", &find.to_string()).await.0, 200);
    }
    let no_loc = json!({"session_cookie": cookie}).to_string();
    assert_eq!(s.post("/v1/findcloudlet", &no_loc).await.0, 400);
    // gRPC: found once; a platform app is never found (not found, not an error).
    let mut c = s.client().await;
    c.find_cloudlet(find_request(&cookie, "telekom", 52.5, 13.4))
        .await
        .unwrap();
    let r = c
        .find_cloudlet(find_request(&platform, "", 48.85, 2.35))
        .await
        .unwrap();
    assert_eq!(r.into_inner().fqdn, "");
    // Requests without a known app: a forged cookie, an unknown app, an unreadable body.
    let e = c
        .find_cloudlet(find_request("not-a-cookie", "", 48.85, 2.35))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let unknown_app = r#"{"org_name":"devorg","app_name":"nope","app_vers":"1.0"}"#;
    assert_eq!(s.post("/v1/registerclient", unknown_app).await.0, 404);
    assert_eq!(s.post("/v1/findcloudlet", "{not json").await.0, 400);
    assert_eq!(s.post("/v1/streamedgeevent", "{}").await.0, 501);
    // An RPC this DME does not implement, with a valid cookie: an error of the app.
    let e = c
        .add_user_to_group(proto::DynamicLocGroupRequest {
            session_cookie: cookie.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented);

    let m = scrape(&s).await;
    assert_counts(&m, APP, "RegisterClient", (2, 0), None);
    assert_counts(&m, PLATFORM, "RegisterClient", (1, 0), None);
    assert_counts(&m, APP, "FindCloudlet", (4, 1), Some((3, 0)));
    let sum: f64 = m[&series("dme_api_latency_seconds_sum", APP, "FindCloudlet")]
        .parse()
        .unwrap();
    assert!(sum > 0.0 && sum < 10.0, "latency sum {sum}");
    assert_counts(&m, PLATFORM, "FindCloudlet", (1, 0), Some((0, 1)));
    assert_counts(&m, APP, "AddUserToGroup", (1, 1), None);
    assert_counts(&m, UNKNOWN, "FindCloudlet", (2, 2), Some((0, 0)));
    assert_counts(&m, UNKNOWN, "RegisterClient", (1, 1), None);
    assert_counts(&m, UNKNOWN, "StreamEdgeEvent", (1, 1), None);
    // Nothing else was called.
    let requests: Vec<&String> = m
        .keys()
        .filter(|k| k.starts_with("dme_api_requests_total"))
        .collect();
    assert_eq!(requests.len(), 8, "{requests:?}");
}

#[tokio::test]
async fn platform_find_counts_under_the_app_found_for_and_survives_a_new_snapshot() {
    let s = start(region()).await;
    let cookie = s.register(&fixture::app_key()).await;
    let platform = s.register(&platform_key()).await;
    let mut c = s.client().await;
    let official = c
        .get_app_official_fqdn(proto::AppOfficialFqdnRequest {
            session_cookie: cookie.clone(),
            gps_location: loc(48.2, 11.6),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut p = PlatformOsClient::new(s.channel().await);
    let req = |token: &str| proto::PlatformFindCloudletRequest {
        session_cookie: platform.clone(),
        carrier_name: "telekom".into(),
        client_token: token.into(),
        ..Default::default()
    };
    p.platform_find_cloudlet(req(&official.client_token))
        .await
        .unwrap();
    // A bad token: the target is unknown, so the platform app's error.
    p.platform_find_cloudlet(req("forged")).await.unwrap_err();
    // A new snapshot of the same region keeps the counters of the apps still in it.
    s.dme
        .publish(dme::Tables::from_deployment(&region().build(), 2).unwrap());
    p.platform_find_cloudlet(req(&official.client_token))
        .await
        .unwrap();

    let m = scrape(&s).await;
    assert_counts(&m, APP, "PlatformFindCloudlet", (2, 0), Some((2, 0)));
    assert_counts(&m, PLATFORM, "PlatformFindCloudlet", (1, 1), Some((0, 0)));
    assert_counts(&m, APP, "GetAppOfficialFqdn", (1, 0), None);
    assert_counts(&m, APP, "RegisterClient", (1, 0), None);
}

#[tokio::test]
async fn metrics_are_not_rate_limited_and_count_refused_requests() {
    use dme::ratelimit::{Rate, RateLimiter};
    let tables = dme::Tables::from_deployment(&region().build(), 1).unwrap();
    let limiter = RateLimiter::new(
        Some(Rate {
            per_second: 1,
            burst: 1,
        }),
        None,
    );
    let d =
        dme::Dme::new(tables, keys(), dme::DmeConfig::default(), None).with_rate_limiter(limiter);
    let s = start_dme(d).await;
    let body = r#"{"org_name":"devorg","app_name":"app","app_vers":"1.0"}"#;
    let statuses = [
        s.post("/v1/registerclient", body).await.0,
        s.post("/v1/registerclient", body).await.0,
    ];
    assert_eq!(statuses, [200, 429]);
    for _ in 0..3 {
        let m = scrape(&s).await;
        assert_counts(&m, APP, "RegisterClient", (1, 0), None);
        assert_counts(&m, UNKNOWN, "RegisterClient", (1, 1), None);
    }
}
