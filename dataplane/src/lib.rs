//! `dataplane`: the shared root load balancer of a cloudlet — a multi-tenant L4 (TCP/UDP) proxy
//! whose route table is replaced at run time without disturbing unchanged routes.
//!
//! Owns: the route table value and its validation ([`table`]), the sans-IO decisions (backend
//! choice, health state, UDP flow table, QUIC connection-id routing, PROXY v2 codec), the proxy
//! runtime (listeners, TCP relay with splice or copy, UDP flows, TLS termination, drain), active
//! health checks, Prometheus metrics, and the `edgeplane rootlb` entry point
//! ([`rootlb::run_rootlb`]).
//!
//! With `--controller` the table comes from the controller's notify stream, filtered to this
//! cloudlet ([`subscribe`] mirrors the objects, [`notify_routes`] turns them into a table and
//! instance health); health changes go back up as AppInst health reports.
//!
//! Layers, bottom up: [`table`] and [`decide`] (pure) and [`stats`] (counters) import nothing
//! of the runtime; [`runtime`] is what the hot path reads (the published snapshot, backend
//! state, options); the socket set-up, the connection loops (`tcp`, `udp`, [`relay`]) and the
//! health checks sit on it; [`server`] (apply: a pure plan and its executor) drives them; and
//! [`rootlb`] wires the sources of tables to a server. No module imports one above it
//! (`scripts/check_layers.py` checks for cycles).
//!
//! Does not own: the access-ports grammar (`edge-model`), the notify protocol and objects
//! (`edge-api`), or the binary's flag dispatch (`src/main.rs`).

pub mod decide;
pub mod fuzzing;
pub mod handoff;
pub mod metrics;
pub mod notify_routes;
pub mod relay;
pub mod rootlb;
pub mod runtime;
pub mod server;
pub mod stats;
pub mod subscribe;
pub mod table;
pub mod tcp;
pub mod tls;

mod health;
mod sockets;
mod udp;

pub use rootlb::{RootLbArgs, run_rootlb, run_rootlb_until};
pub use runtime::{CopyMode, HealthEvent, ServerOptions};
pub use server::{ApplyReport, ListenerError, Server};
pub use table::{ListenerKey, Proto, Route, RouteTable, TableError};
