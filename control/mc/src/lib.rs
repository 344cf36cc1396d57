//! The master controller (MC): who may do what in a region. It owns users (Argon2id password
//! hashes, login lockout), organisations (developer or operator), role grants per organisation
//! and the pure enforcer that decides on them (`rbac`), API keys (a subset of their creator's
//! rights in one organisation), the login tokens it signs (`auth`), the audit log of every
//! mutation, and their storage behind one [`store::McStore`] trait (embedded redb by default,
//! PostgreSQL), checked by one conformance suite.
//!
//! It does not own the region's objects (the controller does; the MC is its one API client
//! that speaks for users), certificates and mutual TLS (`edge-tls`), or the wire contract of
//! the region API (`edge-api`).
//!
//! # Layout
//! - `model`: the domain types every part shares.
//! - `rbac`: roles × resources × actions, the enforcer and the grant rules, free of I/O.
//! - `auth`: passwords (hashing, strength), lockout, signed tokens, API-key secrets.
//! - `store`: the `McStore` trait, its redb and PostgreSQL backends, the conformance suite.
//! - `server`: the REST API (axum): accounts, the audit recorder, the region proxy.
//! - `cli`: `edgeplane mc`'s flags, the admin bootstrap, start-up.

pub mod auth;
pub mod cli;
pub mod model;
pub mod rbac;
pub mod server;
pub mod store;
