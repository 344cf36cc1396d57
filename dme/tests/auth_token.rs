//! Apps with an auth public key: RegisterClient needs an RS256 token the developer signed.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::*;
use dme::fixture::{self, Builder};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use tonic::Code;

fn sign(key: &SigningKey<sha2::Sha256>, alg: &str, claims: &serde_json::Value) -> String {
    let h = B64.encode(serde_json::json!({"alg": alg, "typ": "JWT"}).to_string());
    let p = B64.encode(claims.to_string());
    let sig = key.sign(format!("{h}.{p}").as_bytes());
    format!("{h}.{p}.{}", B64.encode(sig.to_bytes()))
}

#[tokio::test]
async fn register_requires_a_valid_developer_token() {
    let mut rng = rand_core_06();
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let other = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let k = fixture::app_key();
    let mut app = fixture::app(k.clone());
    app.auth_public_key = Some(pem);
    let s = start(
        Builder::new()
            .app(app)
            .site(&k, "telekom", "berlin", 52.52, 13.405),
    )
    .await;
    let signer = SigningKey::<sha2::Sha256>::new(private);
    let now = dme::Ctx::now(None).now;
    let claims = serde_json::json!({"orgname": "devorg", "appname": "app", "appvers": "1.0", "exp": now + 600});
    let mut c = s.client().await;
    let register = |token: String| {
        let mut req = register_request(&k);
        req.auth_token = token;
        req
    };
    let ok = c
        .register_client(register(sign(&signer, "RS256", &claims)))
        .await
        .unwrap()
        .into_inner();
    assert!(!ok.session_cookie.is_empty());
    let cases = [
        (
            String::new(),
            Code::InvalidArgument,
            "No authtoken received",
        ),
        (
            sign(&SigningKey::new(other), "RS256", &claims),
            Code::Unauthenticated,
            "invalid signature",
        ),
        (
            sign(&signer, "HS256", &claims),
            Code::Unauthenticated,
            "unsupported algorithm",
        ),
        (
            sign(
                &signer,
                "RS256",
                &serde_json::json!({"orgname": "devorg", "appname": "other", "appvers": "1.0"}),
            ),
            Code::Unauthenticated,
            "do not match",
        ),
        (
            sign(
                &signer,
                "RS256",
                &serde_json::json!({"orgname": "devorg", "appname": "app", "appvers": "1.0", "exp": now - 5}),
            ),
            Code::Unauthenticated,
            "expired",
        ),
        ("not.a.jwt".to_string(), Code::Unauthenticated, "malformed"),
    ];
    for (token, code, needle) in cases {
        let e = c
            .register_client(register(token.clone()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{token}: {}", e.message());
        assert!(e.message().contains(needle), "{}", e.message());
    }
}

#[tokio::test]
async fn a_token_for_an_app_without_a_key_is_refused() {
    let s = start(region()).await;
    let mut req = register_request(&fixture::app_key());
    req.auth_token = "a.b.c".into();
    let e = s.client().await.register_client(req).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

/// rsa 0.9 takes a rand_core 0.6 RNG.
fn rand_core_06() -> impl rsa::rand_core::CryptoRngCore {
    rsa::rand_core::OsRng
}
