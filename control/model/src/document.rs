//! The deployment document (stub; being written).
#[derive(Debug, thiserror::Error)]
#[error("document")]
pub struct DocumentError;
pub struct Deployment;
