//! Where a device is according to the network, and VerifyLocation's distance buckets.

use std::net::IpAddr;

use edge_model::NetworkLocation;
use geodata::{GeoIp, LatLon};

use crate::proto::verify_location_reply::GpsLocationStatus;

/// Upstream's verification ranges in km: a distance is verified with the smallest range strictly
/// greater than it.
pub const RANGES_KM: [f64; 3] = [2.0, 10.0, 100.0];

/// Maps the distance between the claimed and the network location to a status and accuracy.
pub fn verify(distance_km: f64) -> (GpsLocationStatus, f64) {
    match RANGES_KM.iter().find(|&&r| r > distance_km) {
        Some(&r) => (GpsLocationStatus::LocVerified, r),
        None => (GpsLocationStatus::LocMismatchSameCountry, -1.0),
    }
}

/// The network location of a device: a fixed point, or its IP through the GeoIP database.
pub fn network_location(
    source: &NetworkLocation,
    geoip: Option<&GeoIp>,
    peer: Option<IpAddr>,
) -> Option<LatLon> {
    match source {
        NetworkLocation::Static(p) => Some(*p),
        NetworkLocation::GeoIp => {
            let hit = geoip?.lookup(peer?).ok()??;
            Some(hit.location)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_strictly_greater() {
        assert_eq!(verify(0.0), (GpsLocationStatus::LocVerified, 2.0));
        assert_eq!(verify(1.999), (GpsLocationStatus::LocVerified, 2.0));
        assert_eq!(verify(2.0), (GpsLocationStatus::LocVerified, 10.0));
        assert_eq!(verify(9.99), (GpsLocationStatus::LocVerified, 10.0));
        assert_eq!(verify(10.0), (GpsLocationStatus::LocVerified, 100.0));
        assert_eq!(verify(99.9), (GpsLocationStatus::LocVerified, 100.0));
        assert_eq!(
            verify(100.0),
            (GpsLocationStatus::LocMismatchSameCountry, -1.0)
        );
        assert_eq!(
            verify(5000.0),
            (GpsLocationStatus::LocMismatchSameCountry, -1.0)
        );
    }
}
