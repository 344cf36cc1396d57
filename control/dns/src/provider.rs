//! Where a published zone goes: one [`DnsProvider`] per swappable backend.
//!
//! - [`Embedded`]: the default. Holds the zone in memory and is what this crate's server
//!   ([`crate::server::serve`]) answers from; publishing is one atomic pointer swap.
//!
//! A provider that updates an existing DNS server (RFC 2136) is described in the crate doc.
//! Every provider passes the same `conformance` suite (feature `testing`).

use std::future::Future;
use std::sync::Arc;

use crate::zone::{Answer, Zone};

mod embedded;

#[cfg(any(test, feature = "testing"))]
pub mod conformance;

pub use embedded::Embedded;

/// Why a provider could not publish or look up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Nothing has been published yet: the provider cannot tell what exists.
    #[error("no zone has been published yet")]
    NoZone,
    /// The zone's serial is not newer (RFC 1982) than the live one's while its records differ:
    /// secondaries and caches would never see the change.
    #[error(
        "zone {origin} serial {published} is not newer than the live serial {live}; \
         the live zone keeps serving"
    )]
    StaleSerial {
        origin: String,
        live: u32,
        published: u32,
    },
    /// The backend could not be reached or answered with an error (remote providers).
    #[error("DNS backend {backend}: {reason}")]
    Backend { backend: String, reason: String },
}

/// A backend serving the region's zone.
pub trait DnsProvider: Send + Sync {
    /// Makes `zone` the one served. On error the previous zone keeps serving.
    fn publish(&self, zone: Arc<Zone>) -> impl Future<Output = Result<(), ProviderError>> + Send;

    /// What `name` resolves to right now, as clients of this backend would be told.
    fn lookup(&self, name: &str) -> impl Future<Output = Result<Answer, ProviderError>> + Send;
}
