use super::*;

fn cfg() -> CidConfig {
    CidConfig::new(1, 2, 8).unwrap()
}

fn sid(s: &str) -> ServerId {
    s.parse().unwrap()
}

/// A short-header packet: first octet (form bit clear), DCID, then some protected bytes.
fn short(cid: &[u8]) -> Vec<u8> {
    let mut p = vec![0x41];
    p.extend_from_slice(cid);
    p.extend_from_slice(&[0xaa; 24]);
    p
}

/// A long-header packet of `version` with this DCID (and a 4-byte SCID).
fn long(version: u32, dcid: &[u8]) -> Vec<u8> {
    let mut p = vec![0xc0];
    p.extend_from_slice(&version.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.extend_from_slice(&[4, 1, 2, 3, 4]);
    p.extend_from_slice(&[0xbb; 30]);
    p
}

#[test]
fn config_validation_names_the_problem() {
    assert_eq!(CidConfig::new(7, 2, 8), Err(ConfigError::ConfigId(7)));
    assert_eq!(CidConfig::new(9, 2, 8), Err(ConfigError::ConfigId(9)));
    assert_eq!(CidConfig::new(0, 0, 8), Err(ConfigError::ServerIdLen(0)));
    assert_eq!(CidConfig::new(0, 16, 4), Err(ConfigError::ServerIdLen(16)));
    assert_eq!(CidConfig::new(0, 2, 3), Err(ConfigError::NonceTooShort(3)));
    assert_eq!(
        CidConfig::new(0, 15, 5),
        Err(ConfigError::TooLong {
            server_id_len: 15,
            nonce_len: 5
        })
    );
    let c = CidConfig::new(6, 15, 4).unwrap();
    assert_eq!(c.cid_len(), 20);
    assert_eq!(c.first_octet(), 0b110_10011);
    assert_eq!(
        CidConfig::new(0, 1, 5),
        Err(ConfigError::TooShort {
            server_id_len: 1,
            nonce_len: 5
        })
    );
    assert_eq!(CidConfig::new(0, 1, 6).unwrap().cid_len(), 8);
    assert_eq!(CidConfig::new(0, 3, 4).unwrap().cid_len(), 8);
}

#[test]
fn server_id_hex() {
    let s = sid("0A01ff");
    assert_eq!(s.as_bytes(), [0x0a, 0x01, 0xff]);
    assert_eq!(s.to_string(), "0a01ff");
    assert_eq!("".parse::<ServerId>(), Err(ServerIdError::Empty));
    assert_eq!("abc".parse::<ServerId>(), Err(ServerIdError::OddDigits(3)));
    assert_eq!("0g".parse::<ServerId>(), Err(ServerIdError::NotHex(1)));
    assert_eq!("é".parse::<ServerId>(), Err(ServerIdError::NotHex(0)));
    assert_eq!(
        "00".repeat(16).parse::<ServerId>(),
        Err(ServerIdError::TooLong(16))
    );
    assert_eq!(ServerId::new(&[]), Err(ServerIdError::Empty));
    assert!(ServerId::new(&[1; 15]).is_ok());
}

#[test]
fn encode_layout_and_round_trip() {
    let c = cfg();
    let cid = encode(&c, &sid("0a01"), &[9; 8]).unwrap();
    assert_eq!(cid.len(), 11);
    assert_eq!(cid[0], 0b001_01010, "config 1, length 11 − 1");
    assert_eq!(&cid[1..3], [0x0a, 0x01]);
    assert_eq!(&cid[3..], [9; 8]);
    assert_eq!(server_id_of(&cid, &c), Some(&[0x0a, 0x01][..]));
    assert_eq!(route_key(&short(&cid), &c), Some(&[0x0a, 0x01][..]));
    assert_eq!(route_key(&long(1, &cid), &c), Some(&[0x0a, 0x01][..]));
    // Unknown versions keep the invariant layout.
    assert_eq!(
        route_key(&long(0x6b33_43cf, &cid), &c),
        Some(&[0x0a, 0x01][..])
    );
    // Greased fixed bit (RFC 9287) still routes.
    let mut g = short(&cid);
    g[0] = 0x01;
    assert_eq!(route_key(&g, &c), Some(&[0x0a, 0x01][..]));
}

#[test]
fn encode_refuses_wrong_lengths() {
    let c = cfg();
    assert_eq!(
        encode(&c, &sid("0a"), &[0; 8]),
        Err(EncodeError::ServerIdLen { got: 1, want: 2 })
    );
    assert_eq!(
        encode(&c, &sid("0a01"), &[0; 7]),
        Err(EncodeError::NonceLen { got: 7, want: 8 })
    );
}

#[test]
fn unreadable_input_is_none() {
    let c = cfg();
    let cid = encode(&c, &sid("0a01"), &[9; 8]).unwrap();
    assert_eq!(route_key(&[], &c), None);
    // Truncated short and long headers, at every length.
    let s = short(&cid);
    for n in 0..=cid.len() {
        assert_eq!(route_key(&s[..n], &c), None, "short truncated at {n}");
    }
    assert!(route_key(&s[..=cid.len()], &c).is_some());
    let l = long(1, &cid);
    for n in 0..6 + cid.len() {
        assert_eq!(route_key(&l[..n], &c), None, "long truncated at {n}");
    }
    // Version negotiation.
    assert_eq!(route_key(&long(0, &cid), &c), None);
    // Long header DCID of another length (a client's first Initial, 8 random bytes), empty,
    // or longer than QUIC allows.
    assert_eq!(route_key(&long(1, &cid[..8]), &c), None);
    assert_eq!(route_key(&long(1, &[]), &c), None);
    let mut big = long(1, &[cid.as_bytes(), &[0; 10]].concat());
    assert_eq!(route_key(&big, &c), None);
    big[5] = 255;
    assert_eq!(route_key(&big, &c), None);
    assert_eq!(dcid(&[0x40], usize::MAX), None, "no overflow");
}

#[test]
fn other_configs_and_unroutable_are_none() {
    let c = cfg();
    let cid = encode(&c, &sid("0a01"), &[9; 8]).unwrap();
    let other = encode(&CidConfig::new(2, 2, 8).unwrap(), &sid("0a01"), &[9; 8]).unwrap();
    assert_eq!(route_key(&short(&other), &c), None, "config id mismatch");
    let mut bytes = cid.as_bytes().to_vec();
    bytes[0] = (UNROUTABLE_CONFIG_ID << 5) | (bytes[0] & 0x1f);
    assert_eq!(route_key(&short(&bytes), &c), None);
    // Right config id, wrong length self-encoding.
    bytes[0] = (1 << 5) | 7;
    assert_eq!(route_key(&short(&bytes), &c), None);
    // Two configs differ by their config id, not their split: same id and CID length with
    // another server id length reads as ours (why servers sharing an LB share one config).
    let same_first = encode(&CidConfig::new(1, 3, 7).unwrap(), &sid("0a0102"), &[1; 7]).unwrap();
    assert_eq!(route_key(&short(&same_first), &c), Some(&[0x0a, 0x01][..]));
    assert_eq!(route_key(&short(&cid), &c), Some(&[0x0a, 0x01][..]));
}

/// A stand-in for the fuzzer: random and mutated inputs never panic, and whatever is
/// returned is a slice of the configured server id length.
#[test]
fn random_inputs_never_panic() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let configs = [
        cfg(),
        CidConfig::new(0, 1, 6).unwrap(),
        CidConfig::new(6, 15, 4).unwrap(),
    ];
    let seed = long(1, &encode(&cfg(), &sid("0a01"), &[9; 8]).unwrap());
    let mut buf = [0u8; 64];
    for i in 0..200_000 {
        let n = (next() % 64) as usize;
        if i % 2 == 0 {
            buf[..n].iter_mut().for_each(|b| *b = next() as u8);
        } else {
            let m = n.min(seed.len());
            buf[..m].copy_from_slice(&seed[..m]);
            let at = (next() as usize) % m.max(1);
            if m > 0 {
                buf[at] = next() as u8;
            }
        }
        for c in &configs {
            if let Some(s) = route_key(&buf[..n], c) {
                assert_eq!(s.len(), c.server_id_len());
            }
        }
    }
}

#[cfg(feature = "quinn")]
#[test]
fn quinn_generator_issues_routable_unlinked_cids() {
    use quinn::ConnectionIdGenerator;
    let c = cfg();
    let mut g = QuicLbCidGenerator::new(c, sid("0a01")).unwrap();
    assert_eq!(g.cid_len(), 11);
    assert_eq!(g.cid_lifetime(), None);
    let a = g.generate_cid();
    let b = g.generate_cid();
    assert_eq!(server_id_of(&a, &c), Some(&[0x0a, 0x01][..]));
    assert_eq!(route_key(&short(&b), &c), Some(&[0x0a, 0x01][..]));
    assert_ne!(a[3..], b[3..], "fresh nonce per CID");
    assert!(QuicLbCidGenerator::new(c, sid("0a")).is_err());
    let g = g.with_lifetime(std::time::Duration::from_secs(60));
    assert_eq!(g.cid_lifetime(), Some(std::time::Duration::from_secs(60)));
}
