//! Fuzz entry points, shared by the cargo-fuzz targets in `dataplane/fuzz/` and the stable
//! smoke test (`tests/fuzz_smoke.rs`) that runs them on generated inputs in CI. Each checks
//! invariants, not just "no panic".

use crate::decide::proxy_v2;
use crate::table::RouteTable;

/// PROXY v2 decoding: never panics; a decoded header re-encodes to a header that decodes equal.
pub fn proxy_v2_decode(data: &[u8]) {
    match proxy_v2::decode(data) {
        Ok((h, used)) => {
            assert!(used <= data.len() && used >= 16);
            if let proxy_v2::Header::Proxy {
                transport: proxy_v2::Transport::Stream,
                src,
                dst,
            } = h
            {
                let mut buf = [0u8; proxy_v2::MAX_ENCODED];
                let n = proxy_v2::encode(src, dst, &mut buf);
                let (again, _) = proxy_v2::decode(&buf[..n]).expect("re-encoded header decodes");
                let proxy_v2::Header::Proxy {
                    src: s2, dst: d2, ..
                } = again
                else {
                    panic!("lost PROXY")
                };
                assert_eq!((s2.port(), d2.port()), (src.port(), dst.port()));
            }
        }
        Err(proxy_v2::DecodeError::Incomplete { needed: Some(n) }) => assert!(n > data.len()),
        Err(_) => {}
    }
}

/// Routes-file decoding: never panics; an accepted table has only non-empty, nonzero-port routes.
pub fn table_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = RouteTable::from_yaml(text) {
        for r in t.routes() {
            assert!(r.key.port != 0 && !r.backends.is_empty());
            assert!(r.tls.is_none() || r.key.proto == crate::table::Proto::Tcp);
        }
    }
}

#[cfg(test)]
mod tests {
    //! A bounded, deterministic stand-in for the fuzzer that runs on stable in every CI run:
    //! mutations of valid seeds (byte flips, truncations, splices of grammar tokens).

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn mutate(rng: &mut Rng, seed: &[u8], tokens: &[&[u8]]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(v.len() + 1);
            match rng.below(5) {
                0 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] = rng.next() as u8;
                }
                1 => v.truncate(at),
                2 => {
                    let t = tokens[rng.below(tokens.len())];
                    v.splice(at..at, t.iter().copied());
                }
                3 if at < v.len() => {
                    let end = (at + rng.below(8)).min(v.len());
                    v.drain(at..end);
                }
                _ => v.insert(at.min(v.len()), rng.next() as u8),
            }
        }
        v
    }

    #[test]
    fn proxy_v2_decode_survives_mutations() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut seeds = Vec::new();
        for (s, d) in [("1.2.3.4:5", "6.7.8.9:10"), ("[2001:db8::1]:1", "[::1]:2")] {
            let mut b = [0u8; crate::decide::proxy_v2::MAX_ENCODED];
            let n = crate::decide::proxy_v2::encode(s.parse().unwrap(), d.parse().unwrap(), &mut b);
            seeds.push(b[..n].to_vec());
        }
        let tokens: &[&[u8]] = &[
            b"\x21",
            b"\x20",
            b"\x11",
            b"\x21\x12",
            b"\x00\x24",
            b"\xff\xff",
            b"\x00",
        ];
        for i in 0..50_000 {
            let seed = &seeds[i % seeds.len()];
            super::proxy_v2_decode(&mutate(&mut rng, seed, tokens));
        }
    }

    #[test]
    fn table_yaml_survives_mutations() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let seed = br#"drain_grace: 1s
defaults: {bind: 127.0.0.1, connect_timeout: 250ms, health_check: {interval: 5s, timeout: 1s}}
listeners:
  - {proto: tcp, port: 28080, backends: ["127.0.0.1:18080"], max_conns_per_backend: 3}
  - {proto: udp, port: 25201, backends: ["[::1]:15201"], udp: {idle_timeout: 5s, max_flows: 9}}
  - {proto: tcp, port: 28443, backends: ["10.0.0.1:443"], tls: {cert: a, key: b}, proxy_protocol: v2}
"#;
        let tokens: &[&[u8]] = &[
            b"{",
            b"}",
            b"[",
            b"]",
            b":",
            b",",
            b"\n  - ",
            b"port: 0",
            b"port: 65536",
            b"proto: udp",
            b"tls: {cert: x, key: y}",
            b"backends: []",
            b"&a ",
            b"*a",
            b"'",
            b"\"",
            b"- ",
            b"99999999999999999999",
            b"ms",
            b"h",
            b"~",
            b"!!str ",
        ];
        for _ in 0..3_000 {
            super::table_yaml(&mutate(&mut rng, seed, tokens));
        }
    }
}
