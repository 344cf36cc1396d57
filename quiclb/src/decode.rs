//! The load balancer's side: read a datagram's destination CID and the server id in it.
//!
//! Only the invariant parts of the header are read (RFC 8999, RFC 9000 §17): the header form
//! bit, a long header's version and explicit DCID length, a short header's DCID of the length
//! the servers chose. The fixed bit (0x40) is deliberately not checked: peers that negotiated
//! RFC 9287's grease_quic_bit (quinn does by default) send packets with it cleared.

use crate::{CidConfig, MAX_CID_LEN};

const LONG_HEADER: u8 = 0x80;

/// The destination CID of the first QUIC packet of `datagram`, or `None` when the bytes cannot
/// be one: empty or truncated input, a version negotiation packet (version 0), a long header
/// claiming a DCID longer than 20 bytes. A short header does not say its DCID's length; it is
/// `short_dcid_len`, the length the servers issue.
pub fn dcid(datagram: &[u8], short_dcid_len: usize) -> Option<&[u8]> {
    let &first = datagram.first()?;
    if first & LONG_HEADER == 0 {
        return datagram.get(1..1usize.checked_add(short_dcid_len)?);
    }
    // Long header: first octet, 4-byte version, DCID length, DCID.
    let version = datagram.get(1..5)?;
    if version == [0; 4] {
        // Version negotiation: only servers send it, and its DCID is the client's choice.
        return None;
    }
    let len = usize::from(*datagram.get(5)?);
    // Versions other than 1 may allow longer CIDs, but none of ours is: not ours to route.
    if len > MAX_CID_LEN {
        return None;
    }
    datagram.get(6..6 + len)
}

/// The server id inside `cid` if `cid` is one of `cfg`'s: the right length, and a first octet
/// with the config's id and length self-encoding. Other configs, the unroutable config id and
/// random client-chosen CIDs (mostly) give `None`.
pub fn server_id_of<'a>(cid: &'a [u8], cfg: &CidConfig) -> Option<&'a [u8]> {
    if cid.len() != cfg.cid_len() || cid.first() != Some(&cfg.first_octet()) {
        return None;
    }
    cid.get(1..1 + cfg.server_id_len())
}

/// What the load balancer routes a datagram by: the server id in the destination CID of its
/// first packet, if that CID is one of `cfg`'s. `None` for client Initials (random DCID, by
/// chance one in 256 first octets matches and the server id must still be known to the
/// caller), other configs, version negotiation, non-QUIC and truncated input. Never panics.
pub fn route_key<'a>(datagram: &'a [u8], cfg: &CidConfig) -> Option<&'a [u8]> {
    server_id_of(dcid(datagram, cfg.cid_len())?, cfg)
}
