//! Reading request bodies against the specs' schemas: a JSON value walked by hand rather than
//! decoded with serde, because the schemas' rules (no `null` where a type is given, integers
//! that are JSON integers, `minProperties`, `anyOf` of required sets, ranges) must each be a
//! 400 naming the field, and serde's defaults would accept some of what they forbid.

use serde_json::{Map, Value};

use super::error::CamaraError;

pub type Obj = Map<String, Value>;

/// The body as a JSON object.
pub fn body(bytes: &[u8]) -> Result<Obj, CamaraError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(CamaraError::invalid(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(CamaraError::invalid(format!(
            "the request body is not JSON: {e}"
        ))),
    }
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
