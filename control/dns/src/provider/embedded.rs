//! The embedded provider: the zone in an [`ArcSwapOption`], read by the server on every query
//! without a lock, replaced whole on publish.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;

use super::{DnsProvider, ProviderError};
use crate::zone::{self, Answer, Zone};

/// The zone the embedded server answers from.
#[derive(Debug, Default)]
pub struct Embedded {
    zone: ArcSwapOption<Zone>,
    /// Serialises publishers (check and swap as one step); readers never take it.
    publishing: Mutex<()>,
}

impl Embedded {
    /// A provider with no zone yet (the server answers SERVFAIL until the first publish).
    pub fn new() -> Self {
        Self::default()
    }

    /// The zone being served, if one was published.
    pub fn current(&self) -> Option<Arc<Zone>> {
        self.zone.load_full()
    }

    /// Publishes without awaiting (the embedded swap never waits): see [`DnsProvider::publish`].
    pub fn replace(&self, zone: Arc<Zone>) -> Result<(), ProviderError> {
        // A poisoned lock only means another publisher panicked; the swap itself is atomic.
        let _guard = self
            .publishing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(live) = self.zone.load().as_deref()
            && !zone::serial_newer(zone.serial(), live.serial())
        {
            // Republishing what is served is a no-op; changing it needs a newer serial.
            if live.same_records(&zone) {
                return Ok(());
            }
            return Err(ProviderError::StaleSerial {
                origin: zone.origin().to_owned(),
                live: live.serial(),
                published: zone.serial(),
            });
        }
        self.zone.store(Some(zone));
        Ok(())
    }
}

impl DnsProvider for Embedded {
    async fn publish(&self, zone: Arc<Zone>) -> Result<(), ProviderError> {
        self.replace(zone)
    }

    async fn lookup(&self, name: &str) -> Result<Answer, ProviderError> {
        let zone = self.zone.load();
        let zone = zone.as_deref().ok_or(ProviderError::NoZone)?;
        Ok(zone.lookup(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conforms() {
        super::super::conformance::run(&Embedded::new()).await;
    }

    #[tokio::test]
    async fn nothing_to_answer_before_the_first_publish() {
        let e = Embedded::new();
        assert!(e.current().is_none());
        assert_eq!(
            e.lookup("a.edge.example.net").await,
            Err(ProviderError::NoZone)
        );
    }
}
