//! A cache of verified session cookies, so that a client's repeated requests do not pay for
//! base64, JSON and HMAC-SHA512 every time (about 1.3 µs, the largest share of FindCloudlet's
//! own cost): `edge_auth::cache::TokenCache` (its soundness argument is there) holding the
//! cookie's session key. Key rings are fixed for the life of a `Dme`, so no entry can outlive
//! the key that verified it.
//!
//! An entry keeps the token and the key's strings back to back in one buffer: a hit then reads two
//! allocations (entry and text) instead of nine (entry, token, seven strings), which matters
//! because with thousands of clients every entry is cold in the cache.

use std::borrow::Cow;
use std::sync::Arc;

use edge_auth::cache::{Cached, TokenCache};

use crate::cookie::SessionKeyRef;

/// Slots by default: enough for every active client of a busy DME, about 0.5 KB each when full.
pub const DEFAULT_CAPACITY: usize = 1 << 16;

/// A verified session cookie.
#[derive(Debug)]
pub struct Verified {
    pub exp: i64,
    /// End offsets in `text` of the token, then of the key's strings in [`Verified::key`]'s
    /// order.
    ends: [u32; 7],
    /// The token, then the key's strings, back to back.
    text: Box<str>,
}

impl Verified {
    fn new(token: &str, exp: i64, key: &SessionKeyRef<'_>) -> Option<Self> {
        let parts = [
            token,
            &key.peerip,
            &key.orgname,
            &key.appname,
            &key.appvers,
            &key.uniqueidtype,
            &key.uniqueid,
        ];
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0u32; 7];
        for (end, part) in ends.iter_mut().zip(parts) {
            text.push_str(part);
            *end = u32::try_from(text.len()).ok()?;
        }
        Some(Self {
            exp,
            ends,
            text: text.into_boxed_str(),
        })
    }

    /// Part `i` of `text` (0: the token).
    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text
            .get(start as usize..self.ends[i] as usize)
            .unwrap_or_default()
    }

    /// The session key the token carries (without `kid`: the header's key id is what verifies).
    pub fn key(&self) -> SessionKeyRef<'_> {
        SessionKeyRef {
            peerip: Cow::Borrowed(self.part(1)),
            orgname: Cow::Borrowed(self.part(2)),
            appname: Cow::Borrowed(self.part(3)),
            appvers: Cow::Borrowed(self.part(4)),
            uniqueidtype: Cow::Borrowed(self.part(5)),
            uniqueid: Cow::Borrowed(self.part(6)),
        }
    }
}

impl Cached for Verified {
    fn token(&self) -> &str {
        self.part(0)
    }

    fn exp(&self) -> i64 {
        self.exp
    }
}

/// Verified session cookies by token: the shared [`TokenCache`] of `Verified` entries.
pub struct SessionCache(TokenCache<Verified>);

impl SessionCache {
    /// A cache of `capacity` slots, rounded up to a power of two; 0 disables caching.
    pub fn new(capacity: usize) -> Self {
        Self(TokenCache::new(capacity))
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// The cached verification of exactly `token`, if it has not expired at `now`.
    pub fn get(&self, token: &str, now: i64) -> Option<Arc<Verified>> {
        self.0.get(token, now)
    }

    /// Records a token that has just been verified (signature and expiry).
    pub fn insert(&self, token: &str, exp: i64, key: &SessionKeyRef<'_>) {
        if let Some(entry) = Verified::new(token, exp, key) {
            self.0.insert(entry);
        }
    }

    /// Drops every entry (e.g. when tests want the slow path again).
    pub fn clear(&self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(sig: &str) -> String {
        format!("{}.{}.{sig}", "h".repeat(40), "p".repeat(40))
    }

    fn key(app: &str) -> SessionKeyRef<'_> {
        SessionKeyRef {
            peerip: Cow::Borrowed("10.0.0.1"),
            orgname: Cow::Borrowed("org"),
            appname: Cow::Borrowed(app),
            appvers: Cow::Borrowed(""),
            uniqueidtype: Cow::Borrowed("t"),
            uniqueid: Cow::Borrowed("é-id"),
        }
    }

    #[test]
    fn hits_only_the_exact_unexpired_token() {
        let c = SessionCache::new(1024);
        let t = token("AAAAbbbbCCCCddddEEEEffff");
        assert!(c.get(&t, 0).is_none());
        c.insert(&t, 100, &key("a"));
        let hit = c.get(&t, 99).unwrap();
        let k = hit.key();
        assert_eq!(
            [
                &k.peerip,
                &k.orgname,
                &k.appname,
                &k.appvers,
                &k.uniqueidtype,
                &k.uniqueid
            ],
            ["10.0.0.1", "org", "a", "", "t", "é-id"]
        );
        assert!(c.get(&t, 100).is_none(), "expired at exp");
        // Same slot (same tail), different token: a miss, never the other token's claims.
        let other = format!("x{}", &t[1..]);
        assert!(c.get(&other, 0).is_none());
        assert_eq!(c.get(&t, 0).map(|v| v.exp), Some(100));
    }

    #[test]
    fn newest_wins_a_slot_and_short_tokens_are_not_cached() {
        let c = SessionCache::new(1);
        let (a, b) = (token("1111111111111111"), token("2222222222222222"));
        c.insert(&a, 100, &key("a"));
        c.insert(&b, 100, &key("b"));
        assert!(c.get(&a, 0).is_none());
        assert_eq!(c.get(&b, 0).unwrap().key().appname, "b");
        c.insert("short", 100, &key("s"));
        assert!(c.get("short", 0).is_none());
        c.clear();
        assert!(c.get(&b, 0).is_none());
    }

    #[test]
    fn zero_capacity_disables_caching() {
        let c = SessionCache::new(0);
        let t = token("AAAAbbbbCCCCddddEEEEffff");
        c.insert(&t, 100, &key("a"));
        assert!(c.get(&t, 0).is_none());
        assert_eq!(c.capacity(), 0);
        assert_eq!(SessionCache::new(1000).capacity(), 1024);
    }
}
