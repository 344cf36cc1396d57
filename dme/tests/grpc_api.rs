//! Every RPC over a real gRPC socket, under both service generations.

mod common;

use common::*;
use dme::fixture;
use dme::proto::{
    self, find_cloudlet_reply::FindStatus, location_client::LocationClient,
    platform_os_client::PlatformOsClient, session_client::SessionClient,
    verify_location_reply::GpsLocationStatus,
};
use tonic::Code;

#[tokio::test]
async fn register_and_find_over_both_service_generations() {
    let s = start(region()).await;
    let k = fixture::app_key();
    // EdgeXR name for RegisterClient, MobiledgeX name for FindCloudlet.
    let reply = SessionClient::new(s.channel().await)
        .register_client(register_request(&k))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.status, proto::ReplyStatus::RsSuccess as i32);
    assert_eq!(reply.unique_id_type, "dme-ksuid");
    assert_eq!(reply.unique_id.len(), 27);
    let found = s
        .client()
        .await
        .find_cloudlet(find_request(&reply.session_cookie, "telekom", 52.4, 13.3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.status, FindStatus::FindFound as i32);
    assert_eq!(found.fqdn, "berlin.berlin-telekom.local.edge.example.net");
    assert_eq!(found.ports.len(), 1);
    assert_eq!(found.ports[0].public_port, 443);
    assert_eq!(found.ports[0].proto, proto::LProto::Tcp as i32);
    let cl = found.cloudlet_location.unwrap();
    assert_eq!((cl.latitude, cl.longitude), (52.52, 13.405));
    // The edge-events cookie names the instance found and where the client was.
    let app = fixture::app_key();
    let ee = dme::edge_cookie::verify(
        &keys(),
        dme::edge_cookie::app_tag(&app.organization, &app.name, &app.version),
        &found.edge_events_cookie,
        dme::Ctx::now(None).now,
        0,
    )
    .expect("valid edge-events cookie");
    assert_eq!(ee.inst, dme::edge_cookie::inst_tag("devorg", "berlin"));
    assert_eq!(ee.at.lat(), 52.4);
}

#[tokio::test]
async fn find_reports_not_found_and_translates_operator_codes() {
    let s = start(region()).await;
    let cookie = s.register(&fixture::app_key()).await;
    let mut c = s.client().await;
    // 26201 is telekom: near Munich, telekom's Munich site wins.
    let r = c
        .find_cloudlet(find_request(&cookie, "26201", 48.2, 11.6))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.fqdn, "munich.munich-telekom.local.edge.example.net");
    // From Paris, aws Frankfurt (478 km + 100 km padding) beats telekom Munich (685 km).
    let r = c
        .find_cloudlet(find_request(&cookie, "26201", 48.85, 2.35))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.fqdn, "frankfurt.frankfurt-aws.local.edge.example.net");
    // Unknown carrier: only the public cloud can serve.
    let r = c
        .find_cloudlet(find_request(&cookie, "nobody", 48.85, 2.35))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.fqdn, "frankfurt.frankfurt-aws.local.edge.example.net");
    // Platform apps are never returned.
    let pcookie = s.register(&platform_key()).await;
    let r = c
        .find_cloudlet(find_request(&pcookie, "", 48.85, 2.35))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status, FindStatus::FindNotfound as i32);
    assert_eq!(r.fqdn, "");
}

#[tokio::test]
async fn bad_requests_get_the_reference_codes() {
    let s = start(region()).await;
    let cookie = s.register(&fixture::app_key()).await;
    let mut c = s.client().await;
    let code = |r: Result<tonic::Response<proto::FindCloudletReply>, tonic::Status>| {
        let e = r.unwrap_err();
        (e.code(), e.message().to_string())
    };
    let mut missing = find_request(&cookie, "", 0.0, 0.0);
    missing.gps_location = None;
    let (c1, m1) = code(c.find_cloudlet(missing).await);
    assert_eq!(c1, Code::InvalidArgument);
    assert!(m1.contains("Missing GpsLocation"), "{m1}");
    for (lat, lon) in [
        (91.0, 0.0),
        (0.0, -180.5),
        (f64::NAN, 0.0),
        (0.0, f64::INFINITY),
    ] {
        let (c2, m2) = code(c.find_cloudlet(find_request(&cookie, "", lat, lon)).await);
        assert_eq!(c2, Code::InvalidArgument, "{lat},{lon}");
        assert!(m2.contains("Invalid GpsLocation"), "{m2}");
    }
    let (c3, m3) = code(c.find_cloudlet(find_request("", "", 1.0, 1.0)).await);
    assert_eq!(c3, Code::Unauthenticated);
    assert!(m3.contains("missing session cookie"), "{m3}");
    let (c4, _) = code(c.find_cloudlet(find_request("garbage", "", 1.0, 1.0)).await);
    assert_eq!(c4, Code::Unauthenticated);
    // Registration input.
    let mut empty = register_request(&fixture::app_key());
    empty.app_name.clear();
    let e = c.register_client(empty).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.message(), "AppName cannot be empty");
    let mut unknown = register_request(&fixture::app_key());
    unknown.app_vers = "9.9".into();
    assert_eq!(
        c.register_client(unknown).await.unwrap_err().code(),
        Code::NotFound
    );
    let mut half = register_request(&fixture::app_key());
    half.unique_id = "abc".into();
    let e = c.register_client(half).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("Both, or none"), "{}", e.message());
    let mut huge = register_request(&fixture::app_key());
    huge.unique_id = "x".repeat(300);
    huge.unique_id_type = "t".into();
    assert_eq!(
        c.register_client(huge).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    // Oversized message: rejected by the transport with a clear status, never processed.
    let mut big = find_request(&cookie, "", 1.0, 1.0);
    big.carrier_name = "x".repeat(100_000);
    let e = c.find_cloudlet(big).await.unwrap_err();
    assert!(
        matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{:?} {}",
        e.code(),
        e.message()
    );
}

#[tokio::test]
async fn client_supplied_unique_ids_are_kept_in_the_cookie_not_echoed() {
    let s = start(region()).await;
    let mut req = register_request(&fixture::app_key());
    req.unique_id = "device-1".into();
    req.unique_id_type = "imei-ish".into();
    let r = s
        .client()
        .await
        .register_client(req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.unique_id, "");
    assert_eq!(r.unique_id_type, "");
    let now = dme::Ctx::now(None).now;
    let id = keys()
        .verify_session(&r.session_cookie, now, |k| {
            (k.uniqueid.to_string(), k.peerip.to_string())
        })
        .unwrap();
    assert_eq!(id, ("device-1".to_string(), "127.0.0.1".to_string()));
}

#[tokio::test]
async fn app_inst_list_groups_by_cloudlet_in_distance_order() {
    let s = start(region()).await;
    let cookie = s.register(&fixture::app_key()).await;
    let r = s
        .client()
        .await
        .get_app_inst_list(proto::AppInstListRequest {
            session_cookie: cookie.clone(),
            carrier_name: "telekom".into(),
            gps_location: loc(53.0, 10.0),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        proto::app_inst_list_reply::AiStatus::AiSuccess as i32
    );
    let names: Vec<_> = r
        .cloudlets
        .iter()
        .map(|c| c.cloudlet_name.as_str())
        .collect();
    // Hamburg (vodafone, allied), Berlin, Munich; aws Frankfurt padded by 100 km comes after Berlin.
    assert_eq!(names, ["hamburg", "berlin", "frankfurt", "munich"]);
    assert_eq!(r.cloudlets[0].carrier_name, "vodafone");
    assert!(
        r.cloudlets
            .windows(2)
            .all(|w| w[0].distance <= w[1].distance)
    );
    assert!(
        r.cloudlets
            .iter()
            .all(|c| c.appinstances.len() == 1 && !c.appinstances[0].edge_events_cookie.is_empty())
    );
    // Default limit is 3; too large a limit is refused.
    let mut req = proto::AppInstListRequest {
        session_cookie: cookie,
        gps_location: loc(53.0, 10.0),
        ..Default::default()
    };
    let r = s
        .client()
        .await
        .get_app_inst_list(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.cloudlets.len(), 3);
    req.limit = 1_000_000;
    let e = s.client().await.get_app_inst_list(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn verify_location_thresholds_and_get_location() {
    let s = start(region()).await;
    let cookie = s.register(&fixture::app_key()).await;
    let mut c = LocationClient::new(s.channel().await);
    // Network location is Berlin (52.52, 13.405); one degree of latitude is ~111.2 km.
    let cases = [
        (0.005, GpsLocationStatus::LocVerified, 2.0),
        (0.05, GpsLocationStatus::LocVerified, 10.0),
        (0.5, GpsLocationStatus::LocVerified, 100.0),
        (1.0, GpsLocationStatus::LocMismatchSameCountry, -1.0),
    ];
    for (dlat, status, accuracy) in cases {
        let r = c
            .verify_location(proto::VerifyLocationRequest {
                session_cookie: cookie.clone(),
                gps_location: loc(52.52 + dlat, 13.405),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.gps_location_status, status as i32, "dlat {dlat}");
        assert_eq!(r.gps_location_accuracy_km, accuracy, "dlat {dlat}");
    }
    let e = c
        .verify_location(proto::VerifyLocationRequest {
            session_cookie: cookie.clone(),
            gps_location: loc(0.0, 0.0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("Missing GPS location"));
    let r = c
        .get_location(proto::GetLocationRequest {
            session_cookie: cookie,
            carrier_name: "telekom".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        proto::get_location_reply::LocStatus::LocFound as i32
    );
    assert_eq!(r.carrier_name, "telekom");
    assert_eq!(r.network_location.unwrap().latitude, 52.52);
}

#[tokio::test]
async fn platform_flow_official_fqdn_then_platform_find() {
    let s = start(region()).await;
    let app_cookie = s.register(&fixture::app_key()).await;
    let platform_cookie = s.register(&platform_key()).await;
    let mut c = s.client().await;
    let official = c
        .get_app_official_fqdn(proto::AppOfficialFqdnRequest {
            session_cookie: app_cookie.clone(),
            gps_location: loc(48.2, 11.6),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        official.status,
        proto::app_official_fqdn_reply::AofStatus::AofSuccess as i32
    );
    assert_eq!(official.app_official_fqdn, "app.devorg.example.com");
    assert_eq!(official.ports[0].internal_port, 443);
    assert_eq!(official.ports[0].public_port, 0);
    let mut p = PlatformOsClient::new(s.channel().await);
    let req = |token: &str, cookie: &str| proto::PlatformFindCloudletRequest {
        session_cookie: cookie.into(),
        carrier_name: "telekom".into(),
        client_token: token.into(),
        ..Default::default()
    };
    let found = p
        .platform_find_cloudlet(req(&official.client_token, &platform_cookie))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.fqdn, "munich.munich-telekom.local.edge.example.net");
    // The token is signed: a forged one is refused.
    let mut forged = official.client_token.clone();
    forged.insert(forged.len() / 2, 'A');
    let e = p
        .platform_find_cloudlet(req(&forged, &platform_cookie))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("Invalid ClientToken"),
        "{}",
        e.message()
    );
    let e = p
        .platform_find_cloudlet(req("", &platform_cookie))
        .await
        .unwrap_err();
    assert_eq!(e.message(), "Missing ClientToken");
    // Only platform apps may call it.
    let e = p
        .platform_find_cloudlet(req(&official.client_token, &app_cookie))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // GetFqdnList: platform only, lists apps with official FQDNs.
    let list = p
        .get_fqdn_list(proto::FqdnListRequest {
            session_cookie: platform_cookie,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.app_fqdns.len(), 1);
    assert_eq!(list.app_fqdns[0].fqdns, ["app.devorg.example.com"]);
    assert_eq!(list.app_fqdns[0].android_package_name, "com.devorg.app");
    let e = p
        .get_fqdn_list(proto::FqdnListRequest {
            session_cookie: app_cookie,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn unimplemented_rpcs_say_so_after_checking_the_cookie() {
    let s = start(region()).await;
    let cookie = s.register(&fixture::app_key()).await;
    let mut c = s.client().await;
    let e = c
        .qos_priority_session_create(proto::QosPrioritySessionCreateRequest {
            session_cookie: cookie,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    let e = c
        .qos_priority_session_create(proto::QosPrioritySessionCreateRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // A stream that sends nothing before closing gets no INIT: refused.
    let e = c
        .stream_edge_event(futures::stream::empty())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
}

#[tokio::test]
async fn health_reports_serving_for_every_service() {
    let s = start(region()).await;
    let mut h = tonic_health::pb::health_client::HealthClient::new(s.channel().await);
    for name in dme::grpc::SERVICE_NAMES {
        let r = h
            .check(tonic_health::pb::HealthCheckRequest {
                service: name.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
}
