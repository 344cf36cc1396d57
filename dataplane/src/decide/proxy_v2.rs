//! PROXY protocol v2 (the binary header HAProxy specified) — encoder for headers we send to
//! backends, and a decoder used by tests, fuzzing, and later by accept-proxy listeners.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12-byte v2 signature.
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Largest header [`encode`] writes (IPv6): 16 fixed + 36 address bytes.
pub const MAX_ENCODED: usize = 52;

/// Transport carried, as the header's low nibble of the family byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Stream,
    Datagram,
}

/// A decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    /// `PROXY` command with the original addresses.
    Proxy {
        transport: Transport,
        src: SocketAddr,
        dst: SocketAddr,
    },
    /// `LOCAL` command, or `PROXY` with an unspecified/unix family: no usable addresses.
    Local,
}

/// Why bytes are not a valid v2 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// More bytes are needed; `needed` is the total header length when known.
    #[error("incomplete PROXY v2 header")]
    Incomplete { needed: Option<usize> },
    #[error("not a PROXY v2 signature")]
    BadSignature,
    #[error("unsupported PROXY version or command byte {0:#04x}")]
    BadVersionCommand(u8),
    #[error("unsupported address family byte {0:#04x}")]
    BadFamily(u8),
    #[error("address block shorter than the family needs")]
    ShortAddresses,
}

/// Encode a `PROXY` header for a stream (TCP) connection from `src` to `dst`.
///
/// Mixed families are unified: an IPv4-mapped IPv6 address is written as IPv4 when the other side
/// is IPv4, otherwise the IPv4 side is mapped into IPv6. Returns the used length of `out`.
pub fn encode(src: SocketAddr, dst: SocketAddr, out: &mut [u8; MAX_ENCODED]) -> usize {
    out[..12].copy_from_slice(&SIGNATURE);
    out[12] = 0x21; // version 2, PROXY
    let (s, d) = (canonical(src.ip()), canonical(dst.ip()));
    match (s, d) {
        (IpAddr::V4(s4), IpAddr::V4(d4)) => {
            out[13] = 0x11;
            out[14..16].copy_from_slice(&12u16.to_be_bytes());
            out[16..20].copy_from_slice(&s4.octets());
            out[20..24].copy_from_slice(&d4.octets());
            out[24..26].copy_from_slice(&src.port().to_be_bytes());
            out[26..28].copy_from_slice(&dst.port().to_be_bytes());
            28
        }
        _ => {
            out[13] = 0x21;
            out[14..16].copy_from_slice(&36u16.to_be_bytes());
            out[16..32].copy_from_slice(&as_v6(s).octets());
            out[32..48].copy_from_slice(&as_v6(d).octets());
            out[48..50].copy_from_slice(&src.port().to_be_bytes());
            out[50..52].copy_from_slice(&dst.port().to_be_bytes());
            52
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Decode a header at the start of `buf`; returns it and the number of bytes it occupies
/// (including TLVs, which are skipped).
pub fn decode(buf: &[u8]) -> Result<(Header, usize), DecodeError> {
    if buf.len() < 16 {
        let n = buf.len().min(12);
        if buf[..n] != SIGNATURE[..n] {
            return Err(DecodeError::BadSignature);
        }
        return Err(DecodeError::Incomplete { needed: None });
    }
    if buf[..12] != SIGNATURE {
        return Err(DecodeError::BadSignature);
    }
    let vc = buf[12];
    if vc >> 4 != 2 || (vc & 0x0f) > 1 {
        return Err(DecodeError::BadVersionCommand(vc));
    }
    let fam = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = 16 + len;
    if buf.len() < total {
        return Err(DecodeError::Incomplete {
            needed: Some(total),
        });
    }
    let body = &buf[16..total];
    if vc & 0x0f == 0 {
        return Ok((Header::Local, total));
    }
    let transport = match fam & 0x0f {
        0 => return Ok((Header::Local, total)),
        1 => Transport::Stream,
        2 => Transport::Datagram,
        _ => return Err(DecodeError::BadFamily(fam)),
    };
    let (src, dst) = match fam >> 4 {
        0 | 3 => return Ok((Header::Local, total)), // unspecified / unix
        1 => {
            let b: &[u8; 12] = body
                .get(..12)
                .and_then(|s| s.try_into().ok())
                .ok_or(DecodeError::ShortAddresses)?;
            let s = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            let d = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            (
                SocketAddr::from((s, u16::from_be_bytes([b[8], b[9]]))),
                SocketAddr::from((d, u16::from_be_bytes([b[10], b[11]]))),
            )
        }
        2 => {
            let b = body.get(..36).ok_or(DecodeError::ShortAddresses)?;
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&b[..16]);
            d.copy_from_slice(&b[16..32]);
            (
                SocketAddr::from((Ipv6Addr::from(s), u16::from_be_bytes([b[32], b[33]]))),
                SocketAddr::from((Ipv6Addr::from(d), u16::from_be_bytes([b[34], b[35]]))),
            )
        }
        _ => return Err(DecodeError::BadFamily(fam)),
    };
    Ok((
        Header::Proxy {
            transport,
            src,
            dst,
        },
        total,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_round_trip_matches_the_spec_bytes() {
        let src: SocketAddr = "192.0.2.1:56324".parse().unwrap();
        let dst: SocketAddr = "198.51.100.2:443".parse().unwrap();
        let mut b = [0u8; MAX_ENCODED];
        let n = encode(src, dst, &mut b);
        assert_eq!(n, 28);
        assert_eq!(&b[12..16], &[0x21, 0x11, 0, 12]);
        assert_eq!(&b[16..20], &[192, 0, 2, 1]);
        assert_eq!(&b[24..26], &56324u16.to_be_bytes());
        let (h, used) = decode(&b[..n]).unwrap();
        assert_eq!(used, 28);
        assert_eq!(
            h,
            Header::Proxy {
                transport: Transport::Stream,
                src,
                dst
            }
        );
    }

    #[test]
    fn v6_and_mixed_families() {
        let src: SocketAddr = "[2001:db8::1]:1000".parse().unwrap();
        let dst: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let mut b = [0u8; MAX_ENCODED];
        let n = encode(src, dst, &mut b);
        assert_eq!(n, 52);
        let (h, _) = decode(&b[..n]).unwrap();
        let want_dst: SocketAddr = "[::ffff:10.0.0.1]:80".parse().unwrap();
        assert_eq!(
            h,
            Header::Proxy {
                transport: Transport::Stream,
                src,
                dst: want_dst
            }
        );
        // A v4-mapped client on a dual-stack socket is written as plain IPv4.
        let n = encode("[::ffff:1.2.3.4]:5".parse().unwrap(), dst, &mut b);
        assert_eq!(n, 28);
    }

    #[test]
    fn decode_errors() {
        let mut b = [0u8; MAX_ENCODED];
        let n = encode(
            "1.1.1.1:1".parse().unwrap(),
            "2.2.2.2:2".parse().unwrap(),
            &mut b,
        );
        assert_eq!(
            decode(&b[..5]),
            Err(DecodeError::Incomplete { needed: None })
        );
        assert_eq!(
            decode(&b[..20]),
            Err(DecodeError::Incomplete { needed: Some(28) })
        );
        assert_eq!(
            decode(b"GET / HTTP/1.1\r\n\r\n"),
            Err(DecodeError::BadSignature)
        );
        let mut bad = b;
        bad[12] = 0x31;
        assert_eq!(decode(&bad[..n]), Err(DecodeError::BadVersionCommand(0x31)));
        let mut short = b;
        short[15] = 4; // claims 4 address bytes for IPv4
        assert_eq!(decode(&short[..20]), Err(DecodeError::ShortAddresses));
        let mut local = b;
        local[12] = 0x20;
        assert_eq!(decode(&local[..n]), Ok((Header::Local, 28)));
    }
}
