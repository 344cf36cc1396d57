//! `edgectl`: the command line for a region. Talks to the controller API (objects, documents:
//! through the MC with the token of `edgectl login`, or directly) and to DMEs (register / find /
//! list), so a person can try the system without writing code.
//!
//! Owns: the CLI ([`cli`], run by the root package's `edgectl` binary), document apply/delete
//! against a controller, objects from `field=value` pairs, and the `show` formats. Does not own:
//! any server logic or validation of objects (the controller's, through edge-api).
//!
//! # Layout
//! - [`apply`]: `apply` / `delete` of a deployment document, `finish` of a progress stream.
//! - [`objects`]: a document as objects and back (`show -o yaml`), what an update must change.
//! - [`assign`]: `key.name=berlin-1`-style assignments → proto JSON → `pb::Object` / `pb::ObjectKey`,
//!   typed by [`schema`] (edge-api's descriptor set).
//! - [`table`]: `show -o table`.
//! - [`transport`]: where object commands go (the MC with a token, or a controller directly,
//!   plaintext or mutual TLS), and the [`transport::Transport`] bound every client function takes.
//! - [`login`]: `edgectl login` / `logout` and the login file.
//! - [`cli`]: clap flags and dispatch; the only place errors become text and exit codes.

pub mod apply;
pub mod assign;
pub mod cli;
pub mod login;
pub mod objects;
pub mod schema;
pub mod table;
pub mod transport;

pub use apply::{
    NotTaken, Report, apply, apply_noting, create_object, delete, delete_object, finish,
};
pub use objects::{document_from, document_objects, updatable_diff};
