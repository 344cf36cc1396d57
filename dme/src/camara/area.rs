//! Location verification's geometry, free of I/O: does the device's network location (a circle
//! of uncertainty) lie in the area a client names (a circle or a polygon)? `TRUE` if wholly
//! inside, `FALSE` if wholly outside, else `PARTIAL` with the match rate |R∩N|/|N| in percent
//! (1-99), as Location Verification 3.0 defines it.
//!
//! Circles against circles are exact on the sphere's great-circle distance (the lens area of
//! two discs). Polygons go through the `geo` crate in a local plane centred on the device
//! (equirectangular metres): exact enough for areas of city to country size; a polygon must not
//! cross the antimeridian or a pole.

use std::f64::consts::PI;

use geo::{Area as _, BooleanOps, Contains, Coord, Intersects, LineString, Polygon, Validation};
use geodata::LatLon;

use super::locator::Fix;

const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Vertices of the polygon standing for the device's circle against a polygon area.
const CIRCLE_VERTICES: usize = 128;

/// An area to verify against.
#[derive(Clone, Debug, PartialEq)]
pub enum Area {
    Circle {
        center: LatLon,
        radius_m: f64,
    },
    /// Vertices in order, not closed (3-15 of them).
    Polygon(Vec<LatLon>),
}

/// The verification result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    True,
    False,
    /// Match rate, 1-99.
    Partial(u8),
}

/// Why an area cannot be verified against (422 INVALID_AREA).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidArea(pub String);

/// Verifies `fix` against `area`.
pub fn verify(area: &Area, fix: &Fix) -> Result<Verdict, InvalidArea> {
    match area {
        Area::Circle { center, radius_m } => Ok(circles(fix, *center, *radius_m)),
        Area::Polygon(points) => polygon(fix, points),
    }
}

fn rate(fraction: f64) -> Verdict {
    // Rounded, but never to 0 or 100: those would be FALSE or TRUE.
    let pct = (fraction * 100.0).round().clamp(1.0, 99.0);
    Verdict::Partial(pct as u8)
}

fn circles(fix: &Fix, center: LatLon, r2: f64) -> Verdict {
    let d = fix.center.distance_km(&center) * 1000.0;
    let r1 = fix.radius_m;
    if d + r1 <= r2 {
        return Verdict::True;
    }
    if d >= r1 + r2 {
        return Verdict::False;
    }
    if d + r2 <= r1 {
        // The area lies inside the device's circle.
        return rate((r2 * r2) / (r1 * r1));
    }
    rate(lens_area(d, r1, r2) / (PI * r1 * r1))
}

/// The area shared by two discs of radii `r1`, `r2` whose centres are `d` apart (partial
/// overlap).
fn lens_area(d: f64, r1: f64, r2: f64) -> f64 {
    let a1 = ((d * d + r1 * r1 - r2 * r2) / (2.0 * d * r1))
        .clamp(-1.0, 1.0)
        .acos();
    let a2 = ((d * d + r2 * r2 - r1 * r1) / (2.0 * d * r2))
        .clamp(-1.0, 1.0)
        .acos();
    let k = ((-d + r1 + r2) * (d + r1 - r2) * (d - r1 + r2) * (d + r1 + r2)).max(0.0);
    r1 * r1 * a1 + r2 * r2 * a2 - 0.5 * k.sqrt()
}

/// Metres east and north of `origin`.
fn project(origin: LatLon, p: LatLon) -> Coord<f64> {
    let mut dlon = p.lon() - origin.lon();
    if dlon > 180.0 {
        dlon -= 360.0;
    } else if dlon < -180.0 {
        dlon += 360.0;
    }
    Coord {
        x: EARTH_RADIUS_M * dlon.to_radians() * origin.lat().to_radians().cos(),
        y: EARTH_RADIUS_M * (p.lat() - origin.lat()).to_radians(),
    }
}

fn polygon(fix: &Fix, points: &[LatLon]) -> Result<Verdict, InvalidArea> {
    let ring: Vec<Coord<f64>> = points.iter().map(|&p| project(fix.center, p)).collect();
    let area = Polygon::new(LineString::new(ring), vec![]);
    if area.unsigned_area() <= 0.0 {
        return Err(InvalidArea("the polygon encloses no area".into()));
    }
    if !area.is_valid() {
        return Err(InvalidArea(
            "the polygon's boundary crosses itself or repeats a point".into(),
        ));
    }
    let r = fix.radius_m;
    let disc: Vec<Coord<f64>> = (0..CIRCLE_VERTICES)
        .map(|i| {
            let t = 2.0 * PI * i as f64 / CIRCLE_VERTICES as f64;
            Coord {
                x: r * t.cos(),
                y: r * t.sin(),
            }
        })
        .collect();
    let device = Polygon::new(LineString::new(disc), vec![]);
    if area.contains(&device) {
        return Ok(Verdict::True);
    }
    if !area.intersects(&device) {
        return Ok(Verdict::False);
    }
    let shared = area.intersection(&device).unsigned_area();
    Ok(rate(shared / device.unsigned_area()))
}

#[cfg(test)]
mod tests;
