//! InfluxDB line protocol, pure: a [`Point`] (measurement, tags, fields, millisecond timestamp)
//! and its encoding, one line per point:
//!
//! ```text
//! measurement,tag1=v1,tag2=v2 field1=1.5,field2=3i,field3="text",field4=true 1700000000000
//! ```
//!
//! Escaping (InfluxDB 1.x, checked against the Debian 1.6.7 server):
//! - measurement: `,` and space are backslash-escaped;
//! - tag keys, tag values and field keys: `,`, `=` and space are backslash-escaped;
//! - string field values: `"` and `\` are backslash-escaped (newlines are kept: 1.x reads them
//!   inside quotes);
//! - in names (everything but string values) a line break would end the line, so CR and LF
//!   become a space (escaped like one);
//! - 1.x has no escape for a backslash itself: a backslash before a character that is escaped,
//!   or at the end of a name, would swallow the separator after it. Such a backslash is
//!   written as `/`. Every other backslash is written as it is and reads back unchanged.
//!
//! What InfluxDB would refuse is left out or refused here, so one bad point never fails the
//! batch it travels in: a tag with an empty key or value is omitted (1.x: "missing tag value"),
//! a field with an empty key or a NaN/infinite float is omitted, and a point left without
//! fields, with an empty measurement, a measurement starting with `#` (a comment line) or a
//! tag or field named `time` (refused by 1.x) is an error.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One field value.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    Float(f64),
    Integer(i64),
    String(String),
    Bool(bool),
}

impl FieldValue {
    /// The value as a number (`true` = 1), `None` for strings and non-finite floats.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Float(f) => f.is_finite().then_some(*f),
            Self::Integer(i) => Some(*i as f64),
            Self::Bool(b) => Some(f64::from(u8::from(*b))),
            Self::String(_) => None,
        }
    }
}

impl From<f64> for FieldValue {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

impl From<i64> for FieldValue {
    fn from(v: i64) -> Self {
        Self::Integer(v)
    }
}

/// Counters above `i64::MAX` (never in practice) saturate rather than wrap negative.
impl From<u64> for FieldValue {
    fn from(v: u64) -> Self {
        Self::Integer(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        Self::String(v)
    }
}

impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        Self::String(v.to_owned())
    }
}

/// One point of a measurement. Tags and fields are kept sorted by key (InfluxDB's preferred
/// order, and a stable one for tests).
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    pub fields: BTreeMap<String, FieldValue>,
    /// Milliseconds since the Unix epoch (written with `precision=ms`).
    pub timestamp_ms: i64,
}

impl Point {
    pub fn new(measurement: impl Into<String>, timestamp_ms: i64) -> Self {
        Self {
            measurement: measurement.into(),
            tags: BTreeMap::new(),
            fields: BTreeMap::new(),
            timestamp_ms,
        }
    }

    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    pub fn field(mut self, key: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }
}

/// Why a point cannot be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("empty measurement name")]
    EmptyMeasurement,
    #[error("measurement {0:?} starts with '#': InfluxDB would read the line as a comment")]
    CommentMeasurement(String),
    #[error("point of {0:?} has no writable field")]
    NoFields(String),
    #[error("point of {measurement:?} has a tag or field named \"time\", which InfluxDB refuses")]
    ReservedKey { measurement: String },
}

/// Characters escaped in a measurement name.
const MEASUREMENT_SPECIAL: &[char] = &[',', ' '];
/// Characters escaped in tag keys, tag values and field keys.
const KEY_SPECIAL: &[char] = &[',', '=', ' '];

/// Appends `point` as one line (with its `\n`) to `out`; on error `out` is left as it was.
pub fn encode(point: &Point, out: &mut String) -> Result<(), LineError> {
    let start = out.len();
    let r = encode_inner(point, out);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// Encodes every point; returns how many were written and the errors of the others.
pub fn encode_all<'a>(
    points: impl IntoIterator<Item = &'a Point>,
    out: &mut String,
) -> (usize, Vec<LineError>) {
    let (mut ok, mut errors) = (0, Vec::new());
    for p in points {
        match encode(p, out) {
            Ok(()) => ok += 1,
            Err(e) => errors.push(e),
        }
    }
    (ok, errors)
}

fn encode_inner(p: &Point, out: &mut String) -> Result<(), LineError> {
    let m = &p.measurement;
    if m.is_empty() {
        return Err(LineError::EmptyMeasurement);
    }
    if m.starts_with('#') {
        return Err(LineError::CommentMeasurement(m.clone()));
    }
    let reserved = || LineError::ReservedKey {
        measurement: m.clone(),
    };
    escape_name(m, MEASUREMENT_SPECIAL, out);
    for (k, v) in p
        .tags
        .iter()
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
    {
        if k == "time" {
            return Err(reserved());
        }
        out.push(',');
        escape_name(k, KEY_SPECIAL, out);
        out.push('=');
        escape_name(v, KEY_SPECIAL, out);
    }
    let mut sep = ' ';
    for (k, v) in &p.fields {
        if k.is_empty() || matches!(v, FieldValue::Float(f) if !f.is_finite()) {
            continue;
        }
        if k == "time" {
            return Err(reserved());
        }
        out.push(sep);
        sep = ',';
        escape_name(k, KEY_SPECIAL, out);
        out.push('=');
        field_value(v, out);
    }
    if sep == ' ' {
        return Err(LineError::NoFields(m.clone()));
    }
    let _ = writeln!(out, " {}", p.timestamp_ms);
    Ok(())
}

fn field_value(v: &FieldValue, out: &mut String) {
    match v {
        // `{:?}` is the shortest form that reads back exactly, with an exponent for large and
        // small magnitudes (`1e300`), which InfluxDB accepts; `{}` would print 300 digits.
        FieldValue::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        FieldValue::Integer(i) => {
            let _ = write!(out, "{i}i");
        }
        FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        FieldValue::String(s) => {
            out.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
    }
}

/// Appends a name (measurement, tag key or value, field key) escaped per the module doc.
fn escape_name(s: &str, special: &[char], out: &mut String) {
    let unbreak = |c: char| if c == '\n' || c == '\r' { ' ' } else { c };
    let mut chars = s.chars().map(unbreak).peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let before_special = chars.peek().is_none_or(|n| special.contains(n));
            out.push(if before_special { '/' } else { '\\' });
        } else {
            if special.contains(&c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests;
