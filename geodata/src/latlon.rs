//! A validated coordinate and great-circle distance.

use std::fmt;

/// Mean Earth radius used by the upstream DME for haversine distances, in kilometres.
pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// Why a coordinate was rejected.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum CoordError {
    /// Latitude is NaN, infinite, or outside [-90, 90].
    #[error("latitude {0} is out of range: must be a finite number in [-90, 90]")]
    Latitude(f64),
    /// Longitude is NaN, infinite, or outside [-180, 180].
    #[error("longitude {0} is out of range: must be a finite number in [-180, 180]")]
    Longitude(f64),
}

/// A point on Earth in degrees. Construction validates, so a `LatLon` always holds a finite
/// latitude in [-90, 90] and a finite longitude in [-180, 180] (bounds inclusive, as upstream).
#[derive(Clone, Copy, PartialEq, Default)]
pub struct LatLon {
    lat: f64,
    lon: f64,
}

impl LatLon {
    /// Validates and builds a coordinate.
    pub fn new(lat: f64, lon: f64) -> Result<Self, CoordError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(CoordError::Latitude(lat));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(CoordError::Longitude(lon));
        }
        Ok(Self { lat, lon })
    }

    /// Latitude in degrees.
    pub fn lat(&self) -> f64 {
        self.lat
    }

    /// Longitude in degrees.
    pub fn lon(&self) -> f64 {
        self.lon
    }

    /// Great-circle distance to `other` in kilometres (haversine, R = 6371 km).
    pub fn distance_km(&self, other: &Self) -> f64 {
        haversine_km(*self, *other)
    }

    /// The point as a unit vector in Earth-centred coordinates. Chord length between unit vectors
    /// ranks points exactly as great-circle distance does, with no special case at the poles or
    /// the antimeridian.
    pub fn to_unit_vector(&self) -> [f64; 3] {
        let (lat, lon) = (self.lat.to_radians(), self.lon.to_radians());
        let (slat, clat) = lat.sin_cos();
        let (slon, clon) = lon.sin_cos();
        [clat * clon, clat * slon, slat]
    }
}

impl fmt::Debug for LatLon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.lat, self.lon)
    }
}

impl fmt::Display for LatLon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.lat, self.lon)
    }
}

/// Haversine great-circle distance in kilometres with the upstream DME's Earth radius. The
/// formula and operation order follow the upstream implementation so distances reproduce to
/// floating-point noise.
pub fn haversine_km(a: LatLon, b: LatLon) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = (b.lat - a.lat).to_radians();
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_out_of_range_and_non_finite() {
        assert_eq!(LatLon::new(90.1, 0.0), Err(CoordError::Latitude(90.1)));
        assert_eq!(LatLon::new(0.0, -180.5), Err(CoordError::Longitude(-180.5)));
        assert!(LatLon::new(f64::NAN, 0.0).is_err());
        assert!(LatLon::new(0.0, f64::INFINITY).is_err());
        assert!(LatLon::new(90.0, 180.0).is_ok());
        assert!(LatLon::new(-90.0, -180.0).is_ok());
    }

    #[test]
    fn haversine_known_distance() {
        // Paris -> London, a well-known ~343.5 km great-circle distance on R = 6371 km.
        let paris = LatLon::new(48.8566, 2.3522).unwrap();
        let london = LatLon::new(51.5074, -0.1278).unwrap();
        let d = paris.distance_km(&london);
        assert!((d - 343.556).abs() < 0.01, "{d}");
        assert_eq!(paris.distance_km(&paris), 0.0);
    }
}
