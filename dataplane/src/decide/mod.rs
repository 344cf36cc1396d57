//! Sans-IO decisions of the proxy: which backend to try next, when a backend's health flips, the
//! UDP flow table, where a `quic` route's datagram goes, and the PROXY protocol v2 codec. No
//! sockets, no tasks, no clock: the runtime passes `now` and state in, so all of this is
//! unit-tested and fuzzed deterministically.

pub mod flows;
pub mod health;
pub mod pick;
pub mod proxy_v2;
pub mod quic;
