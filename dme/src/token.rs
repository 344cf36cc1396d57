//! Developer auth tokens for RegisterClient: RS256 JWTs signed with the app's private key and
//! verified against the `auth_public_key` (PEM) the developer registered with the app.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;

/// Extracts the PKCS#1 `RSAPublicKey` DER from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) or
/// `RSA PUBLIC KEY` (PKCS#1) block. The error says what is wrong, for the document loader.
pub fn rsa_public_key_der(pem: &str) -> Result<Vec<u8>, String> {
    let pem = pem.trim();
    if pem.contains("BEGIN RSA PUBLIC KEY") {
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        return base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| "PEM body is not base64".to_string());
    }
    let spki = rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("not a PEM public key ({e})"))?;
    spki_rsa_key(spki.as_ref()).ok_or_else(|| "not an RSA SubjectPublicKeyInfo".to_string())
}

/// The rsaEncryption algorithm identifier (OID 1.2.840.113549.1.1.1).
const RSA_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Walks `SEQUENCE { SEQUENCE { OID, params }, BIT STRING { 0, RSAPublicKey } }`.
fn spki_rsa_key(der: &[u8]) -> Option<Vec<u8>> {
    let (tag, outer, _) = der_item(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, alg, rest) = der_item(outer)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = der_item(alg)?;
    if tag != 0x06 || oid != RSA_OID {
        return None;
    }
    let (tag, bits, _) = der_item(rest)?;
    match bits.split_first() {
        Some((0, key)) if tag == 0x03 => Some(key.to_vec()),
        _ => None,
    }
}

/// Reads one DER item: (tag, contents, the bytes after it).
fn der_item(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Why an auth token was rejected (shown to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthTokenError {
    #[error("failed to verify token - malformed token")]
    Malformed,
    #[error("failed to verify token - unsupported algorithm, expected RS256")]
    Algorithm,
    #[error("failed to verify token - invalid signature")]
    Signature,
    #[error("failed to verify token - token expired")]
    Expired,
    #[error("failed to verify token - token claims do not match the requested app")]
    Claims,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct AuthClaims {
    #[serde(default)]
    orgname: String,
    #[serde(default)]
    appname: String,
    #[serde(default)]
    appvers: String,
    exp: Option<i64>,
}

/// Verifies an RS256 auth token against the app's key (PKCS#1 DER) and checks that its claims
/// name this app and that it has not expired (`now` in Unix seconds).
pub fn verify_auth_token(
    token: &str,
    key_der: &[u8],
    org: &str,
    app: &str,
    vers: &str,
    now: i64,
) -> Result<(), AuthTokenError> {
    let mut parts = token.trim().splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(AuthTokenError::Malformed);
    };
    let header: Header = B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AuthTokenError::Malformed)?;
    if header.alg != "RS256" {
        return Err(AuthTokenError::Algorithm);
    }
    let sig = B64.decode(s).map_err(|_| AuthTokenError::Malformed)?;
    let signed = &token.trim()[..h.len() + 1 + p.len()];
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key_der)
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| AuthTokenError::Signature)?;
    let claims: AuthClaims = B64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AuthTokenError::Malformed)?;
    if claims.exp.is_some_and(|exp| exp <= now) {
        return Err(AuthTokenError::Expired);
    }
    if claims.orgname != org || claims.appname != app || claims.appvers != vers {
        return Err(AuthTokenError::Claims);
    }
    Ok(())
}
