//! Table tests of the line protocol encoding, hostile names included.

use super::*;

const T: i64 = 1_700_000_000_000;

fn line(p: &Point) -> String {
    let mut out = String::new();
    encode(p, &mut out).unwrap();
    out
}

#[test]
fn encodes_every_field_kind_with_tags_sorted_by_key() {
    let p = Point::new("appinst-connections", T)
        .tag("port", "443")
        .tag("app", "arena")
        .field("active", 3i64)
        .field("ratio", 0.25)
        .field("up", true)
        .field("pod", "p-1");
    assert_eq!(
        line(&p),
        "appinst-connections,app=arena,port=443 active=3i,pod=\"p-1\",ratio=0.25,up=true \
         1700000000000\n"
    );
}

#[test]
fn escapes_names_by_position() {
    // (measurement, tag key, tag value, field key, expected line)
    let table: &[(&str, &str, &str, &str, &str)] = &[
        ("m", "k", "v", "f", "m,k=v f=1i"),
        ("m,1 x=y", "k", "v", "f", r"m\,1\ x=y,k=v f=1i"),
        ("m", "k ,=", "v", "f", r"m,k\ \,\==v f=1i"),
        ("m", "k", "a,b c=d", "f", r"m,k=a\,b\ c\=d f=1i"),
        ("m", "k", "v", "f 1=,", r"m,k=v f\ 1\=\,=1i"),
        ("m", "k", r#""quoted""#, "f", r#"m,k="quoted" f=1i"#),
        ("m", "k", "tab\there", "f", "m,k=tab\there f=1i"),
        ("m", "k", "ü→😀", "f", "m,k=ü→😀 f=1i"),
        // Line breaks would end the line: they become escaped spaces.
        ("m\nx", "k", "a\r\nb", "f", r"m\ x,k=a\ \ b f=1i"),
        // A backslash before a plain character reads back as itself...
        ("m", "k", r"a\b", "f", r"m,k=a\b f=1i"),
        ("m", "k", r"a\\b", "f", r"m,k=a\\b f=1i"),
        // ... but 1.x cannot carry one before an escaped character or at the end.
        ("m", "k", r"end\", "f", "m,k=end/ f=1i"),
        ("m", "k", r"a\,b", "f", r"m,k=a/\,b f=1i"),
        ("m", "k", r"a\ b", "f", r"m,k=a/\ b f=1i"),
        ("m", "k", r"a\\", "f", r"m,k=a\/ f=1i"),
        (r"m\", "k", "v", r"f\=", r"m/,k=v f/\==1i"),
        // `=` is not special in a measurement name.
        ("a=b", "k", "v", "f", "a=b,k=v f=1i"),
    ];
    for (m, k, v, f, want) in table {
        let p = Point::new(*m, 0).tag(*k, *v).field(*f, 1i64);
        assert_eq!(line(&p), format!("{want} 0\n"), "{m:?} {k:?} {v:?} {f:?}");
    }
}

#[test]
fn escapes_string_values() {
    let table: &[(&str, &str)] = &[
        ("plain", r#""plain""#),
        (r#"q"u\o"#, r#""q\"u\\o""#),
        (r"end\", r#""end\\""#),
        ("a,b c=d", r#""a,b c=d""#),
        ("two\nlines", "\"two\nlines\""),
        ("", r#""""#),
    ];
    for (v, want) in table {
        let p = Point::new("m", 1).field("s", *v);
        assert_eq!(line(&p), format!("m s={want} 1\n"), "{v:?}");
    }
}

#[test]
fn formats_numbers_so_they_read_back_exactly() {
    let table: &[(FieldValue, &str)] = &[
        (FieldValue::Float(1.0), "1.0"),
        (FieldValue::Float(-0.5), "-0.5"),
        (FieldValue::Float(1e300), "1e300"),
        (FieldValue::Float(1.5e-9), "1.5e-9"),
        (FieldValue::Integer(-7), "-7i"),
        (u64::MAX.into(), "9223372036854775807i"),
        (FieldValue::Bool(false), "false"),
    ];
    for (v, want) in table {
        let p = Point::new("m", 1).field("v", v.clone());
        assert_eq!(line(&p), format!("m v={want} 1\n"));
    }
}

#[test]
fn leaves_out_what_influxdb_would_refuse() {
    let p = Point::new("m", 5)
        .tag("empty", "")
        .tag("", "nokey")
        .tag("k", "v")
        .field("nan", f64::NAN)
        .field("inf", f64::INFINITY)
        .field("", 1i64)
        .field("ok", 2i64);
    assert_eq!(line(&p), "m,k=v ok=2i 5\n");
}

#[test]
fn refuses_points_influxdb_cannot_store_and_writes_nothing_for_them() {
    let table: &[(Point, LineError)] = &[
        (
            Point::new("", 1).field("v", 1i64),
            LineError::EmptyMeasurement,
        ),
        (
            Point::new("#c", 1).field("v", 1i64),
            LineError::CommentMeasurement("#c".into()),
        ),
        (Point::new("m", 1), LineError::NoFields("m".into())),
        (
            Point::new("m", 1).field("nan", f64::NAN),
            LineError::NoFields("m".into()),
        ),
        (
            Point::new("m", 1).tag("time", "x").field("v", 1i64),
            LineError::ReservedKey {
                measurement: "m".into(),
            },
        ),
        (
            Point::new("m", 1).field("time", 1i64),
            LineError::ReservedKey {
                measurement: "m".into(),
            },
        ),
    ];
    for (p, want) in table {
        let mut out = String::from("before\n");
        assert_eq!(encode(p, &mut out).as_ref(), Err(want), "{p:?}");
        assert_eq!(out, "before\n");
    }
}

#[test]
fn encode_all_writes_the_good_points_and_returns_the_errors() {
    let points = [
        Point::new("a", 1).field("v", 1i64),
        Point::new("", 1).field("v", 1i64),
        Point::new("b", 2).field("v", 2i64),
    ];
    let mut out = String::new();
    let (ok, errors) = encode_all(&points, &mut out);
    assert_eq!((ok, errors), (2, vec![LineError::EmptyMeasurement]));
    assert_eq!(out, "a v=1i 1\nb v=2i 2\n");
}

#[test]
fn field_values_as_numbers() {
    assert_eq!(FieldValue::Integer(3).as_f64(), Some(3.0));
    assert_eq!(FieldValue::Bool(true).as_f64(), Some(1.0));
    assert_eq!(FieldValue::Float(f64::NAN).as_f64(), None);
    assert_eq!(FieldValue::from("x").as_f64(), None);
}
