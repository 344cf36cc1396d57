//! A cache of verified tokens, so that a client's repeated requests do not pay for the
//! signature check every time (an Ed25519 verification costs tens of microseconds, an HMAC one
//! a microsecond: either is most of a lookup's own cost). Envoy's JWT filter caches verified
//! tokens for the same reason. Used for the DME's session cookies and for access tokens.
//!
//! Soundness: an entry is only created after the full verification succeeded, and a hit needs
//! the presented token to be byte-for-byte the cached one, so a hit accepts exactly what
//! verification would accept; expiry is still checked on every hit. The slot is chosen from the
//! token's last characters, which are signature (uniform) for every cached token, so slots
//! spread evenly; a forged token can only miss. When the keys that verified the entries change
//! (a key retired), the owner [`TokenCache::clear`]s the cache.
//!
//! Shape: a fixed array of slots, each an atomically swapped pointer (direct-mapped with two
//! choices, newest wins). Readers never lock or allocate; a miss allocates one entry after
//! verifying.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

/// What a cache entry must tell about itself.
pub trait Cached {
    /// The token it was verified from.
    fn token(&self) -> &str;
    /// Expiry, Unix seconds: the entry is refused from this second on.
    fn exp(&self) -> i64;
}

/// Verified tokens by token.
pub struct TokenCache<V> {
    slots: Box<[ArcSwapOption<V>]>,
}

/// Tokens shorter than this are not cached (real ones are a few hundred bytes).
const MIN_TOKEN: usize = 64;

impl<V: Cached> TokenCache<V> {
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
    fn slots(&self, token: &str) -> Option<[&ArcSwapOption<V>; 2]> {
        if self.slots.is_empty() || token.len() < MIN_TOKEN {
            return None;
        }
        // The last 16 characters are signature (96 bits of MAC or signature in base64url).
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
    pub fn get(&self, token: &str, now: i64) -> Option<Arc<V>> {
        for slot in self.slots(token)? {
            let guard = slot.load();
            if let Some(v) = &*guard
                && v.exp() > now
                && v.token() == token
            {
                return Some(Arc::clone(v));
            }
        }
        None
    }

    /// Records an entry that has just been verified (signature and expiry): in its token's
    /// first slot if that is empty, else in its second (so two tokens sharing a first slot can
    /// both stay).
    pub fn insert(&self, entry: V) {
        self.insert_shared(Arc::new(entry));
    }

    /// [`TokenCache::insert`] of an entry the caller keeps a reference to.
    pub fn insert_shared(&self, entry: Arc<V>) {
        let Some([first, second]) = self.slots(entry.token()) else {
            return;
        };
        let slot = if first.load().is_none() {
            first
        } else {
            second
        };
        slot.store(Some(entry));
    }

    /// Drops every entry.
    pub fn clear(&self) {
        for slot in self.slots.iter() {
            slot.store(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct E(String, i64);

    impl Cached for E {
        fn token(&self) -> &str {
            &self.0
        }
        fn exp(&self) -> i64 {
            self.1
        }
    }

    fn token(sig: &str) -> String {
        format!("{}.{}.{sig}", "h".repeat(40), "p".repeat(40))
    }

    #[test]
    fn hits_only_the_exact_unexpired_token() {
        let c = TokenCache::new(1024);
        let t = token("AAAAbbbbCCCCddddEEEEffff");
        assert!(c.get(&t, 0).is_none());
        c.insert(E(t.clone(), 100));
        assert_eq!(c.get(&t, 99).unwrap().1, 100);
        assert!(c.get(&t, 100).is_none(), "expired at exp");
        // Same slot (same tail), different token: a miss, never the other token's entry.
        let other = format!("x{}", &t[1..]);
        assert!(c.get(&other, 0).is_none());
    }

    #[test]
    fn newest_wins_a_slot_and_short_tokens_are_not_cached() {
        let c = TokenCache::new(1);
        let (a, b) = (token("1111111111111111"), token("2222222222222222"));
        c.insert(E(a.clone(), 100));
        c.insert(E(b.clone(), 100));
        assert!(c.get(&a, 0).is_none());
        assert!(c.get(&b, 0).is_some());
        c.insert(E("short".into(), 100));
        assert!(c.get("short", 0).is_none());
        c.clear();
        assert!(c.get(&b, 0).is_none());
    }

    #[test]
    fn zero_capacity_disables_caching() {
        let c = TokenCache::new(0);
        let t = token("AAAAbbbbCCCCddddEEEEffff");
        c.insert(E(t.clone(), 100));
        assert!(c.get(&t, 0).is_none());
        assert_eq!(c.capacity(), 0);
        assert_eq!(TokenCache::<E>::new(1000).capacity(), 1024);
    }
}
