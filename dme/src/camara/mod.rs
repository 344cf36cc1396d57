//! The CAMARA APIs' decisions, free of HTTP: Simple Edge Discovery 2.0, Application Endpoint
//! Discovery 0.1, Location Verification 3.0 and Location Retrieval 0.5, answered from the same
//! tables and matcher as FindCloudlet. The HTTP front (bearer tokens, `x-correlator`, routes)
//! is `crate::camara_rest`.
//!
//! The one rule that differs from the SDK protocol: the device is located by the network
//! ([`locator`]), from an identifier (phone number, IP address), never from GPS the client
//! sends. Tokens are two-legged (client credentials): the request must name the device, else
//! 422 MISSING_IDENTIFIER.
//!
//! - `device`: the `Device` object; `json`: schema checks of request bodies;
//! - `locator`, `feed`: device → network location (static, GeoIP, operator feed);
//! - `config`: the `dme` role's flags;
//! - `area`: verification geometry; `handlers`: the four operations; `error`: ErrorInfo.

pub mod area;
pub mod config;
pub mod device;
pub mod error;
pub mod feed;
pub mod handlers;
pub mod json;
pub mod locator;

use std::sync::Arc;

use edge_auth::KeySource;

pub use error::CamaraError;
pub use locator::{DeviceLocator, Fix, LocateError};

/// What the CAMARA front needs beside the tables.
pub struct Camara {
    /// The MC's public keys, to verify access tokens.
    pub keys: Arc<KeySource>,
    /// Where devices are.
    pub locator: Arc<dyn DeviceLocator>,
    /// The operator whose network locates the devices: the carrier their discovery is matched
    /// for (its cloudlets, its alliances, public clouds padded). None: every operator's.
    pub operator: Option<String>,
}
