//! Geographic primitives for Edgeplane: [`LatLon`] (a coordinate that cannot be invalid),
//! haversine distance, a spatial index of sites generic over its payload, GeoIP lookup and the
//! world-cities fixture.
//!
//! Owns: geometry and geographic data access. Does not own: anything about apps, carriers or
//! matching rules (the DME builds those on top), and no network I/O.
//!
//! # Layout
//! - `latlon`: [`LatLon`], [`haversine_km`] and the unit-vector form used by the index.
//! - `index`: [`SiteIndex`], an immutable R-tree over unit vectors; nearest-first iteration with
//!   great-circle distances in km.
//! - `geoip`: [`GeoIp`], IP → location from a MaxMind DB file, in either the GeoIP2-City layout
//!   or the flat DB-IP city layout.
//! - `cities`: [`City`] and [`load_cities`] for the bundled GeoNames cities fixture
//!   (`data/cities15000.csv`, CC-BY 4.0, see `data/ATTRIBUTION.md`).

mod cities;
mod geoip;
mod index;
mod latlon;

pub use cities::{
    BUNDLED_CITIES, CitiesError, City, RowError, bundled_cities, bundled_cities_path, load_cities,
    parse_cities,
};
pub use geoip::{GeoIp, GeoIpError, GeoIpHit};
pub use index::SiteIndex;
pub use latlon::{CoordError, EARTH_RADIUS_KM, LatLon, haversine_km};
