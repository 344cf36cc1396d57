//! The CAMARA APIs over a real region: a controller (fake platform), an MC issuing access
//! tokens, and a DME fed by the controller over mutual TLS that verifies them with the MC's
//! published keys (its JWKS URL over HTTPS) and locates devices from an operator feed. An app
//! goes in through Edge Application Management and comes out through the DME:
//! - a device by phone number and by IP address gets the zone and endpoint an SDK client at
//!   that place gets from FindCloudlet, and Simple Edge Discovery names the same zone;
//! - location verification with a circle around the device, one elsewhere, and polygons;
//!   location retrieval;
//! - an unknown device; a token without the scope; an expired one;
//! - terminated instances stop being discovered.

#[path = "common/camara.rs"]
mod camara;
#[path = "common/mc.rs"]
#[allow(unused_macros)]
mod mc_common;
#[path = "common/mc_region.rs"]
mod mc_region;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camara::{
    Reply, access_token, api_key, call_at, camara_error, eam, manifest, org_with_manager,
};
use edge_auth::{ACCESS_TYP, AccessClaims, SigningKeys, scopes};
use edge_model::{CloudletKey, camara_id};
use mc_common::{Backend, now};
use mc_region::{Region, result};
use serde_json::{Value, json};

const DEV: &str = "NimbusGames";
const OP: &str = "TelcoOperatorA";
const SED: &str = "/simple-edge-discovery/v2/retrieve-closest-edge-cloud-zone";
const AED: &str = "/application-endpoint-discovery/v0.1/retrieve-optimal-app-endpoints";
const VERIFY: &str = "/location-verification/v3/verify";
const RETRIEVE: &str = "/location-retrieval/v0.5/retrieve";

const BERLIN: (f64, f64) = (52.52, 13.405);
const MUNICH: (f64, f64) = (48.137, 11.575);
const BERLIN_PHONE: &str = "+4917012345678";
const MUNICH_PHONE: &str = "+4989123456";

/// What the operator's network exports: two address pools and two subscribers' cells.
const FEED: &str = "\
ip 10.20.0.0/16 52.52 13.405 2000
ip 10.30.0.0/16 48.137 11.575 2000
phone +4917012345678 52.5201 13.4049 500
phone +4989123456 48.1371 11.5751 500
";

/// A DME process subscribed to the region's controller with the CAMARA APIs on.
struct Dme {
    child: Child,
    rest: String,
    _dir: tempfile::TempDir,
}

impl Drop for Dme {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dme(r: &Region) -> Dme {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("devices.feed");
    std::fs::write(&feed, FEED).unwrap();
    let pki = r.pki.dir.path().to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(["pki", "issue", "--dir", pki, "--role", "dme", "--name", "t"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let log = std::fs::File::create(dir.path().join("dme.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(["dme", "--controller", &r.ctl.notify])
        .args(r.pki.flags("dme"))
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args([
            "--camara-jwks",
            &format!("{}/.well-known/jwks.json", r.mc.url),
        ])
        .arg("--camara-location")
        .arg(format!("feed:{}", feed.display()))
        .args(["--camara-operator", OP])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "DME serving N apps: gRPC on A, REST on B"
    let rest = line
        .split("REST on ")
        .nth(1)
        .and_then(|r| r.split([' ', ',', '\n']).next())
        .unwrap_or_else(|| {
            let log = std::fs::read_to_string(dir.path().join("dme.log"));
            panic!("DME did not start: {line:?} {log:?}")
        })
        .to_string();
    Dme {
        child,
        rest: format!("http://{rest}"),
        _dir: dir,
    }
}

/// A CAMARA call on the DME.
fn post(dme: &Dme, token: &str, path: &str, body: &Value) -> Reply {
    let auth = format!("Authorization: Bearer {token}");
    let text = body.to_string();
    let args = [
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "-H",
        "x-correlator: scenario-1",
        "--data-binary",
        &text,
    ];
    let r = call_at(&dme.rest, &[], "POST", path, &args);
    assert_eq!(r.header("x-correlator").as_deref(), Some("scenario-1"));
    r
}

/// A plain REST call of the DME's native API (what an SDK sends).
fn native(dme: &Dme, rpc: &str, body: &Value) -> Value {
    let r = call_at(
        &dme.rest,
        &[],
        "POST",
        &format!("/v1/{rpc}"),
        &["--data-binary", &body.to_string()],
    );
    assert_eq!(r.status, 200, "{rpc}: {}", r.body);
    r.body
}

fn phone(p: &str) -> Value {
    json!({"phoneNumber": p})
}

fn ip(a: &str) -> Value {
    json!({"ipv4Address": {"publicAddress": a, "publicPort": 40000}})
}

fn zone_of(name: &str) -> String {
    camara_id::zone_id(&CloudletKey {
        organization: OP.into(),
        name: name.into(),
    })
}

fn setup_cloudlets(r: &Region) {
    let op = org_with_manager(&r.mc, "opmgr", OP, "operator");
    for (name, (lat, lon)) in [("berlin", BERLIN), ("munich", MUNICH)] {
        let c = json!({"key": {"organization": OP, "name": name}, "platform_type": "fake",
                       "location": {"latitude": lat, "longitude": lon}});
        let (s, b) = r.ctrl(&op, "CreateCloudlet", "cloudlet", c);
        assert_eq!((s, result(&b).0), (200, 200), "{b}");
    }
}

/// Polls AED for `device` until `done` holds for the reply (or 60 s pass).
fn wait_aed(
    dme: &Dme,
    token: &str,
    app_id: &str,
    device: &Value,
    done: impl Fn(&Reply) -> bool,
) -> Reply {
    let start = Instant::now();
    loop {
        let r = post(dme, token, AED, &json!({"appId": app_id, "device": device}));
        if done(&r) || start.elapsed() > Duration::from_secs(60) {
            return r;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The zone of AED's first endpoint.
fn aed_zone(r: &Reply) -> String {
    r.body["applicationEndpoints"][0]["edgeCloudZone"]["edgeCloudZoneId"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// FindCloudlet for an SDK client at `at` on the operator's network: (fqdn, public port).
fn find_cloudlet(dme: &Dme, at: (f64, f64)) -> (String, u64) {
    let reg = native(
        dme,
        "registerclient",
        &json!({"org_name": DEV, "app_name": "arena_shooter", "app_vers": "2.3"}),
    );
    let cookie = reg["session_cookie"].as_str().expect("a session cookie");
    let found = native(
        dme,
        "findcloudlet",
        &json!({"session_cookie": cookie, "carrier_name": OP,
                "gps_location": {"latitude": at.0, "longitude": at.1}}),
    );
    assert_eq!(found["status"], "FIND_FOUND", "{found}");
    (
        found["fqdn"].as_str().unwrap().to_string(),
        found["ports"][0]["public_port"].as_u64().unwrap(),
    )
}

#[test]
fn discovery_follows_the_region_and_matches_find_cloudlet() {
    let r = Region::start(Backend::Redb);
    setup_cloudlets(&r);
    let dm = org_with_manager(&r.mc, "devmgr", DEV, "developer");
    let perms = [
        ("apps", "manage"),
        ("appinsts", "manage"),
        ("cloudlets", "view"),
    ];
    let (id, secret) = api_key(&r.mc, &dm, DEV, &perms);
    let token = access_token(&r.mc, &id, &secret, None);
    let dme = start_dme(&r);

    // EAM: submit the app, instantiate it in both zones.
    let sub = eam(&r.mc, &token, "POST", "/apps", Some(&manifest(DEV)));
    assert_eq!(sub.status, 201, "{}", sub.body);
    let app_id = sub.body["appId"].as_str().unwrap().to_string();
    let mut inst_ids = Vec::new();
    for zone in ["berlin", "munich"] {
        let new = json!({"name": format!("arena_{zone}"), "appId": app_id,
                         "edgeCloudZoneId": zone_of(zone)});
        let inst = eam(&r.mc, &token, "POST", "/appinstances", Some(&new));
        assert_eq!(inst.status, 202, "{}", inst.body);
        inst_ids.push(inst.body["appInstanceId"].as_str().unwrap().to_string());
    }

    // Discoverable once the DME has both instances: each device gets its own city's zone.
    let berlin = wait_aed(&dme, &token, &app_id, &phone(BERLIN_PHONE), |r| {
        r.status == 200 && aed_zone(r) == zone_of("berlin")
    });
    assert_eq!(aed_zone(&berlin), zone_of("berlin"), "{}", berlin.body);
    let munich = wait_aed(&dme, &token, &app_id, &ip("10.30.4.5"), |r| {
        r.status == 200 && aed_zone(r) == zone_of("munich")
    });
    assert_eq!(aed_zone(&munich), zone_of("munich"), "{}", munich.body);
    assert_eq!(munich.body["device"], ip("10.30.4.5"));
    assert_eq!(munich.body["appId"], app_id.as_str());

    // By phone and by IP, the same answer as FindCloudlet for an SDK client at that place.
    for (device, at, zone) in [
        (phone(BERLIN_PHONE), BERLIN, "berlin"),
        (ip("10.20.0.9"), BERLIN, "berlin"),
        (phone(MUNICH_PHONE), MUNICH, "munich"),
        (ip("10.30.200.1"), MUNICH, "munich"),
    ] {
        let aed = post(
            &dme,
            &token,
            AED,
            &json!({"appId": app_id, "device": device}),
        );
        assert_eq!(aed.status, 200, "{}", aed.body);
        let ep = &aed.body["applicationEndpoints"][0];
        let (fqdn, port) = find_cloudlet(&dme, at);
        assert_eq!(
            ep["fqdn"].as_str(),
            Some(fqdn.as_str()),
            "{device}: {}",
            aed.body
        );
        assert_eq!(ep["port"].as_u64(), Some(port), "{device}: {}", aed.body);
        assert_eq!(
            ep["edgeCloudZone"]["edgeCloudZoneId"],
            zone_of(zone).as_str()
        );
        let sed = post(&dme, &token, SED, &json!({"device": device}));
        assert_eq!(sed.status, 200, "{}", sed.body);
        assert_eq!(
            sed.body["edgeCloudZoneId"],
            zone_of(zone).as_str(),
            "{}",
            sed.body
        );
        assert_eq!(sed.body["edgeCloudZoneName"], zone);
        assert_eq!(sed.body["edgeCloudProvider"], OP);
        assert_eq!(sed.body["device"], device);
    }

    location_apis(&dme, &token);
    refusals(&r, &dme, &id, &secret, &app_id);

    // Terminated: Berlin's devices go to Munich, then nothing is left to discover.
    let del = eam(
        &r.mc,
        &token,
        "DELETE",
        &format!("/appinstances/{}", inst_ids[0]),
        None,
    );
    assert_eq!(del.status, 202, "{}", del.body);
    let moved = wait_aed(&dme, &token, &app_id, &phone(BERLIN_PHONE), |r| {
        aed_zone(r) == zone_of("munich")
    });
    assert_eq!(aed_zone(&moved), zone_of("munich"), "{}", moved.body);
    let del = eam(
        &r.mc,
        &token,
        "DELETE",
        &format!("/appinstances/{}", inst_ids[1]),
        None,
    );
    assert_eq!(del.status, 202, "{}", del.body);
    let gone = wait_aed(&dme, &token, &app_id, &phone(BERLIN_PHONE), |r| {
        r.status == 404
    });
    camara_error(&gone, 404, "NOT_FOUND");
}

/// A circle a few km across around (lat, lon).
fn circle(at: (f64, f64), radius: f64) -> Value {
    json!({"areaType": "CIRCLE", "center": {"latitude": at.0, "longitude": at.1}, "radius": radius})
}

/// A square polygon of about 2·d degrees around (lat, lon).
fn square(at: (f64, f64), d: f64) -> Value {
    let p = |a: f64, b: f64| json!({"latitude": at.0 + a, "longitude": at.1 + b});
    json!({"areaType": "POLYGON", "boundary": [p(-d, -d), p(-d, d), p(d, d), p(d, -d)]})
}

fn verify(dme: &Dme, token: &str, device: &Value, area: &Value) -> Reply {
    let r = post(dme, token, VERIFY, &json!({"device": device, "area": area}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["lastLocationTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    r
}

fn location_apis(dme: &Dme, token: &str) {
    let dev = phone(BERLIN_PHONE);
    // The subscriber's cell (500 m) lies in a 5 km circle around Berlin's centre.
    let v = verify(dme, token, &dev, &circle(BERLIN, 5000.0));
    assert_eq!(v.body["verificationResult"], "TRUE", "{}", v.body);
    assert!(v.body.get("matchRate").is_none());
    assert_eq!(v.body["device"], dev);
    let v = verify(dme, token, &dev, &circle(MUNICH, 5000.0));
    assert_eq!(v.body["verificationResult"], "FALSE", "{}", v.body);
    // A 300 m circle inside the 500 m cell: part of it.
    let v = verify(dme, token, &dev, &circle((52.5201, 13.4049), 300.0));
    assert_eq!(v.body["verificationResult"], "PARTIAL", "{}", v.body);
    assert_eq!(v.body["matchRate"], 36, "{}", v.body);
    let v = verify(dme, token, &dev, &square(BERLIN, 0.05));
    assert_eq!(v.body["verificationResult"], "TRUE", "{}", v.body);
    let v = verify(dme, token, &dev, &square(MUNICH, 0.05));
    assert_eq!(v.body["verificationResult"], "FALSE", "{}", v.body);

    let loc = post(dme, token, RETRIEVE, &json!({"device": ip("10.20.7.7")}));
    assert_eq!(loc.status, 200, "{}", loc.body);
    assert_eq!(loc.body["area"], circle(BERLIN, 2000.0), "{}", loc.body);
    let small = post(
        dme,
        token,
        RETRIEVE,
        &json!({"device": ip("10.20.7.7"), "maxSurface": 1000}),
    );
    camara_error(
        &small,
        422,
        "LOCATION_RETRIEVAL.UNABLE_TO_FULFILL_MAX_SURFACE",
    );
}

fn refusals(r: &Region, dme: &Dme, id: &str, secret: &str, app_id: &str) {
    let token = access_token(&r.mc, id, secret, Some(scopes::SIMPLE_EDGE_DISCOVERY));
    // Unknown devices: never a guess.
    camara_error(
        &post(dme, &token, SED, &json!({"device": phone("+4930000000")})),
        404,
        "IDENTIFIER_NOT_FOUND",
    );
    camara_error(
        &post(dme, &token, SED, &json!({"device": ip("192.0.2.1")})),
        404,
        "IDENTIFIER_NOT_FOUND",
    );
    // Two-legged: the device must be named.
    camara_error(
        &post(dme, &token, SED, &json!({})),
        422,
        "MISSING_IDENTIFIER",
    );
    // A token without the operation's scope.
    let aed = post(
        dme,
        &token,
        AED,
        &json!({"appId": app_id, "device": phone(BERLIN_PHONE)}),
    );
    camara_error(&aed, 403, "PERMISSION_DENIED");
    // An expired token signed by the MC's own key.
    let keys = SigningKeys::load(&r.mc.dir.path().join("data/mc-signing-keys.json")).unwrap();
    let t = now();
    let expired = keys.sign_typed(
        ACCESS_TYP,
        &AccessClaims {
            iss: r.mc.url.clone(),
            sub: id.into(),
            client_id: id.into(),
            org: DEV.into(),
            scope: scopes::SIMPLE_EDGE_DISCOVERY.into(),
            iat: t - 7200,
            exp: t - 3600,
            jti: "expired".into(),
        },
    );
    let e = post(dme, &expired, SED, &json!({"device": phone(BERLIN_PHONE)}));
    camara_error(&e, 401, "UNAUTHENTICATED");
    assert!(
        e.body["message"].as_str().unwrap().contains("expired"),
        "{}",
        e.body
    );
    // A login token is not an access token.
    camara_error(
        &post(
            dme,
            "not.a.token",
            SED,
            &json!({"device": phone(BERLIN_PHONE)}),
        ),
        401,
        "UNAUTHENTICATED",
    );
}
