//! Small validation helpers shared by the converters: lines from spans, non-empty strings, enum
//! names, duplicate detection.

use std::collections::HashMap;
use std::fmt::Display;
use std::hash::Hash;
use std::str::FromStr;

use serde_saphyr::Location;

use super::raw::S;
use super::{DocumentError, ErrorKind};
use crate::enums::ParseEnumError;

/// The 1-based line of a span; `None` when serde-saphyr could not record one.
pub(super) fn line(location: &Location) -> Option<usize> {
    usize::try_from(location.line()).ok().filter(|l| *l > 0)
}

/// The line a spanned value starts on.
pub(super) fn line_of<T>(spanned: &S<T>) -> Option<usize> {
    line(&spanned.referenced)
}

/// Rejects an empty (or blank) string.
pub(super) fn non_empty(value: &str, path: &str, at: Option<usize>) -> Result<(), DocumentError> {
    if value.trim().is_empty() {
        return Err(DocumentError::at(path, at, ErrorKind::Empty));
    }
    Ok(())
}

/// Parses an enum name, reporting the field's path and line on failure.
pub(super) fn parse_enum<T>(raw: &S<String>, path: &str) -> Result<T, DocumentError>
where
    T: FromStr<Err = ParseEnumError>,
{
    raw.value
        .parse()
        .map_err(|e: ParseEnumError| DocumentError::at(path, line_of(raw), e.into()))
}

/// Parses an optional enum name, with a default when absent.
pub(super) fn enum_or<T>(
    raw: Option<&S<String>>,
    path: &str,
    default: T,
) -> Result<T, DocumentError>
where
    T: FromStr<Err = ParseEnumError>,
{
    raw.map_or(Ok(default), |r| parse_enum(r, path))
}

/// A finite, non-negative number (distances), or the default when absent.
pub(super) fn non_negative(
    raw: Option<&S<f64>>,
    path: &str,
    default: f64,
) -> Result<f64, DocumentError> {
    match raw {
        None => Ok(default),
        Some(v) if v.value.is_finite() && v.value >= 0.0 => Ok(v.value),
        Some(v) => Err(DocumentError::at(
            path,
            line_of(v),
            ErrorKind::Invalid(format!("{} must be a finite number >= 0", v.value)),
        )),
    }
}

/// Whether `text` is one DNS label as names are built from it (letters, digits, `-`).
pub(super) fn is_label(text: &str) -> bool {
    !text.is_empty() && crate::naming::dns_sanitize(text) == text.to_ascii_lowercase()
}

/// Remembers where each key was first defined, to reject duplicates with both lines.
pub(super) struct Seen<K> {
    what: &'static str,
    first: HashMap<K, usize>,
}

impl<K: Hash + Eq + Display + Clone> Seen<K> {
    pub(super) fn new(what: &'static str) -> Self {
        Self {
            what,
            first: HashMap::new(),
        }
    }

    pub(super) fn insert(
        &mut self,
        key: &K,
        path: &str,
        at: Option<usize>,
    ) -> Result<(), DocumentError> {
        if let Some(&first_line) = self.first.get(key) {
            let kind = ErrorKind::Duplicate {
                what: self.what,
                key: key.to_string(),
                first_line,
            };
            return Err(DocumentError::at(path, at, kind));
        }
        self.first.insert(key.clone(), at.unwrap_or(0));
        Ok(())
    }
}
