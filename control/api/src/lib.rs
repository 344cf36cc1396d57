//! Edgeplane's control-plane wire contract: the protobuf messages and gRPC services between the
//! controller, its notify subscribers (the DME, the root load balancer, the CRM) and `edgectl`,
//! the conversions between those messages and the domain types of `edge-model`, and the one
//! subscriber side of the notify stream that every subscriber runs.
//!
//! Owns: the protos (`proto/`, package `edgeplane.v1`), the validation that turns wire messages
//! into domain values, the field names of update masks, and the notify subscriber (a sans-IO
//! session, the subscriber's replica of the objects, and the async driver that connects, backs
//! off and reconnects). Does not own: storage or server logic, or what a subscriber builds from
//! what it is sent; callers convert at the edge so no hot path matches on generated structs.
//!
//! # Layout
//! - [`pb`]: generated messages (with pbjson serde: proto field names, enums by name, unknown
//!   fields rejected — the JSON of the controller's REST mirror and `edgectl -o json`), `pb::controller_server::Controller` /
//!   `pb::controller_client::ControllerClient`, `pb::notify_server::Notify` /
//!   `pb::notify_client::NotifyClient`, and [`pb::FILE_DESCRIPTOR_SET`] for reflection.
//! - [`convert`]: `TryFrom<pb::X> for edge_model::X` (validating) and `From<&X> for pb::X`.
//! - [`notify`]: the notify stream's messages as domain enums (`Notice`, `SubscriberMessage`).
//! - [`subscriber`]: `Session` (sans-IO), `Replica`, and `run`, the driver of a subscription.
//! - [`fields`]: the updatable field names of each kind, and the check of an update mask.

pub mod convert;
pub mod fields;
pub mod gateway;
pub mod notify;
pub mod subscriber;

/// Generated wire types and services, package `edgeplane.v1`.
pub mod pb {
    #![allow(
        clippy::all,
        clippy::pedantic,
        unused_qualifications,
        rust_2018_idioms,
        missing_docs
    )]
    tonic::include_proto!("edgeplane.v1");
    include!(concat!(env!("OUT_DIR"), "/edgeplane.v1.serde.rs"));

    /// The encoded `FileDescriptorSet` of every proto here, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/edgeplane_descriptor.bin"));
}

/// gRPC metadata by which the MC tells the controller whom it speaks for (`user:NAME`, or
/// `apikey:ID (user:NAME)`), for the controller's log of who changed what. The controller
/// believes it only from a peer whose certificate has the `mc` role.
pub const CALLER_HEADER: &str = "x-edgeplane-caller";

pub use convert::{ConvertError, ConvertErrorKind, kind_filter, kind_to_wire};
pub use fields::{check_update_fields, updatable_fields};
pub use notify::{Notice, Role, SubscriberMessage, Subscription};
