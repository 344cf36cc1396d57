//! Fuzz entry points, shared by the cargo-fuzz targets in `dataplane/fuzz/` and the stable
//! smoke test (`tests/fuzz_smoke.rs`) that runs them on generated inputs in CI. Each checks
//! invariants, not just "no panic".

use crate::decide::proxy_v2;
use crate::decide::quic::{self, Action};
use crate::table::{QuicMode, RouteTable};

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

/// QUIC connection-id routing: `data[..3]` are a config (config id, server id length, nonce
/// length; an invalid one falls back to 1, 2, 8), the rest is a datagram. The decoder never
/// panics; a server id it returns is the configured length and sits in the datagram's DCID,
/// which re-encodes from it; the decision follows the server id when a backend has it
/// (backend 0 has all zeros, backend 1 all ones) and the flow table otherwise.
pub fn quic_cid(data: &[u8]) {
    let (head, datagram) = data.split_at(data.len().min(3));
    let cfg = match head {
        [c, s, n] => quic_lb::CidConfig::new(*c, *s, *n).ok(),
        _ => None,
    }
    .unwrap_or_else(|| quic_lb::CidConfig::new(1, 2, 8).expect("valid"));
    let routed = quic_lb::route_key(datagram, &cfg);
    if let Some(sid) = routed {
        assert_eq!(sid.len(), cfg.server_id_len());
        let cid = quic_lb::dcid(datagram, cfg.cid_len()).expect("routed, so it has a DCID");
        assert_eq!(&cid[1..=sid.len()], sid);
        let id = quic_lb::ServerId::new(sid).expect("1..=15 bytes");
        let again = quic_lb::encode(&cfg, &id, &cid[1 + sid.len()..]).expect("lengths fit");
        assert_eq!(again.as_bytes(), cid);
    }
    let len = cfg.server_id_len();
    let ids = [0u8, 1].map(|b| quic_lb::ServerId::new(&[b; 15][..len]).expect("1..=15 bytes"));
    let mode = QuicMode::new(cfg, [(ids[0], 0), (ids[1], 1)]).expect("distinct ids");
    let backends = [
        "10.0.0.1:1".parse().expect("addr"),
        "10.0.0.2:1".parse().expect("addr"),
    ];
    let owner = routed.and_then(|s| mode.backend_of(s));
    for flow in [None, Some(backends[0]), Some(backends[1])] {
        let want = match (owner, flow) {
            (None, None) => Action::Open(None),
            (None, Some(_)) => Action::UseFlow,
            (Some(i), None) => Action::Open(Some(i)),
            (Some(i), Some(f)) if backends[i] == f => Action::UseFlow,
            (Some(i), Some(_)) => Action::Replace(i),
        };
        assert_eq!(quic::decide(datagram, &mode, flow, &backends), want);
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
    fn quic_cid_survives_mutations() {
        let mut rng = Rng(0x6a09_e667_f3bc_c908);
        // The fuzz target's seed files, so they stay valid inputs.
        let seeds: [&[u8]; 3] = [
            include_bytes!("../fuzz/seeds/quic_cid/short-header"),
            include_bytes!("../fuzz/seeds/quic_cid/long-header"),
            include_bytes!("../fuzz/seeds/quic_cid/client-initial"),
        ];
        for s in seeds {
            super::quic_cid(s);
        }
        let routed = quic_lb::route_key(&seeds[0][3..], &quic_lb::CidConfig::new(1, 2, 8).unwrap());
        assert_eq!(
            routed,
            Some(&[1, 1][..]),
            "the short-header seed routes to backend 1"
        );
        let tokens: &[&[u8]] = &[
            b"\x80",
            b"\x40",
            b"\x00",
            b"\x2a",
            b"\xc0\x00\x00\x00\x01",
            b"\x0b",
            b"\x14",
            b"\xff",
            b"\x01\x01",
            b"\x00\x00\x00\x00",
        ];
        for i in 0..50_000 {
            let seed = seeds[i % seeds.len()];
            super::quic_cid(&mutate(&mut rng, seed, tokens));
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
