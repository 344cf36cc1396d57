//! Reading request bodies against the specs' schemas: a JSON value walked by hand rather than
//! decoded with serde, because the schemas' rules (no `null` where a type is given, integers
//! that are JSON integers, `minProperties`, `anyOf` of required sets, ranges) must each be a
//! 400 naming the field, and serde's defaults would accept some of what they forbid.

use serde_json::{Map, Value};

use super::error::CamaraError;

pub type Obj = Map<String, Value>;

/// The body as a JSON object. A top-level integer too large for 64 bits (the schemas' integers
/// have no bound) is kept as the nearest 64-bit one instead of becoming a float: every use
/// here saturates (an age or a surface beyond 2^63 means "any").
pub fn body(bytes: &[u8]) -> Result<Obj, CamaraError> {
    let mut m = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(CamaraError::invalid(
                "the request body must be a JSON object",
            ));
        }
        Err(e) => {
            return Err(CamaraError::invalid(format!(
                "the request body is not JSON: {e}"
            )));
        }
    };
    let big = |v: &Value| matches!(v, Value::Number(n) if n.is_f64());
    if m.values().any(big) {
        // Only then: the raw text tells an integer literal from a float.
        let raw: std::collections::HashMap<String, &serde_json::value::RawValue> =
            serde_json::from_slice(bytes).unwrap_or_default();
        for (k, v) in &mut m {
            if big(v)
                && let Some(n) = raw.get(k).and_then(|r| big_integer(r.get()))
            {
                *v = Value::from(n);
            }
        }
    }
    Ok(m)
}

/// A JSON integer literal (no fraction, no exponent) beyond 64 bits, saturated.
fn big_integer(text: &str) -> Option<i64> {
    let t = text.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(if t.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong(field: &str, want: &str, v: &Value) -> CamaraError {
    CamaraError::invalid(format!("{field} must be {want}, not {}", kind(v)))
}

/// An optional object member.
pub fn opt_obj<'a>(m: &'a Obj, key: &str, field: &str) -> Result<Option<&'a Obj>, CamaraError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(v) => Err(wrong(field, "an object", v)),
    }
}

/// An optional string member.
pub fn opt_str<'a>(m: &'a Obj, key: &str, field: &str) -> Result<Option<&'a str>, CamaraError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong(field, "a string", v)),
    }
}

/// An optional integer member (a JSON integer: `1.0` is a number, not an integer).
pub fn opt_int(m: &Obj, key: &str, field: &str) -> Result<Option<i64>, CamaraError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        // Above i64::MAX but within u64: saturate like larger ones.
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(i64::MAX)),
        Some(v) => Err(wrong(field, "an integer", v)),
    }
}

/// A required number member within `[min, max]`.
pub fn number(m: &Obj, key: &str, field: &str, min: f64, max: f64) -> Result<f64, CamaraError> {
    match m.get(key) {
        None => Err(CamaraError::invalid(format!("{field} is required"))),
        Some(Value::Number(n)) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if x.is_finite() && x >= min && x <= max {
                Ok(x)
            } else {
                Err(CamaraError::invalid(format!(
                    "{field} must be between {min} and {max}"
                )))
            }
        }
        Some(v) => Err(wrong(field, "a number", v)),
    }
}

/// A required object member.
pub fn req_obj<'a>(m: &'a Obj, key: &str, field: &str) -> Result<&'a Obj, CamaraError> {
    opt_obj(m, key, field)?.ok_or_else(|| CamaraError::invalid(format!("{field} is required")))
}

/// A required array member.
pub fn req_array<'a>(m: &'a Obj, key: &str, field: &str) -> Result<&'a [Value], CamaraError> {
    match m.get(key) {
        None => Err(CamaraError::invalid(format!("{field} is required"))),
        Some(Value::Array(a)) => Ok(a),
        Some(v) => Err(wrong(field, "an array", v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_any_size_stay_integers() {
        let m = body(
            br#"{"a": -13772938704263891926074529939456, "b": 100000000000000000000000,
            "c": 1e30, "d": 2.5, "e": 7}"#,
        )
        .unwrap();
        assert_eq!(opt_int(&m, "a", "a").unwrap(), Some(i64::MIN));
        assert_eq!(opt_int(&m, "b", "b").unwrap(), Some(i64::MAX));
        // An exponent or a fraction is a number, not an integer (JSON Schema draft 4).
        assert!(opt_int(&m, "c", "c").is_err());
        assert!(opt_int(&m, "d", "d").is_err());
        assert_eq!(opt_int(&m, "e", "e").unwrap(), Some(7));
    }
}
