//! Edgeplane's object model: the domain types shared by the DME, the controller, the root load
//! balancer and `edgectl` (keys, cloudlets, apps, cluster and app instances, operator codes,
//! settings), the access-ports grammar, and the deployment document (YAML/JSON) that carries them.
//!
//! Owns: validation of objects and of whole documents (references resolve, values in range,
//! nothing half-applied). Does not own: any I/O beyond reading a document from a path, any wire
//! (protobuf) types, any runtime state.

pub mod document;
pub mod ports;
mod types;

pub use document::{Deployment, DocumentError};
pub use ports::{AppPort, LProto, PortsError};
pub use types::*;
