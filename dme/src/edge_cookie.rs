//! Edge-events cookies: one per FindCloudlet answer (and per GetAppInstList entry), read back
//! only by the region's DMEs when a client opens `StreamEdgeEvent`. SDKs treat the cookie as
//! opaque, so it is ours to shape; upstream's was a JWT of some 400 characters whose claims had
//! to be serialised, encoded and hashed for every answer.
//!
//! The cookie is 61 bytes in unpadded base64url (82 characters):
//!
//! ```text
//! body = version (1) | key fingerprint (4) | instance tag (8) | lat f64 (8) | lon f64 (8)
//!        | iat i64 (8) | exp i64 (8)                                   45 bytes, little endian
//! tag  = HMAC-SHA256(edge-events key, app tag (8) | body)[..16]
//! ```
//!
//! - The **instance tag** names the instance the client was sent to: the first 8 bytes of a
//!   SHA-256 of its key. Every DME of the region computes the same tag from the same names, so
//!   any of them can resolve it; it is kept in the instance's table entry, computed at build.
//! - The **app tag** (likewise, of the app key) is MAC'd but not carried: the verifier supplies
//!   the app of the session cookie, so a cookie issued for another app fails as forged.
//! - The **key fingerprint** selects the ring key that signed it, so keys rotate as session
//!   cookie keys do: the first key of the ring signs, all of them verify.
//! - The message fits one SHA-256 block: signing is two compressions from the key's saved pad
//!   states and base64 of 61 bytes, with nothing serialised.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use geodata::LatLon;
use sha2::{Digest, Sha256};

use crate::cookie::{CookieError, KeyRing};

/// Version byte of the layout above.
const VERSION: u8 = 1;
const BODY: usize = 45;
const TAG: usize = 16;
const TOKEN: usize = BODY + TAG;

/// A stable 64-bit name for an instance, the same on every DME of the region.
pub fn inst_tag(organization: &str, name: &str) -> u64 {
    tag_of(&[b"appinst", organization.as_bytes(), name.as_bytes()])
}

/// A stable 64-bit name for an app, the same on every DME of the region.
pub fn app_tag(organization: &str, name: &str, version: &str) -> u64 {
    tag_of(&[
        b"app",
        organization.as_bytes(),
        name.as_bytes(),
        version.as_bytes(),
    ])
}

fn tag_of(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        h.update((p.len() as u32).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

/// What a verified cookie says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EdgeToken {
    /// [`inst_tag`] of the instance the client was sent to.
    pub inst: u64,
    /// The client's location when it was sent there.
    pub at: LatLon,
    pub iat: i64,
    pub exp: i64,
}

/// Signs a cookie for a client of the app tagged `app` at `at`, sent to the instance tagged
/// `inst`, issued at `now`, valid until `exp`.
pub fn sign(keys: &KeyRing, app: u64, inst: u64, at: LatLon, now: i64, exp: i64) -> String {
    let mut msg = [0u8; 8 + BODY];
    msg[..8].copy_from_slice(&app.to_le_bytes());
    let body = &mut msg[8..];
    body[0] = VERSION;
    body[1..5].copy_from_slice(&keys.edge_fingerprint());
    body[5..13].copy_from_slice(&inst.to_le_bytes());
    body[13..21].copy_from_slice(&at.lat().to_le_bytes());
    body[21..29].copy_from_slice(&at.lon().to_le_bytes());
    body[29..37].copy_from_slice(&now.to_le_bytes());
    body[37..45].copy_from_slice(&exp.to_le_bytes());
    let mut token = [0u8; TOKEN];
    token[..BODY].copy_from_slice(&msg[8..]);
    token[BODY..].copy_from_slice(&keys.edge_mac(None, &msg).unwrap_or([0; 16]));
    B64.encode(token)
}

/// Verifies a cookie for a client of the app tagged `app`: its signature, then that it expired
/// no more than `grace` seconds before `now` (see [`crate::edge_events`] for why a grace).
pub fn verify(
    keys: &KeyRing,
    app: u64,
    cookie: &str,
    now: i64,
    grace: i64,
) -> Result<EdgeToken, CookieError> {
    if cookie.is_empty() {
        return Err(CookieError::Missing);
    }
    if cookie.len() != (TOKEN * 4).div_ceil(3) {
        return Err(CookieError::Malformed("not an edge-events cookie"));
    }
    let mut token = [0u8; TOKEN + 2];
    let n = B64
        .decode_slice(cookie, &mut token)
        .map_err(|_| CookieError::Malformed("not base64url"))?;
    if n != TOKEN || token[0] != VERSION {
        return Err(CookieError::Malformed("not an edge-events cookie"));
    }
    let mut msg = [0u8; 8 + BODY];
    msg[..8].copy_from_slice(&app.to_le_bytes());
    msg[8..].copy_from_slice(&token[..BODY]);
    let fp: [u8; 4] = token[1..5].try_into().unwrap_or_default();
    let want = keys
        .edge_mac(Some(fp), &msg)
        .ok_or(CookieError::UnknownKey)?;
    let diff = want
        .iter()
        .zip(&token[BODY..TOKEN])
        .fold(0u8, |d, (a, b)| d | (a ^ b));
    if diff != 0 {
        return Err(CookieError::Signature);
    }
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&token[at..at + 8]);
        b
    };
    let at = LatLon::new(f64::from_le_bytes(word(13)), f64::from_le_bytes(word(21)))
        .map_err(|_| CookieError::Malformed("location out of range"))?;
    let t = EdgeToken {
        inst: u64::from_le_bytes(word(5)),
        at,
        iat: i64::from_le_bytes(word(29)),
        exp: i64::from_le_bytes(word(37)),
    };
    if t.exp.saturating_add(grace) <= now {
        return Err(CookieError::Expired);
    }
    Ok(t)
}

#[cfg(test)]
mod tests;
