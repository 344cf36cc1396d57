//! The REST front end over a real socket: grpc-gateway JSON conventions, status mapping, errors.

mod common;

use common::*;
use dme::cookie::{Claims, SessionKey};
use dme::fixture;
use serde_json::json;

#[tokio::test]
async fn register_and_find_with_gateway_json() {
    let s = start(region()).await;
    let (status, reg) = s
        .post(
            "/v1/registerclient",
            r#"{"org_name":"devorg","app_name":"app","app_vers":"1.0"}"#,
        )
        .await;
    assert_eq!(status, 200, "{reg}");
    assert_eq!(reg["status"], "RS_SUCCESS");
    assert_eq!(reg["unique_id_type"], "dme-ksuid");
    let cookie = reg["session_cookie"].as_str().unwrap().to_string();
    let body = json!({
        "session_cookie": cookie,
        "carrier_name": "orange",
        "gps_location": {"latitude": 48.85, "longitude": 2.35},
    });
    let (status, found) = s.post("/v1/findcloudlet", &body.to_string()).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["status"], "FIND_FOUND");
    assert_eq!(found["fqdn"], "paris.paris-orange.local.edge.example.net");
    assert_eq!(found["ports"][0]["proto"], "L_PROTO_TCP");
    assert_eq!(found["ports"][0]["internal_port"], 443);
    assert_eq!(found["cloudlet_location"]["latitude"], 48.8566);
    // Default values are omitted, as grpc-gateway does.
    assert!(
        found.get("ver").is_none() && found.get("qos_result").is_none(),
        "{found}"
    );
    assert!(
        found["edge_events_cookie"]
            .as_str()
            .is_some_and(|c| c.len() > 20)
    );
}

#[tokio::test]
async fn every_rest_rpc_answers() {
    let s = start(region()).await;
    let cookie = s.register(&fixture::app_key()).await;
    let platform = s.register(&platform_key()).await;
    let loc = json!({"latitude": 52.5, "longitude": 13.4});
    let cases = [
        (
            "/v1/getappinstlist",
            json!({"session_cookie": cookie, "gps_location": loc, "limit": 2}),
            "AI_SUCCESS",
        ),
        (
            "/v1/verifylocation",
            json!({"session_cookie": cookie, "gps_location": loc}),
            "LOC_VERIFIED",
        ),
        (
            "/v1/getlocation",
            json!({"session_cookie": cookie}),
            "LOC_FOUND",
        ),
        (
            "/v1/getappofficialfqdn",
            json!({"session_cookie": cookie, "gps_location": loc}),
            "AOF_SUCCESS",
        ),
        (
            "/v1/getfqdnlist",
            json!({"session_cookie": platform}),
            "FL_SUCCESS",
        ),
    ];
    for (path, body, want) in cases {
        let (status, reply) = s.post(path, &body.to_string()).await;
        assert_eq!(status, 200, "{path}: {reply}");
        let got = reply
            .get("status")
            .or_else(|| reply.get("gps_location_status"))
            .cloned();
        assert_eq!(got, Some(json!(want)), "{path}: {reply}");
    }
    let (_, official) = s
        .post(
            "/v1/getappofficialfqdn",
            &json!({"session_cookie": cookie, "gps_location": loc}).to_string(),
        )
        .await;
    let body = json!({"session_cookie": platform, "client_token": official["client_token"], "carrier_name": "telekom"});
    let (status, found) = s.post("/v1/platformfindcloudlet", &body.to_string()).await;
    assert_eq!(
        (status, found["fqdn"].clone()),
        (200, json!("berlin.berlin-telekom.local.edge.example.net"))
    );
    let (status, _) = s
        .post(
            "/v1/qosprioritysessioncreate",
            &json!({"session_cookie": cookie}).to_string(),
        )
        .await;
    assert_eq!(status, 501);
}

#[tokio::test]
async fn errors_map_to_gateway_statuses_with_clear_messages() {
    let s = start(region()).await;
    let cookie = s.register(&fixture::app_key()).await;
    let app_only = s.register(&fixture::app_key()).await;
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/v1/findcloudlet", "{not json".into(), 400, "invalid JSON request body"),
        ("/v1/findcloudlet", json!({"session_cookie": cookie, "bogus_field": 1}).to_string(), 400, "bogus_field"),
        ("/v1/findcloudlet", json!({"session_cookie": cookie}).to_string(), 400, "Missing GpsLocation"),
        (
            "/v1/findcloudlet",
            json!({"session_cookie": cookie, "gps_location": {"latitude": 95.0, "longitude": 0.0}}).to_string(),
            400,
            "Invalid GpsLocation",
        ),
        (
            "/v1/findcloudlet",
            json!({"session_cookie": cookie, "gps_location": {"latitude": "NaN", "longitude": 0.0}}).to_string(),
            400,
            "Invalid GpsLocation",
        ),
        ("/v1/findcloudlet", json!({"session_cookie": "x.y.z"}).to_string(), 401, "malformed cookie"),
        ("/v1/registerclient", json!({"org_name": "devorg", "app_name": "nope", "app_vers": "1"}).to_string(), 404, "app not found"),
        ("/v1/registerclient", json!({"org_name": "", "app_name": "a", "app_vers": "1"}).to_string(), 400, "OrgName cannot be empty"),
        ("/v1/getfqdnlist", json!({"session_cookie": app_only}).to_string(), 403, "API Not allowed"),
        ("/v1/findcloudlet", json!({"session_cookie": cookie, "gps_location": {"latitude": 1, "longitude": 1}, "carrier_name": 7}).to_string(), 400, "invalid JSON"),
        ("/v1/nosuchrpc", "{}".into(), 404, "no such API path"),
    ];
    for (path, body, status, needle) in cases {
        let (got, reply) = s.post(path, &body).await;
        assert_eq!(got, status, "{path} {body}: {reply}");
        let msg = reply["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{path} {body}: {reply}");
        assert!(reply["code"].is_number(), "{reply}");
        assert_eq!(reply["error"], reply["message"], "{reply}");
        assert_eq!(reply["details"], json!([]), "{reply}");
    }
    // Oversized bodies are refused before decoding.
    let big = json!({"session_cookie": "x".repeat(200_000)}).to_string();
    let (status, _) = s.post("/v1/findcloudlet", &big).await;
    assert_eq!(status, 413);
}

/// An oversized body gets the same grpc-gateway JSON error body as every other error: status
/// 413, code RESOURCE_EXHAUSTED (8), on RPC routes and unimplemented ones alike.
#[tokio::test]
async fn oversized_body_gets_the_gateway_error_body() {
    let s = start(region()).await;
    let big = json!({"session_cookie": "x".repeat(dme::rest::MAX_BODY_BYTES)}).to_string();
    for path in [
        "/v1/findcloudlet",
        "/v1/registerclient",
        "/v1/addusertogroup",
    ] {
        let (status, reply) = s.post(path, &big).await;
        assert_eq!(status, 413, "{path}: {reply}");
        assert_eq!(reply["code"], 8, "{path}: {reply}");
        let msg = reply["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("too large") && msg.contains(&dme::rest::MAX_BODY_BYTES.to_string()),
            "{path}: {reply}"
        );
        assert_eq!(reply["error"], reply["message"], "{reply}");
        assert_eq!(reply["details"], json!([]), "{reply}");
    }
    // A body just within the limit is still read and decoded.
    let pad = dme::rest::MAX_BODY_BYTES - r#"{"session_cookie":""}"#.len();
    let fits = json!({"session_cookie": "x".repeat(pad)}).to_string();
    assert_eq!(fits.len(), dme::rest::MAX_BODY_BYTES);
    let (status, reply) = s.post("/v1/findcloudlet", &fits).await;
    assert_eq!(status, 401, "{reply}");
}

#[tokio::test]
async fn expired_and_forged_cookies_are_unauthenticated() {
    let s = start(region()).await;
    let now = dme::Ctx::now(None).now;
    let key = SessionKey {
        orgname: "devorg".into(),
        appname: "app".into(),
        appvers: "1.0".into(),
        ..Default::default()
    };
    let expired = keys().sign(&Claims {
        iat: now - 100,
        exp: now - 1,
        key: key.clone(),
    });
    let foreign = dme::cookie::KeyRing::new(vec![("k1".into(), vec![8u8; 64])])
        .unwrap()
        .sign(&Claims {
            iat: now,
            exp: now + 100,
            key: key.clone(),
        });
    let gone = keys().sign(&Claims {
        iat: now,
        exp: now + 100,
        key: SessionKey {
            appname: "deleted-app".into(),
            ..key
        },
    });
    for (cookie, needle) in [
        (expired, "cookie expired"),
        (foreign, "invalid cookie signature"),
        (gone, "app not found"),
    ] {
        let body =
            json!({"session_cookie": cookie, "gps_location": {"latitude": 1, "longitude": 1}});
        let (status, reply) = s.post("/v1/findcloudlet", &body.to_string()).await;
        assert_eq!(status, 401, "{reply}");
        assert!(
            reply["message"].as_str().unwrap().contains(needle),
            "{reply}"
        );
    }
}

#[tokio::test]
async fn new_tables_are_visible_to_the_next_request() {
    let s = start(region()).await;
    let cookie = s.register(&fixture::app_key()).await;
    let body = json!({"session_cookie": cookie, "carrier_name": "orange", "gps_location": {"latitude": 48.85, "longitude": 2.35}});
    let (_, before) = s.post("/v1/findcloudlet", &body.to_string()).await;
    assert_eq!(before["fqdn"], "paris.paris-orange.local.edge.example.net");
    // Publish a region where Paris is under maintenance: orange clients now fall back to aws.
    let mut doc = region().build();
    for c in &mut doc.cloudlets {
        if c.key.name == "paris" {
            c.maintenance_state = edge_model::MaintenanceState::UnderMaintenance;
        }
    }
    s.dme
        .publish(dme::Tables::from_deployment(&doc, 2).unwrap());
    let (_, after) = s.post("/v1/findcloudlet", &body.to_string()).await;
    assert_eq!(
        after["fqdn"],
        "frankfurt.frankfurt-aws.local.edge.example.net"
    );
}

#[tokio::test]
async fn cors_echoes_the_origin() {
    let s = start(region()).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::builder()
        .method("OPTIONS")
        .uri(format!("http://{}/v1/findcloudlet", s.http))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    // A browser's actual request gets CORS headers; a non-browser one (no Origin) none.
    for origin in [Some("https://app.example"), None] {
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!("http://{}/v1/findcloudlet", s.http))
            .header("content-type", "application/json");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let body = http_body_util::Full::new(bytes::Bytes::from_static(b"{}"));
        let resp = client.request(req.body(body).unwrap()).await.unwrap();
        assert_eq!(resp.status(), 401, "no cookie");
        let allow = resp.headers().get("access-control-allow-origin");
        assert_eq!(allow.map(|v| v.to_str().unwrap()), origin);
        assert_eq!(resp.headers().contains_key("vary"), origin.is_some());
    }
}

#[tokio::test]
async fn rate_limited_clients_get_429_and_grpc_resource_exhausted() {
    use dme::ratelimit::{Rate, RateLimiter};
    let tables = dme::Tables::from_deployment(&region().build(), 1).unwrap();
    let limiter = RateLimiter::new(
        None,
        Some(Rate {
            per_second: 1,
            burst: 3,
        }),
    );
    let d =
        dme::Dme::new(tables, keys(), dme::DmeConfig::default(), None).with_rate_limiter(limiter);
    let s = start_dme(d).await;
    let body = r#"{"org_name":"devorg","app_name":"app","app_vers":"1.0"}"#;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(s.post("/v1/registerclient", body).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let (_, reply) = s.post("/v1/registerclient", body).await;
    assert!(
        reply["message"].as_str().unwrap().contains("rate limited"),
        "{reply}"
    );
    let e = s
        .client()
        .await
        .register_client(register_request(&fixture::app_key()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
}
