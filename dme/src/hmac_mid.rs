//! HMAC-SHA256 resumed from saved compression states, for the edge-events cookie: the key's
//! inner and outer pad blocks are hashed once, so a one-block cookie costs two compressions
//! (and a message sharing a prefix can resume from the state after it). ring's
//! `hmac::Context` can do the same by cloning, but its state is about 300 bytes.
//!
//! RFC 2104 over SHA-256's compression function (`sha2::compress256`, which uses the CPU's SHA
//! extensions when present). Checked against ring's HMAC for every length across the block
//! boundaries in the tests.

use sha2::digest::generic_array::GenericArray;

/// SHA-256 initial state (FIPS 180-4 §5.3.3).
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];
const BLOCK: usize = 64;

/// A key's states after its inner and outer pad blocks.
#[derive(Clone)]
pub struct HmacKey {
    inner: [u32; 8],
    outer: [u32; 8],
}

/// The inner hash part-way through a message: the state after `absorbed` bytes (whole blocks,
/// the key's pad block included).
#[derive(Clone, Copy, Debug)]
pub struct Midstate {
    state: [u32; 8],
    absorbed: usize,
}

fn compress(state: &mut [u32; 8], blocks: &[u8]) {
    for b in blocks.chunks_exact(BLOCK) {
        sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(b)));
    }
}

/// Hashes `tail` onto `state` (after `before` bytes) with SHA-256's final padding.
fn finish(mut state: [u32; 8], before: usize, tail: &[u8]) -> [u8; 32] {
    let whole = tail.len() / BLOCK * BLOCK;
    compress(&mut state, &tail[..whole]);
    let rest = &tail[whole..];
    let mut last = [0u8; 2 * BLOCK];
    last[..rest.len()].copy_from_slice(rest);
    last[rest.len()] = 0x80;
    let n = if rest.len() + 9 <= BLOCK {
        BLOCK
    } else {
        2 * BLOCK
    };
    let bits = ((before + tail.len()) as u64).wrapping_mul(8);
    last[n - 8..n].copy_from_slice(&bits.to_be_bytes());
    compress(&mut state, &last[..n]);
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

impl HmacKey {
    pub fn new(key: &[u8]) -> Self {
        let mut k0 = [0u8; BLOCK];
        if key.len() > BLOCK {
            k0[..32].copy_from_slice(&finish(IV, 0, key));
        } else {
            k0[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| {
            let mut state = IV;
            compress(&mut state, &k0.map(|k| k ^ byte));
            state
        };
        Self {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    /// The inner state after the whole blocks of `prefix` (its last `prefix.len() % 64` bytes
    /// must be passed again to [`Self::sign`]).
    pub fn absorb(&self, prefix: &[u8]) -> Midstate {
        let whole = prefix.len() / BLOCK * BLOCK;
        let mut state = self.inner;
        compress(&mut state, &prefix[..whole]);
        Midstate {
            state,
            absorbed: BLOCK + whole,
        }
    }

    /// The MAC of the message whose first bytes `mid` absorbed and whose remainder is `tail`.
    pub fn sign(&self, mid: &Midstate, tail: &[u8]) -> [u8; 32] {
        let inner = finish(mid.state, mid.absorbed, tail);
        finish(self.outer, BLOCK, &inner)
    }
}

impl Midstate {
    #[cfg(test)]
    /// How many bytes of the prefix it absorbed (excluding the key's pad block).
    pub fn prefix_bytes(&self) -> usize {
        self.absorbed - BLOCK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::hmac;

    #[test]
    fn matches_ring_for_every_length_across_block_boundaries() {
        for key_len in [16, 32, 64, 65, 100] {
            let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
            let ours = HmacKey::new(&key);
            let theirs = hmac::Key::new(hmac::HMAC_SHA256, &key);
            let msg: Vec<u8> = (0..300u32).map(|i| (i * 31 % 251) as u8).collect();
            for len in 0..msg.len() {
                for split in [0, len / 3, len.saturating_sub(1), len] {
                    let m = &msg[..len];
                    let mid = ours.absorb(&m[..split]);
                    let tag = ours.sign(&mid, &m[mid.prefix_bytes()..]);
                    assert_eq!(
                        tag.as_slice(),
                        hmac::sign(&theirs, m).as_ref(),
                        "key {key_len}, length {len}, split {split}"
                    );
                }
            }
        }
    }
}
