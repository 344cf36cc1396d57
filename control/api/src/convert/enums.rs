//! Enum conversions. The domain discriminants are the wire values (tested), so each direction
//! is a lookup through edge-model's `from_wire`; numbers this build does not know are errors.

use edge_model::{
    CloudletState, DeploymentKind, HealthCheck, IpAccess, LProto, MaintenanceState, ObjectKind,
    TrackedState,
};

use super::{ConvertError, ConvertErrorKind, wire_enum};
use crate::pb;

/// `From<domain> for pb` and `TryFrom<pb> for domain` for an enum whose domain discriminants
/// are the wire values.
macro_rules! plain_enum {
    ($($ty:ident),+) => {$(
        impl From<$ty> for pb::$ty {
            fn from(v: $ty) -> Self {
                // Same numbers on both sides (tested), so the fallback is never taken.
                Self::try_from(v as i32).unwrap_or_default()
            }
        }

        impl TryFrom<pb::$ty> for $ty {
            type Error = ConvertError;

            fn try_from(v: pb::$ty) -> Result<Self, ConvertError> {
                wire_enum(v as i32, "", stringify!($ty), $ty::from_wire)
            }
        }
    )+};
}
plain_enum!(
    CloudletState,
    MaintenanceState,
    HealthCheck,
    TrackedState,
    LProto
);

/// `IP_ACCESS_UNKNOWN` (not given) is the domain default, shared.
pub(crate) fn ip_access(value: i32, field: &str) -> Result<IpAccess, ConvertError> {
    if value == pb::IpAccess::Unknown as i32 {
        return Ok(IpAccess::default());
    }
    wire_enum(value, field, "IpAccess", IpAccess::from_wire)
}

/// `DEPLOYMENT_KIND_UNSPECIFIED` (not given) is the domain default, docker.
pub(crate) fn deployment(value: i32, field: &str) -> Result<DeploymentKind, ConvertError> {
    if value == pb::DeploymentKind::Unspecified as i32 {
        return Ok(DeploymentKind::default());
    }
    wire_enum(value, field, "DeploymentKind", DeploymentKind::from_wire)
}

impl From<IpAccess> for pb::IpAccess {
    fn from(v: IpAccess) -> Self {
        match v {
            IpAccess::Dedicated => Self::Dedicated,
            IpAccess::Shared => Self::Shared,
        }
    }
}

impl TryFrom<pb::IpAccess> for IpAccess {
    type Error = ConvertError;

    fn try_from(v: pb::IpAccess) -> Result<Self, ConvertError> {
        ip_access(v as i32, "")
    }
}

impl From<DeploymentKind> for pb::DeploymentKind {
    fn from(v: DeploymentKind) -> Self {
        match v {
            DeploymentKind::Docker => Self::Docker,
            DeploymentKind::Kubernetes => Self::Kubernetes,
            DeploymentKind::Helm => Self::Helm,
            DeploymentKind::Vm => Self::Vm,
            DeploymentKind::Process => Self::Process,
        }
    }
}

impl TryFrom<pb::DeploymentKind> for DeploymentKind {
    type Error = ConvertError;

    fn try_from(v: pb::DeploymentKind) -> Result<Self, ConvertError> {
        deployment(v as i32, "")
    }
}

impl From<ObjectKind> for pb::ObjectKind {
    fn from(k: ObjectKind) -> Self {
        match k {
            ObjectKind::OperatorCode => Self::OperatorCode,
            ObjectKind::Flavor => Self::Flavor,
            ObjectKind::Settings => Self::Settings,
            ObjectKind::Cloudlet => Self::Cloudlet,
            ObjectKind::CloudletInfo => Self::CloudletInfo,
            ObjectKind::App => Self::App,
            ObjectKind::ClusterInst => Self::ClusterInst,
            ObjectKind::AppInst => Self::AppInst,
        }
    }
}

/// `OBJECT_KIND_UNSPECIFIED` is an error here; filters that allow it use [`kind_filter`].
impl TryFrom<pb::ObjectKind> for ObjectKind {
    type Error = ConvertError;

    fn try_from(k: pb::ObjectKind) -> Result<Self, ConvertError> {
        Ok(match k {
            pb::ObjectKind::Unspecified => {
                return Err(ConvertError::new(
                    "",
                    ConvertErrorKind::Unspecified("ObjectKind"),
                ));
            }
            pb::ObjectKind::OperatorCode => Self::OperatorCode,
            pb::ObjectKind::Flavor => Self::Flavor,
            pb::ObjectKind::Settings => Self::Settings,
            pb::ObjectKind::Cloudlet => Self::Cloudlet,
            pb::ObjectKind::CloudletInfo => Self::CloudletInfo,
            pb::ObjectKind::App => Self::App,
            pb::ObjectKind::ClusterInst => Self::ClusterInst,
            pb::ObjectKind::AppInst => Self::AppInst,
        })
    }
}

/// The wire number of a kind (for `repeated ObjectKind` and `ObjectKind` fields).
pub fn kind_to_wire(kind: ObjectKind) -> i32 {
    pb::ObjectKind::from(kind) as i32
}

/// A kind filter as `ShowRequest.kind` carries it: UNSPECIFIED (0) means all kinds (`None`).
/// The error path is `field`.
pub fn kind_filter(value: i32, field: &str) -> Result<Option<ObjectKind>, ConvertError> {
    if value == pb::ObjectKind::Unspecified as i32 {
        return Ok(None);
    }
    object_kind(value, field).map(Some)
}

/// A kind that must be given: 0 and unknown numbers are errors.
pub(crate) fn object_kind(value: i32, field: &str) -> Result<ObjectKind, ConvertError> {
    let kind = pb::ObjectKind::try_from(value).map_err(|_| {
        ConvertError::new(
            field,
            ConvertErrorKind::UnknownEnum {
                what: "ObjectKind",
                value,
            },
        )
    })?;
    ObjectKind::try_from(kind).map_err(|e| ConvertError::new(field, e.kind))
}
