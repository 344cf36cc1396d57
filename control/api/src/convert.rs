//! Conversions between the generated wire types ([`crate::pb`]) and the domain types
//! ([`edge_model`]): `TryFrom<pb::X> for X` validates (keys non-empty, enums known, coordinates
//! in range, access ports through the grammar) and `From<&X> for pb::X` cannot fail.
//!
//! Errors name the field path from the message's own snake_case name, e.g.
//! `app_inst.cloudlet.organization: must not be empty`; inside an [`crate::pb::Object`] the path starts
//! with the oneof field, which is the same name. Paths are built only on error, so successful
//! conversions allocate nothing beyond the converted values.

mod apps;
mod enums;
mod keys;
mod objects;
#[cfg(test)]
pub(crate) mod tests;

pub(crate) use enums::object_kind;
pub use enums::{kind_filter, kind_to_wire};
pub(crate) use keys::cloudlet_key;

use edge_model::PortsError;
use geodata::CoordError;

/// A wire message that does not make a valid domain value.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{path}{}{kind}", if .path.is_empty() { "" } else { ": " })]
pub struct ConvertError {
    /// Dotted field path, e.g. `app_inst.mapped_ports[1].proto`.
    pub path: String,
    pub kind: ConvertErrorKind,
}

/// Why a field was rejected.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertErrorKind {
    #[error("must not be empty")]
    Empty,
    #[error("is required")]
    Missing,
    #[error("must be specified (0 is not a valid {0})")]
    Unspecified(&'static str),
    #[error("unknown {what} value {value}")]
    UnknownEnum { what: &'static str, value: i32 },
    #[error(transparent)]
    Coord(#[from] CoordError),
    #[error(transparent)]
    Ports(#[from] PortsError),
    #[error("{0}")]
    Invalid(String),
}

impl ConvertError {
    pub fn new(field: impl Into<String>, kind: ConvertErrorKind) -> Self {
        Self {
            path: field.into(),
            kind,
        }
    }

    /// The same error seen from the enclosing message: `prefix.path`.
    #[must_use]
    pub fn within(mut self, prefix: &str) -> Self {
        self.path = if self.path.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{}", self.path)
        };
        self
    }
}

/// Prefixes the error path of a nested conversion (only on the error path).
pub(crate) trait Within<T> {
    fn within(self, prefix: &str) -> Result<T, ConvertError>;
}

impl<T> Within<T> for Result<T, ConvertError> {
    fn within(self, prefix: &str) -> Result<T, ConvertError> {
        self.map_err(|e| e.within(prefix))
    }
}

pub(crate) fn non_empty(s: String, field: &str) -> Result<String, ConvertError> {
    if s.is_empty() {
        Err(ConvertError::new(field, ConvertErrorKind::Empty))
    } else {
        Ok(s)
    }
}

pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, ConvertError> {
    value.ok_or_else(|| ConvertError::new(field, ConvertErrorKind::Missing))
}

/// A list whose entries must be non-empty, e.g. organizations.
pub(crate) fn non_empty_list(list: Vec<String>, field: &str) -> Result<Vec<String>, ConvertError> {
    if let Some(i) = list.iter().position(String::is_empty) {
        return Err(ConvertError::new(
            format!("{field}[{i}]"),
            ConvertErrorKind::Empty,
        ));
    }
    Ok(list)
}

/// proto3 cannot tell an empty string from an absent one; empty means "none".
pub(crate) fn optional(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A wire enum number through the domain enum's `from_wire`.
pub(crate) fn wire_enum<T>(
    value: i32,
    field: &str,
    what: &'static str,
    from_wire: fn(i32) -> Option<T>,
) -> Result<T, ConvertError> {
    from_wire(value)
        .ok_or_else(|| ConvertError::new(field, ConvertErrorKind::UnknownEnum { what, value }))
}
