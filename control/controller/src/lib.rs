//! The regional controller: owns the object model (cloudlets, apps, cluster and app instances,
//! operator codes, flavors, settings) persisted in a revisioned store (embedded redb by default,
//! etcd optionally), its API (gRPC plus a REST mirror), referential integrity and lifecycle
//! states, public-port allocation on shared root LBs, and the notify stream that pushes the
//! model into the tables of DMEs, root LBs, CRMs and the region DNS, and what CRMs and root
//! LBs report back (lifecycle transitions, health, cloudlet info).
//!
//! Does not own: persistence mechanics (`edge-store`), the wire contract (`edge-api`), the domain
//! types (`edge-model`), what subscribers do with what they receive, or any platform: CRMs
//! (the `crm` crate) run clusters and instances and report back.
//!
//! # Layout
//! - `model`: the in-memory mirror of the store; `sync`: the task that keeps it current.
//! - `planner`, `fields`, `ports`: operations as pure functions (model, request) → plan.
//! - `commit`: plans → store transactions, retried on conflict, read-your-writes.
//! - `api`: operations and the gRPC service; `rest`: its REST mirror; `notify`: the push stream;
//!   `reports`: objects subscribers send up; `crm_report`: a CRM's lifecycle reports (pure).
//! - `server`: `run(...)` over bound listeners; `cli`: the `controller` role.

pub mod api;
pub mod cli;
pub mod codec;
pub mod commit;
pub mod crm_report;
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
