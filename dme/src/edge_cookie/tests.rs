//! Tests of [`super`]: round trip, expiry and grace, forgery, another app, key rotation.

use super::*;

fn ring(kid: &str, byte: u8) -> KeyRing {
    KeyRing::new(vec![(kid.into(), vec![byte; 64])]).unwrap()
}

fn at() -> LatLon {
    LatLon::new(52.52, -13.000_000_1).unwrap()
}

#[test]
fn round_trip_keeps_instance_location_and_times() {
    let keys = ring("k", 5);
    let (app, inst) = (app_tag("o", "a", "1"), inst_tag("o", "i"));
    let c = sign(&keys, app, inst, at(), 100, 700);
    assert_eq!(c.len(), 82, "{c}");
    let t = verify(&keys, app, &c, 699, 0).unwrap();
    assert_eq!(
        t,
        EdgeToken {
            inst,
            at: at(),
            iat: 100,
            exp: 700
        }
    );
    let far = LatLon::new(-89.123_456_789_012_34, -179.987_654_321_098_76).unwrap();
    let t = verify(
        &keys,
        app,
        &sign(&keys, app, inst, far, i64::MIN, i64::MAX),
        0,
        0,
    )
    .unwrap();
    assert_eq!(t.at, far);
}

#[test]
fn expiry_is_enforced_after_the_grace() {
    let keys = ring("k", 5);
    let c = sign(&keys, 1, 2, at(), 100, 700);
    assert_eq!(verify(&keys, 1, &c, 700, 0), Err(CookieError::Expired));
    assert!(verify(&keys, 1, &c, 700, 60).is_ok());
    assert!(verify(&keys, 1, &c, 759, 60).is_ok());
    assert_eq!(verify(&keys, 1, &c, 760, 60), Err(CookieError::Expired));
}

#[test]
fn forged_foreign_and_garbage_cookies_are_refused() {
    let keys = ring("k", 5);
    let c = sign(&keys, 1, 2, at(), 100, 700);
    // Another app's session cannot use it.
    assert_eq!(verify(&keys, 9, &c, 0, 0), Err(CookieError::Signature));
    // A flipped bit anywhere in the body or tag.
    let mut raw = B64.decode(&c).unwrap();
    for i in 5..raw.len() {
        raw[i] ^= 1;
        let forged = B64.encode(&raw);
        assert_eq!(
            verify(&keys, 1, &forged, 0, 0),
            Err(CookieError::Signature),
            "byte {i}"
        );
        raw[i] ^= 1;
    }
    // Another key with the same fingerprint slot: unknown key.
    assert_eq!(
        verify(&ring("other", 5), 1, &c, 0, 0),
        Err(CookieError::UnknownKey)
    );
    assert_eq!(verify(&keys, 1, "", 0, 0), Err(CookieError::Missing));
    for bad in [
        "x",
        "eyJhbGciOiJIUzI1NiJ9.e30.sig",
        &c[1..],
        &format!("{c}A"),
    ] {
        assert!(
            matches!(verify(&keys, 1, bad, 0, 0), Err(CookieError::Malformed(_))),
            "{bad}"
        );
    }
}

#[test]
fn any_key_of_the_ring_verifies_and_the_first_signs() {
    let old = ring("old", 1);
    let both = KeyRing::new(vec![
        ("new".into(), vec![2; 64]),
        ("old".into(), vec![1; 64]),
    ])
    .unwrap();
    let by_old = sign(&old, 1, 2, at(), 0, 10);
    assert!(verify(&both, 1, &by_old, 0, 0).is_ok());
    let by_new = sign(&both, 1, 2, at(), 0, 10);
    assert_eq!(verify(&old, 1, &by_new, 0, 0), Err(CookieError::UnknownKey));
}

#[test]
fn tags_separate_their_parts() {
    assert_ne!(inst_tag("ab", "c"), inst_tag("a", "bc"));
    assert_ne!(app_tag("o", "a", "1"), app_tag("o", "a", "2"));
    assert_eq!(inst_tag("o", "i"), inst_tag("o", "i"));
}
