//! Tests for the cities fixture and its CSV parser.

use super::*;

const HEAD: &str = "geonameid,name,country,admin1,lat,lon,population,timezone\n";

fn parse_err(body: &str) -> (usize, RowError) {
    match parse_cities(&format!("{HEAD}{body}")) {
        Err(CitiesError::Parse { line, problem }) => (line, problem),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn bundled_file_has_the_world() {
    let cities = load_cities(bundled_cities_path()).unwrap();
    assert!(cities.len() > 30_000, "{} cities", cities.len());
    // The copy compiled into the binaries is the same file.
    assert_eq!(bundled_cities().unwrap(), cities);

    let find = |name: &str, country: &str| {
        cities
            .iter()
            .find(|c| c.name == name && c.country == country)
            .unwrap_or_else(|| panic!("{name}, {country} missing"))
    };
    let tokyo = find("Tokyo", "JP");
    assert!((tokyo.location.lat() - 35.69).abs() < 0.1, "{tokyo:?}");
    assert!((tokyo.location.lon() - 139.69).abs() < 0.1, "{tokyo:?}");
    assert!(tokyo.population > 5_000_000);
    let shanghai = find("Shanghai", "CN");
    assert!(
        (shanghai.location.lat() - 31.22).abs() < 0.1,
        "{shanghai:?}"
    );
    assert!(
        (shanghai.location.lon() - 121.46).abs() < 0.1,
        "{shanghai:?}"
    );

    // The generator quotes names with commas; they must come back whole.
    find("Misato, Saitama", "JP");
    assert!(
        cities
            .windows(2)
            .all(|w| w[0].population >= w[1].population)
    );
}

#[test]
fn parses_quoted_fields_and_crlf() {
    let text = format!(
        "{}\r\n1,\"Misato, Saitama\",JP,34,35.8,139.9,142145,Asia/Tokyo\r\n\
         2,\"The \"\"Big\"\" One\",US,NY,40.7,-74.0,8000000,America/New_York\r\n\
         \r\n\
         3,Plain,FR,11,48.85,2.35,0,Europe/Paris\r\n",
        HEAD.trim_end()
    );
    let cities = parse_cities(&text).unwrap();
    let names: Vec<&str> = cities.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Misato, Saitama", "The \"Big\" One", "Plain"]);
    assert_eq!(cities[1].geoname_id, 2);
    assert_eq!(cities[1].location, LatLon::new(40.7, -74.0).unwrap());
    assert_eq!(cities[1].population, 8_000_000);
}

#[test]
fn header_only_is_an_empty_list() {
    assert_eq!(parse_cities(HEAD).unwrap(), []);
}

#[test]
fn errors_name_the_line() {
    let good = "1,A,FR,11,48.85,2.35,10,Europe/Paris\n";
    assert_eq!(
        parse_err(&format!("{good}{good}2,B,FR,11,48.85,2.35,Europe/Paris\n")),
        (4, RowError::FieldCount { found: 7 })
    );
    assert_eq!(
        parse_err(&format!("{good}2,B,FR,11,91.5,2.35,10,Europe/Paris\n")),
        (3, RowError::Coordinate(CoordError::Latitude(91.5)))
    );
    assert!(matches!(
        parse_err("x,B,FR,11,48.85,2.35,10,Europe/Paris\n"),
        (
            2,
            RowError::Number {
                field: "geonameid",
                ..
            }
        )
    ));
    assert!(matches!(
        parse_err("2,B,FR,11,48.85,east,10,Europe/Paris\n"),
        (2, RowError::Number { field: "lon", .. })
    ));
    assert_eq!(
        parse_err("2,\"B,FR,11,48.85,2.35,10,Europe/Paris\n"),
        (2, RowError::UnterminatedQuote)
    );
    assert_eq!(
        parse_err("2,\"B\"x,FR,11,48.85,2.35,10,Europe/Paris\n"),
        (2, RowError::TextAfterQuote)
    );
    assert_eq!(
        parse_err("2,B\"x,FR,11,48.85,2.35,10,Europe/Paris\n"),
        (2, RowError::StrayQuote)
    );
    assert_eq!(
        parse_err("2,,FR,11,48.85,2.35,10,Europe/Paris\n"),
        (2, RowError::EmptyField { field: "name" })
    );

    let message = parse_cities(&format!("{HEAD}{good}2,B\n"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("line 3"), "{message}");
}

#[test]
fn bad_header_and_empty_input_are_line_one() {
    assert!(matches!(
        parse_cities("id,name\n1,A\n"),
        Err(CitiesError::Parse { line: 1, problem: RowError::Header(h) }) if h == "id,name"
    ));
    assert!(matches!(
        parse_cities(""),
        Err(CitiesError::Parse {
            line: 1,
            problem: RowError::Empty
        })
    ));
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.csv");
    let message = load_cities(&missing).unwrap_err().to_string();
    assert!(message.contains("nope.csv"), "{message}");

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!("{HEAD}1,A,FR,11,48.85,2.35,ten,Europe/Paris\n"),
    )
    .unwrap();
    let err = load_cities(&bad).unwrap_err();
    assert!(
        matches!(err, CitiesError::ParseFile { line: 2, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("bad.csv") && message.contains("line 2"),
        "{message}"
    );
}
