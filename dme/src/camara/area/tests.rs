use super::*;

fn ll(lat: f64, lon: f64) -> LatLon {
    LatLon::new(lat, lon).unwrap()
}

fn fix(lat: f64, lon: f64, radius_m: f64) -> Fix {
    Fix {
        center: ll(lat, lon),
        radius_m,
        at: 0,
    }
}

/// Metres per degree of latitude.
const M_PER_DEG: f64 = EARTH_RADIUS_M * PI / 180.0;

#[test]
fn circle_inside_outside_and_partial() {
    let dev = fix(52.52, 13.405, 500.0);
    let around = |r| Area::Circle {
        center: ll(52.52, 13.405),
        radius_m: r,
    };
    assert_eq!(verify(&around(2000.0), &dev), Ok(Verdict::True));
    assert_eq!(verify(&around(500.0), &dev), Ok(Verdict::True));
    // A circle 10 km north does not reach the device.
    let far = Area::Circle {
        center: ll(52.52 + 10_000.0 / M_PER_DEG, 13.405),
        radius_m: 2000.0,
    };
    assert_eq!(verify(&far, &dev), Ok(Verdict::False));
    // A small area inside the device's circle: (100/500)^2 = 4 %.
    assert_eq!(verify(&around(100.0), &dev), Ok(Verdict::Partial(4)));
    // Two equal circles whose centres are one radius apart share 39.1 % of each.
    let shifted = Area::Circle {
        center: ll(52.52 + 500.0 / M_PER_DEG, 13.405),
        radius_m: 500.0,
    };
    assert_eq!(verify(&shifted, &dev), Ok(Verdict::Partial(39)));
}

/// A square of side `side_m` centred `north_m` north of (52.52, 13.405).
fn square(north_m: f64, side_m: f64) -> Area {
    let lat0 = 52.52 + north_m / M_PER_DEG;
    let dlat = side_m / 2.0 / M_PER_DEG;
    let dlon = side_m / 2.0 / (M_PER_DEG * 52.52f64.to_radians().cos());
    Area::Polygon(vec![
        ll(lat0 - dlat, 13.405 - dlon),
        ll(lat0 - dlat, 13.405 + dlon),
        ll(lat0 + dlat, 13.405 + dlon),
        ll(lat0 + dlat, 13.405 - dlon),
    ])
}

#[test]
fn polygons_inside_outside_and_half() {
    let dev = fix(52.52, 13.405, 500.0);
    assert_eq!(verify(&square(0.0, 5000.0), &dev), Ok(Verdict::True));
    assert_eq!(verify(&square(20_000.0, 5000.0), &dev), Ok(Verdict::False));
    // A big square whose southern edge runs through the device's centre covers half of it.
    assert_eq!(
        verify(&square(2500.0, 5000.0), &dev),
        Ok(Verdict::Partial(50))
    );
}

#[test]
fn degenerate_polygons_are_invalid_areas() {
    let dev = fix(52.52, 13.405, 500.0);
    let line = Area::Polygon(vec![ll(52.0, 13.0), ll(52.1, 13.0), ll(52.2, 13.0)]);
    assert!(verify(&line, &dev).is_err());
    // A bow tie crosses itself.
    let bow = Area::Polygon(vec![
        ll(52.0, 13.0),
        ll(52.1, 13.1),
        ll(52.1, 13.0),
        ll(52.0, 13.1),
    ]);
    assert!(verify(&bow, &dev).is_err());
}
