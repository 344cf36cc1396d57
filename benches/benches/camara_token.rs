//! What a CAMARA discovery request costs the DME without HTTP, and how much of it is the access
//! token: issue 15's "token verification cost per request".
//!
//! - `camara_token/ed25519_verify`: the signature check alone (ring), on a real token's signing
//!   input;
//! - `camara_token/verifier/{1,5}_keys`: `edge_auth::Verifier::verify_access` whole (split,
//!   base64, header JSON, key lookup by id, Ed25519, claims JSON, expiry) with one key, and with
//!   five after four rotations (the token signed by the newest or by the oldest key);
//! - `camara_token/key_source/...`: `edge_auth::KeySource::verify_access`, what the DME calls:
//!   `same_50_tokens` cycles over 50 tokens (50 API clients each keeping its token), and
//!   `distinct_100k_tokens` over 100 000 (a token seldom seen twice). Where `KeySource` keeps
//!   a cache of verified tokens, the first is a cache hit and the second a miss; without one
//!   both verify;
//! - `camara_decision/...`: the request's decision as `dme::camara_rest` makes it, minus HTTP,
//!   on a one-app region of 10 000 instances with an operator feed of one `/32` per client:
//!   the handler alone on a parsed body (`closest_zone`, `app_endpoints`), then body JSON in +
//!   handler + answer JSON out (`sed_json`, `aed_json`), then with the token verified
//!   (`sed_json_verify`, `aed_json_verify`: `Verifier::verify_access`, no cache;
//!   `..._key_source`: `KeySource::verify_access` over 50 tokens). `find_cloudlet_json` is the
//!   REST FindCloudlet's counterpart (JSON in, `Dme::find_cloudlet`, JSON out) on the same
//!   region and clients, for the ratio.

// The shipped binary's allocator (src/main.rs), so allocation costs match production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dme::camara::feed::FeedLocator;
use dme::camara::{Camara, handlers, json};
use dme::cookie::KeyRing;
use dme::{Ctx, Dme, DmeConfig, Tables};
use dme_api::proto;
use edge_auth::{ACCESS_TYP, AccessClaims, KeySource, SigningKeys, Verifier, scopes};
use edgeplane_benches::{RegionSpec, World, queries, region, registered_finds};

const NOW: i64 = 1_800_000_000;
const CLIENTS: usize = 512;

fn claims(i: usize, org: &str) -> AccessClaims {
    AccessClaims {
        iss: "https://mc.example.net:9900".into(),
        sub: format!("c0ffee00-0000-4000-8000-{i:012}"),
        client_id: format!("c0ffee00-0000-4000-8000-{i:012}"),
        org: org.into(),
        scope: format!(
            "{} {}",
            scopes::SIMPLE_EDGE_DISCOVERY,
            scopes::APP_ENDPOINT_DISCOVERY
        ),
        iat: NOW - 60,
        exp: NOW + 3600,
        jti: format!("jti-{i:016x}"),
    }
}

fn tokens(keys: &SigningKeys, org: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| keys.sign_typed(ACCESS_TYP, &claims(i, org)))
        .collect()
}

/// The public key, signing input and signature of a token signed by `keys`, for the bare
/// Ed25519 check.
fn split(keys: &SigningKeys, token: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwks = keys.jwks();
    let x = jwks["keys"][0]["x"].as_str().unwrap();
    let (signed, sig) = token.rsplit_once('.').unwrap();
    (
        b64.decode(x).unwrap(),
        signed.as_bytes().to_vec(),
        b64.decode(sig).unwrap(),
    )
}

fn token(c: &mut Criterion) {
    let org = dme::fixture::app_key().organization;
    let mut g = c.benchmark_group("camara_token");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let one = SigningKeys::generate().unwrap();
    let t1 = one.sign_typed(ACCESS_TYP, &claims(0, &org));
    let (public, signed, sig) = split(&one, &t1);
    g.bench_function("ed25519_verify", |b| {
        let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public);
        b.iter(|| key.verify(black_box(&signed), black_box(&sig)).unwrap());
    });
    let v1: Verifier = one.verifier().clone();
    g.bench_function("verifier/1_key", |b| {
        b.iter(|| v1.verify_access(black_box(&t1), NOW).unwrap());
    });

    // Five keys: the oldest signed `oldest`, then four rotations; the newest signs `newest`.
    let mut five = SigningKeys::generate().unwrap();
    let oldest = five.sign_typed(ACCESS_TYP, &claims(1, &org));
    for _ in 0..4 {
        five.rotate().unwrap();
    }
    assert_eq!(five.kids().len(), 5);
    let newest = five.sign_typed(ACCESS_TYP, &claims(2, &org));
    let v5: Verifier = five.verifier().clone();
    g.bench_function("verifier/5_keys_newest", |b| {
        b.iter(|| v5.verify_access(black_box(&newest), NOW).unwrap());
    });
    g.bench_function("verifier/5_keys_oldest", |b| {
        b.iter(|| v5.verify_access(black_box(&oldest), NOW).unwrap());
    });

    for (name, keys) in [("1_key", &one), ("5_keys", &five)] {
        let source = KeySource::fixed(keys.verifier().clone());
        let few = tokens(keys, &org, 50);
        g.bench_function(format!("key_source/{name}/same_50_tokens"), |b| {
            let mut i = 0usize;
            b.iter(|| {
                let t = &few[i % few.len()];
                i += 1;
                assert!(black_box(source.verify_access(t, NOW)).is_ok());
            });
        });
    }
    let source = KeySource::fixed(one.verifier().clone());
    let many = tokens(&one, &org, 100_000);
    // The position survives criterion's calls of the routine (warm-up, samples), so no token is
    // presented twice while fewer than 100 000 have been timed: every call is a cache miss.
    let mut i = 0usize;
    g.bench_function("key_source/1_key/distinct_100k_tokens", |b| {
        b.iter(|| {
            let t = &many[i % many.len()];
            i += 1;
            assert!(black_box(source.verify_access(t, NOW)).is_ok());
        });
    });
    g.finish();
}

fn ctx() -> Ctx {
    Ctx::now(Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))))
}

/// The device of client `i` and its feed line.
fn device(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 1)) + i as u32)
}

fn decision(c: &mut Criterion) {
    let world = World::load().unwrap();
    let qs = queries(&world, CLIENTS, 17);
    let app = dme::fixture::app_key();
    let app_id = edge_model::camara_id::app_id(&app);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _rt = rt.enter();

    // The operator feed: client i's address at client i's location.
    let mut feed = tempfile::NamedTempFile::new().unwrap();
    for (i, q) in qs.iter().enumerate() {
        writeln!(
            feed,
            "ip {}/32 {:.6} {:.6} 1000",
            device(i),
            q.at.lat(),
            q.at.lon()
        )
        .unwrap();
    }
    feed.flush().unwrap();
    let keys = SigningKeys::generate().unwrap();
    let source = KeySource::fixed(keys.verifier().clone());
    let verifier: Verifier = keys.verifier().clone();
    let cam = Camara {
        keys: source.clone(),
        locator: FeedLocator::open(feed.path()).unwrap(),
        operator: Some(edgeplane_benches::CARRIERS[0].into()),
    };
    let tables = Tables::from_deployment(&region(&world, &RegionSpec::one_app(10_000)), 1).unwrap();
    let dme = Dme::new(tables, KeyRing::random(), DmeConfig::default(), None);
    let toks = tokens(&keys, &app.organization, 50);
    let claims0 = verifier.verify_access(&toks[0], NOW).unwrap();

    let body = |i: usize, aed: bool| {
        let mut v = serde_json::json!({
            "device": {"ipv4Address": {"publicAddress": device(i).to_string(), "publicPort": 5000}}
        });
        if aed {
            v["appId"] = serde_json::json!(app_id);
        }
        serde_json::to_vec(&v).unwrap()
    };
    let sed_bodies: Vec<Vec<u8>> = (0..CLIENTS).map(|i| body(i, false)).collect();
    let aed_bodies: Vec<Vec<u8>> = (0..CLIENTS).map(|i| body(i, true)).collect();
    let sed_objs: Vec<json::Obj> = sed_bodies.iter().map(|b| json::body(b).unwrap()).collect();
    let aed_objs: Vec<json::Obj> = aed_bodies.iter().map(|b| json::body(b).unwrap()).collect();
    // FindCloudlet's counterpart: the same clients, registered.
    let find_bodies: Vec<Vec<u8>> = registered_finds(&dme, &app, &qs, ctx())
        .unwrap()
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap())
        .collect();

    // Every answer checked once before timing.
    for i in 0..CLIENTS {
        let t = dme.tables();
        let z = handlers::closest_zone(&t, &cam, &sed_objs[i], NOW).unwrap();
        let z: serde_json::Value = serde_json::from_slice(&z).unwrap();
        assert!(z["edgeCloudZoneId"].is_string());
        let e = handlers::app_endpoints(&t, &cam, &claims0, &aed_objs[i], NOW).unwrap();
        let e: serde_json::Value = serde_json::from_slice(&e).unwrap();
        assert!(!e["applicationEndpoints"].as_array().unwrap().is_empty());
    }

    let mut g = c.benchmark_group("camara_decision");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("find_cloudlet_json", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let body = &find_bodies[i % CLIENTS];
            i += 1;
            let req: proto::FindCloudletRequest = serde_json::from_slice(body).unwrap();
            serde_json::to_vec(&dme.find_cloudlet(&req, ctx()).unwrap()).unwrap()
        });
    });
    g.bench_function("closest_zone", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let body = &sed_objs[i % CLIENTS];
            i += 1;
            handlers::closest_zone(&dme.tables(), &cam, body, NOW).unwrap()
        });
    });
    g.bench_function("app_endpoints", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let body = &aed_objs[i % CLIENTS];
            i += 1;
            handlers::app_endpoints(&dme.tables(), &cam, &claims0, body, NOW).unwrap()
        });
    });
    g.bench_function("sed_json", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let body = json::body(&sed_bodies[i % CLIENTS]).unwrap();
            i += 1;
            handlers::closest_zone(&dme.tables(), &cam, &body, NOW).unwrap()
        });
    });
    g.bench_function("aed_json", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let body = json::body(&aed_bodies[i % CLIENTS]).unwrap();
            i += 1;
            handlers::app_endpoints(&dme.tables(), &cam, &claims0, &body, NOW).unwrap()
        });
    });
    g.bench_function("sed_json_verify", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let claims = verifier.verify_access(&toks[i % toks.len()], NOW).unwrap();
            assert!(claims.has_scope(scopes::SIMPLE_EDGE_DISCOVERY));
            let body = json::body(&sed_bodies[i % CLIENTS]).unwrap();
            i += 1;
            handlers::closest_zone(&dme.tables(), &cam, &body, NOW).unwrap()
        });
    });
    g.bench_function("aed_json_verify", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let claims = verifier.verify_access(&toks[i % toks.len()], NOW).unwrap();
            assert!(claims.has_scope(scopes::APP_ENDPOINT_DISCOVERY));
            let body = json::body(&aed_bodies[i % CLIENTS]).unwrap();
            i += 1;
            handlers::app_endpoints(&dme.tables(), &cam, &claims, &body, NOW).unwrap()
        });
    });
    // What the DME calls. (Its result type depends on whether `KeySource` caches, so only
    // success is checked; the claims the handler takes are the same token's, verified above.)
    g.bench_function("sed_json_key_source", |b| {
        let mut i = 0usize;
        b.iter(|| {
            assert!(black_box(source.verify_access(&toks[i % toks.len()], NOW)).is_ok());
            let body = json::body(&sed_bodies[i % CLIENTS]).unwrap();
            i += 1;
            handlers::closest_zone(&dme.tables(), &cam, &body, NOW).unwrap()
        });
    });
    g.bench_function("aed_json_key_source", |b| {
        let mut i = 0usize;
        b.iter(|| {
            assert!(black_box(source.verify_access(&toks[i % toks.len()], NOW)).is_ok());
            let body = json::body(&aed_bodies[i % CLIENTS]).unwrap();
            i += 1;
            handlers::app_endpoints(&dme.tables(), &cam, &claims0, &body, NOW).unwrap()
        });
    });
    g.finish();
}

criterion_group!(benches, token, decision);
criterion_main!(benches);
