//! The controller's error for API operations: what went wrong, mapped to a gRPC code.

use edge_model::{ObjectKey, ObjectKind};
use tonic::Code;

/// Why an API operation was refused or failed. Messages name the object and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{key} is referenced by {by}; delete those first")]
    InUse { key: String, by: String },
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}: too many concurrent changes, retry")]
    Conflict(String),
    #[error("store: {0}")]
    Store(String),
    /// The caller may not change this object (e.g. a root LB reporting another cloudlet).
    #[error("{0}")]
    PermissionDenied(String),
}

impl ControlError {
    pub fn code(&self) -> Code {
        match self {
            Self::Invalid(_) => Code::InvalidArgument,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::NotFound(_) => Code::NotFound,
            Self::InUse { .. } | Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::Conflict(_) => Code::Aborted,
            Self::Store(_) => Code::Unavailable,
            Self::PermissionDenied(_) => Code::PermissionDenied,
        }
    }

    pub fn not_found(key: &ObjectKey) -> Self {
        Self::NotFound(format!("{} not found", describe(key)))
    }

    pub fn exists(key: &ObjectKey) -> Self {
        Self::AlreadyExists(describe(key))
    }
}

impl From<ControlError> for tonic::Status {
    fn from(e: ControlError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl From<edge_store::StoreError> for ControlError {
    fn from(e: edge_store::StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

/// A readable name for a key: `App NimbusGames/arena-shooter/2.3`.
pub fn describe(key: &ObjectKey) -> String {
    let kind: ObjectKind = key.kind();
    let body = match key {
        ObjectKey::OperatorCode(c) => c.clone(),
        ObjectKey::Flavor(n) => n.clone(),
        ObjectKey::Settings => "settings".into(),
        ObjectKey::Cloudlet(k) | ObjectKey::CloudletInfo(k) => k.to_string(),
        ObjectKey::App(k) => k.to_string(),
        ObjectKey::ClusterInst(k) => k.to_string(),
        ObjectKey::AppInst(k) => k.to_string(),
    };
    format!("{kind} {body}")
}
