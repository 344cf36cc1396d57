//! Edgeplane's object model: the domain types shared by the DME, the controller, the root load
//! balancer and `edgectl` (keys, cloudlets, apps, cluster and app instances, operator codes,
//! settings), the access-ports grammar, and the deployment document (YAML/JSON) that carries them.
//!
//! Owns: validation of objects and of whole documents (references resolve, values in range,
//! nothing half-applied). Does not own: any I/O beyond reading a document from a path, any wire
//! (protobuf) types, any runtime state.
//!
//! # Layout
//!
//! - `types`: the domain types (re-exported at the root); enum discriminants are wire values.
//! - [`enums`]: short and wire names of those enums (`as_str`, `wire_name`, `FromStr`,
//!   `from_wire`).
//! - [`ports`]: the access-ports grammar (`tcp:80,udp:10002:maxpktsize=1500`).
//! - [`naming`]: DNS labels and FQDNs of cloudlets, clusters and apps.
//! - [`object`]: `ObjectKind`, `Object`, `ObjectKey` and the store-key string form of keys.
//! - [`document`]: the deployment document — parse, validate, print.

pub mod camara_id;
pub mod document;
pub mod enums;
pub mod naming;
pub mod object;
pub mod ports;
mod types;

pub use document::{Deployment, DocumentError, ErrorKind};
pub use enums::ParseEnumError;
pub use object::{KeyError, KeyErrorKind, Object, ObjectKey, ObjectKind};
pub use ports::{
    AppPort, LProto, PortsError, PortsErrorKind, format_access_ports, parse_access_ports,
};
pub use types::*;
