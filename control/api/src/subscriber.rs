//! The subscriber side of the notify stream, written once for every subscriber (the DME, the
//! root LB, the CRM):
//! - [`session`]: sans-IO. Fed the notices of a connection, it answers "publish this version",
//!   "acknowledge this version" or "wait", tracking the snapshot and pruning at its end.
//! - [`replica`]: the subscriber's typed copy of the objects it was sent.
//! - [`driver`]: the async loop around a session: connect, back off, keep alive, reconnect,
//!   send acknowledgements and reports.

pub mod driver;
pub mod replica;
pub mod session;

pub use driver::{Backoff, DriverConfig, Subscriber, Wake, error_chain, run};
pub use replica::Replica;
pub use session::{Apply, Session, Step};

#[cfg(test)]
mod tests;
