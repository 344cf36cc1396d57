//! `crm`: the Cloudlet Resource Manager. One per cloudlet (or one per platform, serving all of
//! its cloudlets), subscribed to the controller's notify stream: it turns the cloudlet's
//! ClusterInsts and AppInsts into running workloads through a platform driver, and reports
//! their lifecycle (CREATING → READY or CREATE_ERROR with the reason, updates, deletes), their
//! platform health, the progress of every operation, and the cloudlet's CloudletInfo
//! (state, flavors, resources, root LB address) back up.
//!
//! Owns: the CRM's state machine ([`plan`], pure), its run time ([`engine`], [`subscribe`]),
//! the [`platform::Platform`] trait with its drivers ([`platform::fake`]: no infrastructure;
//! [`platform::local`]: real processes on this host) and their one conformance suite
//! (`testing` feature), and the `edgeplane crm` role ([`cli`]). The trait's doc says what a
//! Kubernetes or OpenStack driver would implement.
//!
//! Does not own: the lifecycle rules on the controller's side (which transitions a CRM may
//! report, what a failure undoes: `controller::crm_report`), the notify protocol (`edge-api`),
//! the root LB that carries the traffic (`dataplane`), DNS or metrics.

pub mod cli;
pub mod echo;
pub mod engine;
pub mod plan;
pub mod platform;
pub mod subscribe;

#[cfg(feature = "testing")]
pub mod conformance;

pub use subscribe::{CrmConfig, CrmError, Scope, run};
