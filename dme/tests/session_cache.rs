//! The verified-session cache must accept exactly what full verification accepts: a cached
//! cookie still expires, a look-alike of a cached cookie (same signature characters, other
//! claims) is refused, and answers are the same with and without the cache.

mod common;

use common::{keys, region};
use dme::cookie::{Claims, SessionKey};
use dme::proto::{FindCloudletRequest, Loc};
use dme::{Ctx, Dme, DmeConfig, Tables};

fn dme(cache: usize) -> Dme {
    let tables = Tables::from_deployment(&region().build(), 1).unwrap();
    let config = DmeConfig {
        session_cache: cache,
        ..DmeConfig::default()
    };
    Dme::new(tables, keys(), config, None)
}

fn cookie(exp: i64) -> String {
    keys().sign(&Claims {
        iat: 0,
        exp,
        key: SessionKey {
            orgname: "devorg".into(),
            appname: "app".into(),
            appvers: "1.0".into(),
            ..Default::default()
        },
    })
}

fn find(d: &Dme, cookie: &str, now: i64) -> Result<(String, i32), String> {
    let req = FindCloudletRequest {
        session_cookie: cookie.into(),
        carrier_name: "telekom".into(),
        gps_location: Some(Loc {
            latitude: 48.2,
            longitude: 11.6,
            ..Default::default()
        }),
        ..Default::default()
    };
    let ctx = Ctx::at(None, now);
    d.find_cloudlet(&req, ctx)
        .map(|r| (r.fqdn, r.status))
        .map_err(|e| e.message)
}

#[test]
fn cached_cookies_expire_and_look_alikes_are_refused() {
    let d = dme(1024);
    let c = cookie(1000);
    let first = find(&d, &c, 500).unwrap();
    assert!(first.0.contains("munich"), "{first:?}");
    // Now cached: the same answer, until the cookie's own expiry.
    assert_eq!(find(&d, &c, 999).unwrap(), first);
    assert_eq!(find(&d, &c, 1000).unwrap_err(), "cookie expired");
    // A token that differs from the cached one only in its claims (same signature part, so
    // the same cache slot) must go through verification and fail it.
    let (head, rest) = c.split_once('.').unwrap();
    let (payload, sig) = rest.split_once('.').unwrap();
    let mut forged_payload = payload.to_string();
    let flip = if forged_payload.ends_with('A') {
        "B"
    } else {
        "A"
    };
    forged_payload.replace_range(forged_payload.len() - 1.., flip);
    let forged = format!("{head}.{forged_payload}.{sig}");
    assert_ne!(forged, c);
    let err = find(&d, &forged, 500).unwrap_err();
    assert!(
        err.contains("signature") || err.contains("malformed"),
        "{err}"
    );
    // The genuine cookie is still served after the failed look-alike.
    assert_eq!(find(&d, &c, 600).unwrap(), first);
}

#[test]
fn answers_do_not_depend_on_the_cache() {
    let (cached, uncached) = (dme(1024), dme(0));
    for exp in [100, 2000, 5000] {
        let c = cookie(exp);
        for now in [50, 99, 100, 1999, 2000, 4999] {
            // Twice each, so the second call on the cached engine is a hit.
            for _ in 0..2 {
                assert_eq!(
                    find(&cached, &c, now),
                    find(&uncached, &c, now),
                    "exp {exp} now {now}"
                );
            }
        }
    }
}
