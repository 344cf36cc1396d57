//! The region's authoritative DNS: every FQDN the controller hands out (shared root LB names,
//! app instance URIs, apps' official FQDNs) resolves, under the region's `app_dns_root` zone,
//! to the address of the load balancer that serves it.
//!
//! # What this crate owns
//! - [`zone`]: the zone as a pure function of the region's objects (the naming rules live in
//!   `edge_model::naming`; which name points where is decided here).
//! - [`provider`]: where a zone is published, one [`DnsProvider`] per backend; the
//!   [`Embedded`] one is the default and is what [`server`] answers from.
//! - [`server`]: an authoritative UDP+TCP server (hickory-server with our own handler).
//! - [`subscribe`]: the notify subscriber that rebuilds and republishes the zone whenever the
//!   controller's objects change.
//! - [`cli`]: the `dns` role's flags and entry points.
//!
//! # What it does not own
//! Names themselves: the controller computes every URI (`edge_model::naming`), and this crate
//! only publishes them. Recursion, caching for clients, DNSSEC and zone transfers are not
//! offered; a resolver in front of the region (or delegation of `app_dns_root` to this server)
//! does the rest.
//!
//! # Another backend: RFC 2136 dynamic update
//! A provider for an existing authoritative server (BIND, Knot, PowerDNS, ...) would implement
//! [`DnsProvider`] like this:
//! - `publish(zone)`: diff the new zone against the last one it published (per name: address
//!   sets added and removed; on the first publish, or after an error, against what an AXFR or
//!   a query of each name returns), then send one UPDATE message for the zone (RFC 2136: a
//!   prerequisite on the zone's SOA serial it last saw, `delete RRset` / `add RR` for each
//!   changed A/AAAA set, TTL [`server::RECORD_TTL`]), signed with TSIG (RFC 8945, HMAC-SHA256,
//!   a key name and secret from the flags), and map a non-NOERROR reply (NOTAUTH, REFUSED,
//!   YXRRSET on a lost race) to [`provider::ProviderError::Backend`]; the server maintains
//!   its own SOA serial. Large diffs are split across several UPDATE messages.
//! - `lookup(name)`: query the server directly (not through a caching resolver).
//!
//! It then runs the same `provider::conformance` suite (feature `testing`) against a real
//! server in `tests/`.

pub mod cli;
#[cfg(any(test, feature = "testing"))]
pub mod fixture;
pub mod provider;
pub mod server;
pub mod subscribe;
pub mod zone;

pub use provider::{DnsProvider, Embedded, ProviderError};
pub use zone::{Answer, Zone, ZoneError, ZoneOptions};
