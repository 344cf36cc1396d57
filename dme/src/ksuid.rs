//! KSUIDs for server-assigned client unique ids: 4 bytes of time (seconds since the KSUID epoch)
//! and 16 random bytes, as 27 base62 characters, so ids sort by creation time.

use rand::RngCore;

const EPOCH: i64 = 1_400_000_000;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new KSUID for Unix time `now`.
pub fn new(now: i64) -> String {
    let mut bytes = [0u8; 20];
    let ts = u32::try_from((now - EPOCH).max(0)).unwrap_or(u32::MAX);
    bytes[..4].copy_from_slice(&ts.to_be_bytes());
    rand::rng().fill_bytes(&mut bytes[4..]);
    encode(&bytes)
}

/// Base62 of a 160-bit big-endian number, zero-padded to 27 characters.
fn encode(bytes: &[u8; 20]) -> String {
    // Repeated division of the big number by 62, over 32-bit limbs.
    let mut limbs: Vec<u32> = bytes
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut out = [b'0'; 27];
    let mut pos = out.len();
    while limbs.iter().any(|&l| l != 0) && pos > 0 {
        let mut rem: u64 = 0;
        for limb in &mut limbs {
            let acc = (rem << 32) | u64::from(*limb);
            *limb = u32::try_from(acc / 62).unwrap_or(u32::MAX);
            rem = acc % 62;
        }
        pos -= 1;
        out[pos] = ALPHABET[rem as usize];
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_known_values() {
        assert_eq!(encode(&[0; 20]), "0".repeat(27));
        let mut one = [0u8; 20];
        one[19] = 61;
        assert_eq!(encode(&one), format!("{}z", "0".repeat(26)));
        // The largest 160-bit value is the documented maximum KSUID.
        assert_eq!(encode(&[0xff; 20]), "aWgEPTl1tmebfsQzFP4bxwgy80V");
    }

    #[test]
    fn ids_are_unique_and_sorted_by_time() {
        let a = new(1_700_000_000);
        let b = new(1_700_000_000);
        let c = new(1_800_000_000);
        assert_ne!(a, b);
        assert_eq!(a.len(), 27);
        assert!(c > a && c > b);
    }
}
