//! Where a datagram of a `quic` route goes: to the backend owning the server id in its QUIC
//! destination connection id, whatever address it comes from (so a client that changed address
//! mid-connection still reaches its server), else as any UDP datagram, by its client's flow.
//!
//! The flow table stays keyed by client address: replies go back from a flow's upstream socket
//! to that flow's client, so a migrated client gets a flow of its own (a new upstream socket;
//! the server sees a new path and validates it, as QUIC expects).

use std::net::SocketAddr;

use crate::table::QuicMode;

/// What to do with a datagram of a `quic` route, given its client's flow (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send it on the client's existing flow.
    UseFlow,
    /// The client has no flow: open one, to this backend (index into the route's backends), or
    /// with `None` to the backend the usual pick chooses.
    Open(Option<usize>),
    /// The client's flow goes to another backend than the connection id names (a new
    /// connection from a reused address): end that flow, open one to this backend.
    Replace(usize),
}

/// Decide for `datagram` (its first packet) from a client whose flow, if any, goes to `flow`;
/// `backends` are the route's backends, which `mode`'s indices refer to. Pure and
/// allocation-free: a header parse and a binary search.
pub fn decide(
    datagram: &[u8],
    mode: &QuicMode,
    flow: Option<SocketAddr>,
    backends: &[SocketAddr],
) -> Action {
    let routed = quic_lb::route_key(datagram, &mode.cid)
        .and_then(|sid| mode.backend_of(sid))
        .filter(|&i| i < backends.len());
    match (routed, flow) {
        (None, Some(_)) => Action::UseFlow,
        (None, None) => Action::Open(None),
        (Some(i), None) => Action::Open(Some(i)),
        (Some(i), Some(f)) if backends[i] == f => Action::UseFlow,
        (Some(i), Some(_)) => Action::Replace(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quic_lb::{CidConfig, ServerId, encode};

    fn setup() -> (QuicMode, Vec<SocketAddr>) {
        let cfg = CidConfig::new(1, 2, 8).unwrap();
        let id = |h: &str| h.parse::<ServerId>().unwrap();
        let mode = QuicMode::new(cfg, [(id("0a01"), 0), (id("0a02"), 1)]).unwrap();
        let b = vec![
            "10.0.0.1:443".parse().unwrap(),
            "10.0.0.2:443".parse().unwrap(),
        ];
        (mode, b)
    }

    fn short_to(mode: &QuicMode, sid: &str) -> Vec<u8> {
        let cid = encode(&mode.cid, &sid.parse().unwrap(), &[7; 8]).unwrap();
        [&[0x40][..], &cid, &[0u8; 20]].concat()
    }

    #[test]
    fn routable_datagrams_follow_their_server_id() {
        let (m, b) = setup();
        let to_b = short_to(&m, "0a02");
        assert_eq!(decide(&to_b, &m, None, &b), Action::Open(Some(1)));
        assert_eq!(decide(&to_b, &m, Some(b[1]), &b), Action::UseFlow);
        assert_eq!(decide(&to_b, &m, Some(b[0]), &b), Action::Replace(1));
    }

    #[test]
    fn unroutable_datagrams_use_the_flow_table() {
        let (m, b) = setup();
        // A client's first Initial: long header, 8 random DCID bytes.
        let initial = [&[0xc0, 0, 0, 0, 1, 8][..], &[0x5a; 8], &[0; 40]].concat();
        // A server id no backend has.
        let unknown = short_to(&m, "0bff");
        for d in [&initial[..], &unknown, b"", b"GET / HTTP/1.1"] {
            assert_eq!(decide(d, &m, None, &b), Action::Open(None));
            assert_eq!(decide(d, &m, Some(b[0]), &b), Action::UseFlow);
        }
    }

    #[test]
    fn an_index_beyond_the_backends_is_not_routed() {
        let (m, b) = setup();
        let to_b = short_to(&m, "0a02");
        assert_eq!(decide(&to_b, &m, None, &b[..1]), Action::Open(None));
    }
}
