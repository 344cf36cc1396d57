//! `edgectl`: the command line for a region. Talks to the controller API (objects, documents)
//! and to DMEs (register / find / list), so a person can try the system without writing code.
//!
//! Owns: the CLI, document apply/delete against a controller. Does not own: any server logic.

pub mod apply;
pub mod objects;

pub use apply::{Report, apply, delete, finish};
pub use objects::{document_from, document_objects, updatable_diff};
