//! Load generation for the DME: an HDR-histogram load engine ([`engine`]), gRPC and REST
//! callers for RegisterClient and FindCloudlet ([`callers`]), and a transport floor
//! ([`floor`]): the same messages on the same server stack, answered without any work.
//!
//! The `dme-load` binary ties them together; see `benches/README.md` for how to run it. [`edge`]
//! holds the pieces of `edge-load` (the edge-events stream); see `loadtests/README.md`.

pub mod callers;
pub mod clients;
pub mod edge;
pub mod engine;
pub mod floor;
pub mod report;
pub mod stacks;
