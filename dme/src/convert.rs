//! Conversions between domain types and the generated wire types, at the edge only. The
//! conversions themselves live in `dme-api`; what is here maps a refused value to the DME's
//! [`ApiError`].

use geodata::LatLon;

pub use dme_api::convert::{app_port, loc, unmapped_port};

use crate::error::ApiError;
use crate::proto;

/// A request's client location, validated (see [`dme_api::convert::lat_lon`]); `missing` is the
/// message when it is absent.
pub fn client_location(loc: Option<&proto::Loc>, missing: &str) -> Result<LatLon, ApiError> {
    let loc = loc.ok_or_else(|| ApiError::invalid(missing))?;
    dme_api::convert::lat_lon(loc)
        .map_err(|e| ApiError::invalid(format!("Invalid GpsLocation: {e}")))
}
