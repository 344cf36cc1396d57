//! The Distributed Matching Engine: answers "which instance of my app is nearest to me, on my
//! carrier, and healthy?" for mobile clients, over gRPC (wire-compatible with MobiledgeX and
//! EdgeXR SDKs), REST and HTTP/3, from in-memory per-app spatial indexes; and follows moving
//! clients on edge-events streams, pushing them the changes that concern them.
//!
//! Owns: the client API, session and edge-events cookies, the matching rules, the tables and
//! their atomic publication, edge-events streams. Does not own: the wire protos, generated code
//! and wire <-> domain conversions (`dme-api`, re-exported as [`proto`]), the object model and
//! deployment document (`edge-model`), geometry and GeoIP (`geodata`), or the notify protocol
//! the placement comes by (`edge-api`; a standalone DME serves a document instead).
//!
//! # Layout
//! - `tables`: immutable per-app snapshots (instances + per-carrier indexes) in a region snapshot.
//! - `matcher`: FindCloudlet's decision, free of I/O.
//! - `cookie`, `token`, `ksuid`: session JWTs and the key ring (a key per purpose), developer
//!   auth tokens, unique ids; `edge_cookie`: the compact MAC'd edge-events cookie;
//!   `session_cache` (verified session cookies) takes the cryptography off repeated requests.
//! - `edge_events`: the hub of `StreamEdgeEvent` (the registry of streams by instance, pushes
//!   of the mirror's changes, queues, statistics), below `service`; `edge_stream`: the streams
//!   (state, decisions, task), above it; `edge_client`: a test client.
//! - `service`: every RPC, transport-independent; `grpc` and `rest` are thin front ends.
//! - `api_stats`: the API counters (upstream's `dme-api`: requests, errors, found / not found,
//!   latency histogram per app and RPC), sharded relaxed atomics kept in each app's table;
//!   served by `rest` as `GET /metrics` in Prometheus text format.
//! - `camara`: the CAMARA APIs' decisions (edge discovery, location verification and
//!   retrieval) with the device located by the network; `camara_rest`: their HTTP front,
//!   merged into `rest`'s router when the DME has a CAMARA configuration.
//! - `server`: `run(Listeners, dme, shutdown)`: gRPC and REST on TCP, plaintext or TLS, and
//!   HTTP/3 beside them; `h3`: the QUIC endpoint (REST and gRPC over HTTP/3, the 0-RTT replay
//!   policy); `h3_client`: a test client; `cli`: the `dme` role.

pub mod api_stats;
#[cfg(any(test, feature = "testing"))]
pub mod baseline;
pub mod camara;
pub mod camara_rest;
pub mod cli;
pub mod convert;
pub mod cookie;
#[cfg(any(test, feature = "testing"))]
pub mod edge_client;
pub mod edge_cookie;
pub mod edge_events;
pub mod edge_stream;
pub mod error;
#[cfg(any(test, feature = "testing"))]
pub mod fixture;
pub mod grpc;
pub mod h3;
#[cfg(any(test, feature = "testing"))]
pub mod h3_client;
mod hmac_mid;
pub mod ksuid;
pub mod location;
pub mod matcher;
pub mod mirror;
pub mod ratelimit;
pub mod rest;
pub mod server;
pub mod service;
pub mod session_cache;
pub mod subscriber;
pub mod tables;
pub mod token;

/// Generated wire types (prost + pbjson serde), package `distributed_match_engine`: they live in
/// `dme-api`, re-exported so that `crate::proto::...` is the one path inside the DME.
pub use dme_api::proto;

pub use service::{Ctx, Dme, DmeConfig};
pub use tables::Tables;
