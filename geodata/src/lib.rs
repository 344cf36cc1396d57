//! Geographic primitives for Edgeplane: [`LatLon`] (a coordinate that cannot be invalid),
//! haversine distance, a spatial index of sites generic over its payload, GeoIP lookup and the
//! world-cities fixture.
//!
//! Owns: geometry and geographic data access. Does not own: anything about apps, carriers or
//! matching rules (the DME builds those on top), and no network I/O.

mod latlon;

pub use latlon::{CoordError, EARTH_RADIUS_KM, LatLon, haversine_km};
