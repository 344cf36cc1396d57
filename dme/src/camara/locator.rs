//! Where the network says a device is: the CAMARA APIs never take a location from the client.
//! One trait, [`DeviceLocator`], with three sources:
//! - [`StaticLocator`]: every device at one place (development, a single-site operator);
//! - [`GeoIpLocator`]: the device's public IP through the DME's GeoIP database (city level);
//! - [`super::feed::FeedLocator`]: an operator's export mapping IP prefixes and phone numbers
//!   to a location tile, as a UPF's address pools or cell data would give it.
//!
//! A device the source does not know is [`LocateError::NotFound`], never a guess.

use std::net::IpAddr;
use std::sync::Arc;

use geodata::{GeoIp, LatLon};

use super::device::Identifier;

/// A device's network location: a circle, and when it was measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fix {
    pub center: LatLon,
    /// Uncertainty, metres (at least 1).
    pub radius_m: f64,
    /// Unix seconds.
    pub at: i64,
}

/// Why a device could not be located.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LocateError {
    /// The source does not know the device.
    #[error("the network does not know this device")]
    NotFound,
    /// The source cannot look up this kind of identifier.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// A source of network locations.
pub trait DeviceLocator: Send + Sync {
    /// The device's location at `now` (Unix seconds).
    fn locate(&self, id: &Identifier, now: i64) -> Result<Fix, LocateError>;
    /// For logs: what the source is.
    fn describe(&self) -> String;
}

/// Every device at one place, measured now.
pub struct StaticLocator {
    pub center: LatLon,
    pub radius_m: f64,
}

impl DeviceLocator for StaticLocator {
    fn locate(&self, _: &Identifier, now: i64) -> Result<Fix, LocateError> {
        Ok(Fix {
            center: self.center,
            radius_m: self.radius_m,
            at: now,
        })
    }

    fn describe(&self) -> String {
        format!(
            "static {},{} ({} m)",
            self.center.lat(),
            self.center.lon(),
            self.radius_m
        )
    }
}

/// The accuracy claimed for a GeoIP city record: city databases place an address within tens
/// of kilometres at best.
pub const GEOIP_RADIUS_M: f64 = 20_000.0;

/// The device's public address through the GeoIP database; phone numbers cannot be looked up.
pub struct GeoIpLocator(pub Arc<GeoIp>);

impl DeviceLocator for GeoIpLocator {
    fn locate(&self, id: &Identifier, now: i64) -> Result<Fix, LocateError> {
        let ip = match id {
            Identifier::Ipv4 { public, .. } => IpAddr::V4(*public),
            Identifier::Ipv6(a) => IpAddr::V6(*a),
            Identifier::Phone(_) => {
                return Err(LocateError::Unsupported(
                    "this network locates devices by IP address only (GeoIP): give \
                     ipv4Address or ipv6Address",
                ));
            }
        };
        match self.0.lookup(ip) {
            Ok(Some(hit)) => Ok(Fix {
                center: hit.location,
                radius_m: GEOIP_RADIUS_M,
                at: now,
            }),
            Ok(None) => Err(LocateError::NotFound),
            Err(e) => {
                tracing::warn!(error = %e, "GeoIP lookup failed");
                Err(LocateError::NotFound)
            }
        }
    }

    fn describe(&self) -> String {
        format!("geoip ({})", self.0.database_type())
    }
}

#[cfg(test)]
mod tests {
    use mmdb_writer::{Value, Writer};

    use super::*;

    fn city(lat: f64, lon: f64) -> Value {
        Value::map([(
            "location",
            Value::map([
                ("latitude", Value::from(lat)),
                ("longitude", Value::from(lon)),
            ]),
        )])
    }

    #[test]
    fn geoip_locates_addresses_only() {
        let mut w = Writer::new("GeoIP2-City");
        w.insert_value(
            "203.0.113.0/24"
                .parse::<mmdb_writer::ipnet::IpNet>()
                .unwrap(),
            city(48.8534, 2.3488),
        )
        .unwrap();
        let db = GeoIp::from_bytes(w.to_bytes().unwrap()).unwrap();
        let loc = GeoIpLocator(Arc::new(db));
        let v4 = |a: &str| Identifier::Ipv4 {
            public: a.parse().unwrap(),
            private: None,
            port: Some(5000),
        };
        let fix = loc.locate(&v4("203.0.113.9"), 77).unwrap();
        assert_eq!(
            (fix.center.lat(), fix.at, fix.radius_m),
            (48.8534, 77, GEOIP_RADIUS_M)
        );
        assert_eq!(
            loc.locate(&v4("198.51.100.1"), 77),
            Err(LocateError::NotFound)
        );
        assert!(matches!(
            loc.locate(&Identifier::Phone("+33612345678".into()), 77),
            Err(LocateError::Unsupported(_))
        ));
    }
}
