//! A cache of verified session cookies, so that a client's repeated requests do not pay for
//! base64, JSON and HMAC-SHA512 every time (about 1.3 µs, the largest share of FindCloudlet's
//! own cost). Envoy's JWT filter caches verified tokens for the same reason.
//!
//! Soundness: an entry is only created after the full verification succeeded, and a hit needs
//! the presented token to be byte-for-byte the cached one, so a hit accepts exactly what
//! verification would accept; expiry is still checked on every hit. The slot is chosen from the
//! token's signature characters, which are HMAC output (uniform) for every cached token, so
//! slots spread evenly; a forged token can only miss. Key rings are fixed for the life of a
//! `Dme`, so no entry can outlive the key that verified it.
//!
//! Shape: a fixed array of slots, each an atomically swapped pointer (direct-mapped, newest
//! wins). Readers never lock or allocate; a miss allocates one entry after verifying. An entry
//! keeps the token and the key's strings back to back in one buffer: a hit then reads two
//! allocations (entry and text) instead of nine (entry, token, seven strings), which matters
//! because with thousands of clients every entry is cold in the cache.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use std::borrow::Cow;

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

    fn token(&self) -> &str {
        self.part(0)
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

/// Verified session cookies by token.
pub struct SessionCache {
    slots: Box<[ArcSwapOption<Verified>]>,
}

/// Tokens shorter than this are not cached (a real HS512 cookie is a few hundred bytes).
const MIN_TOKEN: usize = 64;

impl SessionCache {
    /// A cache of `capacity` slots, rounded up to a power of two; 0 disables caching.
    pub fn new(capacity: usize) -> Self {
        let n = if capacity == 0 {
            0
        } else {
            capacity.next_power_of_two()
        };
        Self {
            slots: (0..n).map(|_| ArcSwapOption::empty()).collect(),
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The two slots a token may occupy (two choices: a token only misses when both are
    /// taken by others, far rarer than one collision).
    fn slots(&self, token: &str) -> Option<[&ArcSwapOption<Verified>; 2]> {
        if self.slots.is_empty() || token.len() < MIN_TOKEN {
            return None;
        }
        // The last 16 characters are signature (96 bits of HMAC output in base64url).
        let tail = &token.as_bytes()[token.len() - 16..];
        let (a, b) = tail.split_at(8);
        let a = u64::from_le_bytes(a.try_into().unwrap_or_default());
        let b = u64::from_le_bytes(b.try_into().unwrap_or_default());
        let h = (a ^ b.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mask = self.slots.len() - 1;
        let (i, j) = ((h >> 40) as usize & mask, (h >> 12) as usize & mask);
        Some([&self.slots[i], &self.slots[j]])
    }

    /// The cached verification of exactly `token`, if it has not expired at `now`.
    pub fn get(&self, token: &str, now: i64) -> Option<Arc<Verified>> {
        for slot in self.slots(token)? {
            let guard = slot.load();
            if let Some(v) = &*guard
                && v.exp > now
                && v.token() == token
            {
                return Some(Arc::clone(v));
            }
        }
        None
    }

    /// Records a token that has just been verified (signature and expiry): in its first slot if
    /// that is empty, else in its second (so two tokens sharing a first slot can both stay).
    pub fn insert(&self, token: &str, exp: i64, key: &SessionKeyRef<'_>) {
        let Some([first, second]) = self.slots(token) else {
            return;
        };
        let Some(entry) = Verified::new(token, exp, key) else {
            return;
        };
        let slot = if first.load().is_none() {
            first
        } else {
            second
        };
        slot.store(Some(Arc::new(entry)));
    }

    /// Drops every entry (e.g. when tests want the slow path again).
    pub fn clear(&self) {
        for slot in self.slots.iter() {
            slot.store(None);
        }
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
