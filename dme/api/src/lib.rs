//! The DME's client wire contract: the MobiledgeX/EdgeXR client protos (package
//! `distributed_match_engine`), the code generated from them, and the conversions between those
//! messages and the domain types of `edge-model` and `geodata`. A DME client (`edgectl`, the load
//! generators, a test) needs only this crate, not the DME server.
//!
//! Owns: the protos (`proto/`), the generated prost messages with their grpc-gateway style serde
//! (proto field names, enums by name, numbers as JSON numbers or strings), the tonic clients and
//! server traits, the descriptor set for reflection, and the wire <-> domain conversions that need
//! nothing of the DME. Does not own: serving, the RPCs' behaviour, or how errors reach a client
//! (the DME's `ApiError` maps to gRPC statuses and grpc-gateway bodies; `edge-api::gateway`
//! holds the shared grpc-gateway conventions).
//!
//! # Layout
//! - [`proto`]: generated messages, `proto::match_engine_api_client::MatchEngineApiClient`, the
//!   server traits of every service the DME offers, and [`proto::FILE_DESCRIPTOR_SET`].
//! - [`convert`]: domain values to wire messages, and the validation of a client location.
//! - `json_num`: the reader the generated serde code uses for number fields.

pub mod convert;
mod json_num;

/// Generated wire types and services (prost + tonic + pbjson serde), package
/// `distributed_match_engine`.
pub mod proto {
    #![allow(
        clippy::all,
        clippy::pedantic,
        unused_qualifications,
        rust_2018_idioms,
        missing_docs
    )]
    tonic::include_proto!("distributed_match_engine");
    include!(concat!(
        env!("OUT_DIR"),
        "/distributed_match_engine.serde.rs"
    ));

    /// The encoded `FileDescriptorSet` of every proto here, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/dme_descriptor.bin"));
}
