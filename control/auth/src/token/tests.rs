use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use super::*;

const NOW: i64 = 1_800_000_000;

fn cfg() -> TokenConfig {
    TokenConfig::default()
}

#[test]
fn round_trip_user_and_api_key() {
    let keys = SigningKeys::generate().unwrap();
    let c = Claims::user("alice", NOW, &cfg());
    assert_eq!(c.exp, NOW + 24 * 3600);
    let t = keys.sign(&c);
    assert_eq!(keys.verify(&t, NOW), Ok(c.clone()));
    assert_eq!(keys.verifier().verify(&t, NOW + 3600), Ok(c));

    let k = Claims::api_key("0f8c-key", "DevA", NOW, &cfg());
    assert_eq!(k.exp, NOW + 4 * 3600);
    let t = keys.sign(&k);
    let got = keys.verify(&t, NOW).unwrap();
    assert_eq!(got.authtype, AuthType::ApiKey);
    assert_eq!(got.org.as_deref(), Some("DevA"));

    // The header and claims as documented.
    let mut parts = t.split('.');
    let header: serde_json::Value =
        serde_json::from_slice(&B64.decode(parts.next().unwrap()).unwrap()).unwrap();
    assert_eq!(
        header,
        serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": keys.signing_kid()})
    );
    let claims: serde_json::Value =
        serde_json::from_slice(&B64.decode(parts.next().unwrap()).unwrap()).unwrap();
    assert_eq!(
        claims,
        serde_json::json!({"sub": "0f8c-key", "iat": NOW, "exp": NOW + 14400,
            "authtype": "apikey", "org": "DevA"})
    );
    assert_eq!(B64.decode(parts.next().unwrap()).unwrap().len(), 64);
}

#[test]
fn expiry_boundary() {
    let keys = SigningKeys::generate().unwrap();
    let c = Claims::user("alice", NOW, &cfg());
    let t = keys.sign(&c);
    assert!(keys.verify(&t, c.exp - 1).is_ok());
    assert_eq!(
        keys.verify(&t, c.exp),
        Err(TokenError::Expired { exp: c.exp })
    );
    assert_eq!(
        keys.verify(&t, c.exp + 1),
        Err(TokenError::Expired { exp: c.exp })
    );
}

/// Replaces the `i`th part of a token.
fn with_part(token: &str, i: usize, part: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[i] = part;
    parts.join(".")
}

#[test]
fn tampering_is_detected() {
    let keys = SigningKeys::generate().unwrap();
    let t = keys.sign(&Claims::user("alice", NOW, &cfg()));
    // Claims changed (another user, a later expiry): the signature no longer holds.
    let mut forged = Claims::user("mexadmin", NOW, &cfg());
    let forged_part = B64.encode(serde_json::to_vec(&forged).unwrap());
    assert_eq!(
        keys.verify(&with_part(&t, 1, &forged_part), NOW),
        Err(TokenError::BadSignature)
    );
    forged.sub = "alice".into();
    forged.exp += 1_000_000;
    let forged_part = B64.encode(serde_json::to_vec(&forged).unwrap());
    assert_eq!(
        keys.verify(&with_part(&t, 1, &forged_part), NOW),
        Err(TokenError::BadSignature)
    );
    // A flipped signature bit.
    let mut sig = B64.decode(t.split('.').nth(2).unwrap()).unwrap();
    sig[10] ^= 1;
    assert_eq!(
        keys.verify(&with_part(&t, 2, &B64.encode(&sig)), NOW),
        Err(TokenError::BadSignature)
    );
    // alg "none" / HS256 with an empty signature are refused before any key is used.
    let none = B64.encode(br#"{"alg":"none","kid":"x"}"#);
    assert_eq!(
        keys.verify(&with_part(&with_part(&t, 0, &none), 2, ""), NOW),
        Err(TokenError::Malformed("algorithm is not EdDSA"))
    );
    let hs = B64.encode(format!(
        r#"{{"alg":"HS256","kid":"{}"}}"#,
        keys.signing_kid()
    ));
    assert_eq!(
        keys.verify(&with_part(&t, 0, &hs), NOW),
        Err(TokenError::Malformed("algorithm is not EdDSA"))
    );
}

#[test]
fn missing_and_malformed() {
    let keys = SigningKeys::generate().unwrap();
    assert_eq!(keys.verify("", NOW), Err(TokenError::Missing));
    assert_eq!(keys.verify("  ", NOW), Err(TokenError::Missing));
    for bad in ["abc", "a.b", "a.b.c.d", "!!.e30.AA", &"a.".repeat(5000)] {
        assert!(
            matches!(keys.verify(bad, NOW), Err(TokenError::Malformed(_))),
            "{bad:.20}"
        );
    }
    let t = keys.sign(&Claims::user("alice", NOW, &cfg()));
    let no_kid = B64.encode(br#"{"alg":"EdDSA"}"#);
    assert_eq!(
        keys.verify(&with_part(&t, 0, &no_kid), NOW),
        Err(TokenError::Malformed("no key id"))
    );
    // Correctly signed but not our claims' shape.
    let other = keys.sign(&Claims::user("alice", NOW, &cfg()));
    assert!(keys.verify(&other, NOW).is_ok());
}

#[test]
fn wrong_key_and_unknown_kid() {
    let a = SigningKeys::generate().unwrap();
    let b = SigningKeys::generate().unwrap();
    let t = a.sign(&Claims::user("alice", NOW, &cfg()));
    assert_eq!(
        b.verify(&t, NOW),
        Err(TokenError::UnknownKid(a.signing_kid().to_string()))
    );
    // Same kid, other key: a bad signature.
    let mut file = b.to_file_contents();
    file = file.replace(b.signing_kid(), a.signing_kid());
    let b_as_a = SigningKeys::from_file_contents(&file).unwrap();
    assert_eq!(b_as_a.verify(&t, NOW), Err(TokenError::BadSignature));
}

#[test]
fn rotation() {
    let mut keys = SigningKeys::generate().unwrap();
    let old_kid = keys.signing_kid().to_string();
    let old = keys.sign(&Claims::user("alice", NOW, &cfg()));
    let new_kid = keys.rotate().unwrap();
    assert_ne!(new_kid, old_kid);
    assert_eq!(keys.signing_kid(), new_kid);
    assert_eq!(keys.kids(), vec![new_kid.as_str(), old_kid.as_str()]);
    let new = keys.sign(&Claims::user("bob", NOW, &cfg()));
    assert!(new.starts_with(&B64.encode(format!(
        r#"{{"alg":"EdDSA","typ":"JWT","kid":"{new_kid}"}}"#
    ))));
    // Both verify, also from the published keys.
    let jwks = keys.jwks();
    let published = Verifier::from_jwks(&jwks).unwrap();
    for (t, sub) in [(&old, "alice"), (&new, "bob")] {
        assert_eq!(keys.verify(t, NOW).unwrap().sub, sub);
        assert_eq!(published.verify(t, NOW).unwrap().sub, sub);
    }
    // Retiring the old key ends its tokens; the signing key cannot be retired.
    assert!(!keys.retire(&new_kid));
    assert!(keys.retire(&old_kid));
    assert!(!keys.retire(&old_kid));
    assert_eq!(keys.verify(&old, NOW), Err(TokenError::UnknownKid(old_kid)));
    assert!(keys.verify(&new, NOW).is_ok());
}

#[test]
fn jwks_document() {
    let mut keys = SigningKeys::generate().unwrap();
    keys.rotate().unwrap();
    let jwks = keys.jwks();
    let list = jwks["keys"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["kid"], keys.signing_kid());
    for k in list {
        assert_eq!(k["kty"], "OKP");
        assert_eq!(k["crv"], "Ed25519");
        assert_eq!(k["alg"], "EdDSA");
        assert_eq!(B64.decode(k["x"].as_str().unwrap()).unwrap().len(), 32);
        assert!(k.get("d").is_none(), "no private part");
    }
    assert!(Verifier::from_jwks(&serde_json::json!({})).is_err());
    assert!(Verifier::from_jwks(&serde_json::json!({"keys": []})).is_err());
    let short =
        serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": "AAAA"}]});
    assert!(Verifier::from_jwks(&short).is_err());
}

#[test]
fn key_file_round_trip() {
    let mut keys = SigningKeys::generate().unwrap();
    keys.rotate().unwrap();
    let text = keys.to_file_contents();
    assert!(text.starts_with('#'));
    let back = SigningKeys::from_file_contents(&text).unwrap();
    assert_eq!(back.kids(), keys.kids());
    let t = back.sign(&Claims::user("alice", NOW, &cfg()));
    assert!(keys.verify(&t, NOW).is_ok());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mc-token-keys");
    keys.save(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(SigningKeys::load(&path).unwrap().kids(), keys.kids());
    assert!(format!("{keys:?}").contains(keys.signing_kid()));
    assert!(!format!("{keys:?}").contains(&text.lines().nth(1).unwrap()[20..]));

    let err = |s: &str| SigningKeys::from_file_contents(s).unwrap_err().to_string();
    assert_eq!(err("# nothing\n\n"), "token key file has no key");
    assert_eq!(
        err("onlykid\n"),
        "token key file line 1: expected `KID BASE64-PKCS8`"
    );
    assert!(err("k !!!\n").starts_with("token key file line 1: bad base64"));
    assert!(err("k AAAA\n").contains("not an Ed25519 PKCS#8 v2 key"));
    let line = text.lines().nth(1).unwrap();
    assert!(err(&format!("{line}\n{line}\n")).contains("line 2: duplicate key id"));
    let bad_kid = line.replacen(keys.signing_kid(), "bad/kid", 1);
    assert!(err(&bad_kid).contains("must be 1-64 of letters"));
    assert!(SigningKeys::load(&dir.path().join("absent")).is_err());
}
