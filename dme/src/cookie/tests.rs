//! Tests of [`super`]: round trips, expiry, forgery, rotation, key files, purposes.

use super::*;

fn ring(kid: &str, byte: u8) -> KeyRing {
    KeyRing::new(vec![(kid.into(), vec![byte; 64])]).unwrap()
}

fn session(exp: i64) -> Claims<SessionKey> {
    Claims {
        iat: 0,
        exp,
        key: SessionKey {
            orgname: "o".into(),
            appname: "a".into(),
            appvers: "1".into(),
            ..Default::default()
        },
    }
}

fn verify(r: &KeyRing, token: &str, now: i64) -> Result<String, CookieError> {
    r.verify_session(token, now, |k| {
        format!("{}/{}/{}", k.orgname, k.appname, k.appvers)
    })
}

#[test]
fn round_trip_and_expiry() {
    let r = ring("1", 1);
    let t = r.sign(&session(100));
    assert_eq!(verify(&r, &t, 99).as_deref(), Ok("o/a/1"));
    assert_eq!(verify(&r, &t, 100), Err(CookieError::Expired));
    assert_eq!(verify(&r, &t, 5000), Err(CookieError::Expired));
}

#[test]
fn forged_and_garbage_tokens_are_rejected() {
    let r = ring("1", 1);
    let t = r.sign(&session(100));
    // Another secret under the same key id: bad signature.
    assert_eq!(verify(&ring("1", 2), &t, 0), Err(CookieError::Signature));
    // Unknown key id.
    let other = KeyRing::new(vec![("9".into(), vec![1; 64]), ("8".into(), vec![1; 64])]).unwrap();
    assert_eq!(verify(&other, &t, 0), Err(CookieError::UnknownKey));
    // Tampered claims: swap in a payload naming another app, keep the signature.
    let parts: Vec<&str> = t.split('.').collect();
    let evil =
        B64.encode(br#"{"iat":0,"exp":99999,"key":{"orgname":"x","appname":"a","appvers":"1"}}"#);
    let forged = format!("{}.{}.{}", parts[0], evil, parts[2]);
    assert_eq!(verify(&r, &forged, 0), Err(CookieError::Signature));
    // alg=none is refused before any key is consulted.
    let none = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), parts[1]);
    assert_eq!(verify(&r, &none, 0), Err(CookieError::Algorithm));
    for bad in ["", "x", "a.b", "a.b.c", "....", "é.é.é"] {
        assert!(verify(&r, bad, 0).is_err(), "{bad:?}");
    }
    assert_eq!(verify(&r, "", 0), Err(CookieError::Missing));
    let long = "a".repeat(10_000);
    assert!(matches!(
        verify(&r, &format!("{long}.{long}.{long}"), 0),
        Err(CookieError::Malformed(_))
    ));
}

#[test]
fn each_purpose_verifies_only_its_own_tokens() {
    let r = ring("1", 1);
    let c = r.sign_for(Purpose::ClientToken, &session(100));
    assert_eq!(verify(&r, &c, 0), Err(CookieError::Signature));
    let s = r.sign(&session(100));
    assert_eq!(
        r.verify_claims::<SessionKey>(Purpose::ClientToken, &s, 0),
        Err(CookieError::Signature)
    );
    // HS256 under the edge-events key: not a session cookie.
    let e = r.sign_for(Purpose::EdgeEvents, &session(100));
    assert_eq!(verify(&r, &e, 0), Err(CookieError::Algorithm));
    // A header we did not write (no typ, other order) still verifies through the slow path.
    let parts: Vec<&str> = s.split('.').collect();
    let header = B64.encode(br#"{"kid":"1","alg":"HS512"}"#);
    let signed = format!("{header}.{}", parts[1]);
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA512, &[1; 64]),
        signed.as_bytes(),
    );
    let other = format!("{signed}.{}", B64.encode(tag.as_ref()));
    assert_eq!(verify(&r, &other, 0).as_deref(), Ok("o/a/1"));
}

#[test]
fn rotation_verifies_old_keys_and_signs_with_the_first() {
    let old = ring("old", 3);
    let t_old = old.sign(&session(100));
    let rotated = KeyRing::new(vec![
        ("new".into(), vec![4; 64]),
        ("old".into(), vec![3; 64]),
    ])
    .unwrap();
    assert!(verify(&rotated, &t_old, 0).is_ok());
    let t_new = rotated.sign(&session(100));
    assert!(verify(&rotated, &t_new, 0).is_ok());
    assert_eq!(verify(&old, &t_new, 0), Err(CookieError::UnknownKey));
}

#[test]
fn key_files_parse_and_reject_bad_lines() {
    let secret = base64::engine::general_purpose::STANDARD.encode([9u8; 48]);
    let text = format!("# keys\n2 {secret}\n\n1 {secret}  # older\n");
    let r = KeyRing::parse_file("keys.txt", &text).unwrap();
    assert!(r.sign(&session(1)).contains('.'));
    let err = KeyRing::parse_file("keys.txt", "1 !!!notbase64")
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "cookie key file keys.txt: line 1: secret is not base64"
    );
    let short = base64::engine::general_purpose::STANDARD.encode([1u8; 8]);
    assert!(matches!(
        KeyRing::parse_file("k", &format!("a {short}")),
        Err(KeyError::TooShort(_))
    ));
    assert!(matches!(
        KeyRing::parse_file("k", "# nothing"),
        Err(KeyError::Empty)
    ));
    assert!(KeyRing::parse_file("k", "onlykid").is_err());
}
