//! The FindCloudlet service call without network, and its parts: session-cookie verification
//! and signing (HS512 JWTs), the edge-events cookie, the decision, protobuf and JSON coding of
//! the request and reply, and `Dme::find_cloudlet` whole (cookie verify + app lookup + match +
//! reply with a freshly signed edge-events cookie, counted in the API counters), at 10k and 100k
//! instances of one app. Also a scrape of the API counters with 10 000 apps.

// The shipped binary's allocator (src/main.rs), so allocation costs match production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dme::cookie::{Claims, KeyRing, SessionKey};
use dme::{Ctx, Dme, DmeConfig, Tables};
use dme_api::proto;
use edgeplane_benches::{Query, RegionSpec, World, queries, region, registered_finds};
use prost::Message;

const SECRET: [u8; 64] = [7; 64];

fn keys() -> KeyRing {
    KeyRing::new(vec![("k1".into(), SECRET.to_vec())]).unwrap()
}

fn ctx() -> Ctx {
    Ctx::now(Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))))
}

/// A DME over a one-app region of `n` instances, and FindCloudlet requests of registered
/// clients (each its own cookie, location and carrier).
fn setup(world: &World, n: usize, qs: &[Query]) -> (Dme, Vec<proto::FindCloudletRequest>) {
    let tables = Tables::from_deployment(&region(world, &RegionSpec::one_app(n)), 1).unwrap();
    let dme = Dme::new(tables, keys(), DmeConfig::default(), None);
    let reqs = registered_finds(&dme, &dme::fixture::app_key(), qs, ctx()).unwrap();
    (dme, reqs)
}

fn service(c: &mut Criterion) {
    let world = World::load().unwrap();
    let qs = queries(&world, 512, 17);
    let mut g = c.benchmark_group("service");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut small = None;
    for n in [10_000, 100_000] {
        let (dme, reqs) = setup(&world, n, &qs);
        g.bench_function(BenchmarkId::new("find_cloudlet", n), |b| {
            let mut i = 0usize;
            b.iter(|| {
                let r = &reqs[i % reqs.len()];
                i += 1;
                dme.find_cloudlet(r, ctx()).unwrap()
            });
        });
        if n == 10_000 {
            // What the REST front end adds around the call: JSON in, JSON out.
            let bodies: Vec<Vec<u8>> = reqs
                .iter()
                .map(|r| serde_json::to_vec(r).unwrap())
                .collect();
            g.bench_function(BenchmarkId::new("find_cloudlet_json", n), |b| {
                let mut i = 0usize;
                b.iter(|| {
                    let body = &bodies[i % bodies.len()];
                    i += 1;
                    let req: proto::FindCloudletRequest = serde_json::from_slice(body).unwrap();
                    serde_json::to_vec(&dme.find_cloudlet(&req, ctx()).unwrap()).unwrap()
                });
            });
            // And the gRPC one: protobuf in, protobuf out.
            let frames: Vec<Vec<u8>> = reqs.iter().map(Message::encode_to_vec).collect();
            g.bench_function(BenchmarkId::new("find_cloudlet_proto", n), |b| {
                let mut i = 0usize;
                b.iter(|| {
                    let frame = &frames[i % frames.len()];
                    i += 1;
                    let req = proto::FindCloudletRequest::decode(frame.as_slice()).unwrap();
                    dme.find_cloudlet(&req, ctx()).unwrap().encode_to_vec()
                });
            });
            let reg = proto::RegisterClientRequest {
                org_name: "devorg".into(),
                app_name: "app".into(),
                app_vers: "1.0".into(),
                ..Default::default()
            };
            g.bench_function("register_client", |b| {
                b.iter(|| dme.register_client(&reg, ctx()).unwrap());
            });
            small = Some((dme, reqs));
        }
    }
    g.finish();
    if let Some((dme, reqs)) = small {
        coding(c, &dme, &reqs);
    }
    cookies(c, &reqs_cookie(&world));
    metrics(c, &world);
}

/// A scrape of the API counters (`GET /metrics` without HTTP) with 10 000 apps, each called
/// over two RPCs: what Shepherd's scrape every few seconds costs the DME.
fn metrics(c: &mut Criterion, world: &World) {
    use dme::api_stats::{Method, Outcome};
    let spec = RegionSpec::many_apps(10_000, 1, 10_000);
    let tables = Tables::from_deployment(&region(world, &spec), 1).unwrap();
    for (i, app) in tables.apps().enumerate() {
        let micros = Duration::from_micros(i as u64 % 300);
        app.stats
            .record(Method::RegisterClient, Outcome::Ok, micros);
        app.stats
            .record(Method::FindCloudlet, Outcome::Found, micros);
    }
    let unknown = dme::api_stats::AppStats::default();
    unknown.record(Method::FindCloudlet, Outcome::Error, Duration::ZERO);
    let bytes = tables.render_stats(&unknown).len();
    eprintln!("metrics: a scrape of 10 000 apps is {bytes} bytes");
    let mut g = c.benchmark_group("metrics");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("render_10k_apps", |b| {
        b.iter(|| tables.render_stats(&unknown).len());
    });
    g.finish();
    // What counting adds to every request: reading the clock once more, and the adds.
    let mut g = c.benchmark_group("counters");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let at = ctx();
    g.bench_function("latency_clock_read", |b| {
        b.iter(|| black_box(&at).elapsed())
    });
    g.bench_function("record", |b| {
        b.iter(|| {
            black_box(&unknown).record(Method::FindCloudlet, Outcome::Found, Duration::ZERO);
        });
    });
    g.finish();
}

/// Protobuf and JSON coding of FindCloudlet's request and reply, alone.
fn coding(c: &mut Criterion, dme: &Dme, reqs: &[proto::FindCloudletRequest]) {
    let req = &reqs[0];
    let reply = dme.find_cloudlet(req, ctx()).unwrap();
    let mut g = c.benchmark_group("coding");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let frame = req.encode_to_vec();
    g.bench_function("proto_decode_request", |b| {
        b.iter(|| proto::FindCloudletRequest::decode(black_box(frame.as_slice())).unwrap());
    });
    g.bench_function("proto_encode_reply", |b| {
        b.iter(|| black_box(&reply).encode_to_vec());
    });
    let body = serde_json::to_vec(req).unwrap();
    g.bench_function("json_decode_request", |b| {
        b.iter(|| serde_json::from_slice::<proto::FindCloudletRequest>(black_box(&body)).unwrap());
    });
    g.bench_function("json_encode_reply", |b| {
        b.iter(|| serde_json::to_vec(black_box(&reply)).unwrap());
    });
    g.finish();
}

fn reqs_cookie(world: &World) -> Vec<String> {
    let (_, reqs) = setup(world, 100, &queries(world, 64, 19));
    reqs.into_iter().map(|r| r.session_cookie).collect()
}

/// Session-cookie verification (the hot path of every RPC) and signing; edge-events signing.
fn cookies(c: &mut Criterion, cookies: &[String]) {
    let ring = keys();
    let now = ctx().now;
    let mut g = c.benchmark_group("cookie");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    g.bench_function("verify_session", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let cookie = &cookies[i % cookies.len()];
            i += 1;
            ring.verify_session(cookie, now, |k| k.appname.len())
                .unwrap()
        });
    });
    let session = Claims {
        iat: now,
        exp: now + 86_400,
        key: SessionKey {
            peerip: "10.1.2.3".into(),
            orgname: "devorg".into(),
            appname: "app".into(),
            appvers: "1.0".into(),
            uniqueidtype: "dme-ksuid".into(),
            uniqueid: "2Dxjq3JtZ1xQeC4eGz3qYl2Xk9F".into(),
            kid: String::new(),
        },
    };
    g.bench_function("sign_session", |b| {
        b.iter(|| ring.sign(black_box(&session)))
    });
    // Upstream's shape of the edge-events cookie (a JWT of the instance's names and the
    // client's location), for comparison with the compact cookie the DME now signs.
    let edge_jwt = Claims {
        iat: now,
        exp: now + 600,
        key: serde_json::json!({
            "appinstname": "app-1234", "appinstorg": "devorg", "clusterorg": "devorg",
            "cloudletorg": "telekom", "cloudletname": "c1234",
            "location": {"latitude": 52.52, "longitude": 13.405},
        }),
    };
    g.bench_function("sign_edge_events_jwt", |b| {
        b.iter(|| ring.sign_for(dme::cookie::Purpose::EdgeEvents, black_box(&edge_jwt)))
    });
    let (app, inst) = (
        dme::edge_cookie::app_tag("devorg", "app", "1.0"),
        dme::edge_cookie::inst_tag("devorg", "app-1234"),
    );
    let at = geodata::LatLon::new(52.52, 13.405).unwrap();
    g.bench_function("sign_edge_events", |b| {
        b.iter(|| dme::edge_cookie::sign(&ring, black_box(app), inst, at, now, now + 600))
    });
    let cookie = dme::edge_cookie::sign(&ring, app, inst, at, now, now + 600);
    g.bench_function("verify_edge_events", |b| {
        b.iter(|| dme::edge_cookie::verify(&ring, app, black_box(&cookie), now, 0).unwrap())
    });
    g.bench_function("ksuid", |b| b.iter(|| dme::ksuid::new(now)));
    g.finish();
}

criterion_group!(benches, service);
criterion_main!(benches);
