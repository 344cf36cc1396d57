//! How objects are stored: the protobuf encoding of the wire `Object` envelope, so the store,
//! the notify stream and the API share one schema with one set of evolution rules.

use edge_api::pb;
use edge_model::Object;
use prost::Message;

pub fn encode(obj: &Object) -> Vec<u8> {
    pb::Object::from(obj).encode_to_vec()
}

/// Why a stored value could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a protobuf Object: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("invalid object: {0}")]
    Invalid(#[from] edge_api::ConvertError),
}

pub fn decode(bytes: &[u8]) -> Result<Object, DecodeError> {
    Ok(Object::try_from(pb::Object::decode(bytes)?)?)
}
