//! The regional controller: owns the object model (cloudlets, apps, cluster and app instances,
//! operator codes, flavors, settings) persisted in a revisioned store (embedded redb by default,
//! etcd optionally), its API (gRPC plus a REST mirror), referential integrity and lifecycle
//! states, public-port allocation on shared root LBs, and the notify stream that pushes the
//! model into the DMEs' (and later the root LBs') tables. A fake CRM completes lifecycles of
//! cloudlets on the `fake` platform.
//!
//! Does not own: persistence mechanics (`edge-store`), the wire contract (`edge-api`), the domain
//! types (`edge-model`), or what subscribers do with what they receive.
//!
//! # Layout
//! - `model`: the in-memory mirror of the store; `sync`: the task that keeps it current.
//! - `planner`, `fields`, `ports`: operations as pure functions (model, request) → plan.
//! - `commit`: plans → store transactions, retried on conflict, read-your-writes.
//! - `api`: operations and the gRPC service; `rest`: its REST mirror; `notify`: the push stream;
//!   `reports`: objects subscribers send up; `crm`: the fake platform's CRM.
//! - `server`: `run(...)` over bound listeners; `cli`: the `controller` role.

pub mod api;
pub mod cli;
pub mod codec;
pub mod commit;
pub mod crm;
pub mod error;
pub mod fields;
pub mod model;
pub mod notify;
pub mod planner;
pub mod ports;
pub mod reports;
pub mod rest;
pub mod server;
pub mod sync;

pub use api::Core;
pub use error::ControlError;
