//! Names of the domain enums as documents and the wire API write them.
//!
//! Documents accept an enum value with or without its wire prefix (`READY` and
//! `CLOUDLET_STATE_READY`), case-sensitively as the wire API does, and print the short form.

use std::fmt;
use std::str::FromStr;

use crate::types::{
    CloudletState, DeploymentKind, HealthCheck, IpAccess, MaintenanceState, TrackedState,
};

/// A name that is not one of an enum's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`; expected one of {expected}")]
pub struct ParseEnumError {
    /// The enum's name, e.g. `CloudletState`.
    pub what: &'static str,
    /// The rejected text.
    pub value: String,
    /// The accepted short names, comma-separated (plus a note on the accepted prefix).
    pub expected: String,
}

impl ParseEnumError {
    pub(crate) fn new<'a>(
        what: &'static str,
        value: &str,
        names: impl Iterator<Item = &'a str>,
        prefix: &str,
    ) -> Self {
        let mut expected = names.collect::<Vec<_>>().join(", ");
        if !prefix.is_empty() {
            expected.push_str(&format!(" (optionally prefixed `{prefix}`)"));
        }
        Self {
            what,
            value: value.to_owned(),
            expected,
        }
    }
}

/// Implements short names, full wire names, wire-value conversion, `FromStr` and `Display` for
/// an enum whose discriminants are the wire values.
macro_rules! wire_enum {
    ($ty:ident, $prefix:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in wire order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The short name documents use (`READY`).
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }

            /// The full protobuf enum value name (with the wire prefix, if the enum has one).
            pub fn wire_name(self) -> &'static str {
                match self { $(Self::$variant => concat!($prefix, $name)),+ }
            }

            /// The value for a wire discriminant; `None` for a value this build does not know.
            pub fn from_wire(value: i32) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| *v as i32 == value)
            }
        }

        impl FromStr for $ty {
            type Err = ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let short = s.strip_prefix($prefix).unwrap_or(s);
                Self::ALL.iter().copied().find(|v| v.as_str() == short).ok_or_else(|| {
                    ParseEnumError::new(
                        stringify!($ty),
                        s,
                        Self::ALL.iter().map(|v| v.as_str()),
                        $prefix,
                    )
                })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(CloudletState, "CLOUDLET_STATE_", {
    Unknown => "UNKNOWN",
    Errors => "ERRORS",
    Ready => "READY",
    Offline => "OFFLINE",
    NotPresent => "NOT_PRESENT",
    Init => "INIT",
    Upgrade => "UPGRADE",
    NeedSync => "NEED_SYNC",
});

// MaintenanceState values carry no prefix on the wire.
wire_enum!(MaintenanceState, "", {
    NormalOperation => "NORMAL_OPERATION",
    MaintenanceStart => "MAINTENANCE_START",
    FailoverRequested => "FAILOVER_REQUESTED",
    FailoverDone => "FAILOVER_DONE",
    FailoverError => "FAILOVER_ERROR",
    MaintenanceStartNoFailover => "MAINTENANCE_START_NO_FAILOVER",
    CrmRequested => "CRM_REQUESTED",
    CrmUnderMaintenance => "CRM_UNDER_MAINTENANCE",
    CrmError => "CRM_ERROR",
    NormalOperationInit => "NORMAL_OPERATION_INIT",
    UnderMaintenance => "UNDER_MAINTENANCE",
});

wire_enum!(HealthCheck, "HEALTH_CHECK_", {
    Unknown => "UNKNOWN",
    RootlbOffline => "ROOTLB_OFFLINE",
    ServerFail => "SERVER_FAIL",
    Ok => "OK",
    CloudletOffline => "CLOUDLET_OFFLINE",
});

wire_enum!(TrackedState, "TRACKED_STATE_", {
    Unknown => "UNKNOWN",
    NotPresent => "NOT_PRESENT",
    CreateRequested => "CREATE_REQUESTED",
    Creating => "CREATING",
    CreateError => "CREATE_ERROR",
    Ready => "READY",
    UpdateRequested => "UPDATE_REQUESTED",
    Updating => "UPDATING",
    UpdateError => "UPDATE_ERROR",
    DeleteRequested => "DELETE_REQUESTED",
    Deleting => "DELETING",
    DeleteError => "DELETE_ERROR",
    DeletePrepare => "DELETE_PREPARE",
    CrmInitok => "CRM_INITOK",
    CreatingDependencies => "CREATING_DEPENDENCIES",
    DeleteDone => "DELETE_DONE",
});

// === impl MaintenanceState ===

impl MaintenanceState {
    /// Whether the cloudlet may serve clients (only UNDER_MAINTENANCE takes it out, as upstream).
    pub fn is_usable(self) -> bool {
        self != Self::UnderMaintenance
    }
}

// === impl HealthCheck ===

impl HealthCheck {
    /// OK and UNKNOWN instances are served; the others are dropped from FindCloudlet (upstream).
    pub fn is_servable(self) -> bool {
        matches!(self, Self::Ok | Self::Unknown)
    }
}

// === impl IpAccess ===

impl IpAccess {
    /// Every value.
    pub const ALL: &'static [Self] = &[Self::Shared, Self::Dedicated];

    /// The document form (`shared`, `dedicated`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Dedicated => "dedicated",
        }
    }

    /// The controller API's wire value (`IP_ACCESS_DEDICATED = 1`, `IP_ACCESS_SHARED = 3`).
    pub fn wire_value(self) -> i32 {
        match self {
            Self::Dedicated => 1,
            Self::Shared => 3,
        }
    }

    /// The value for a wire discriminant; `None` for 0 (unset), the retired 2
    /// (`IP_ACCESS_DEDICATED_OR_SHARED`) and anything this build does not know.
    pub fn from_wire(value: i32) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.wire_value() == value)
    }
}

/// Accepts the document form and the wire names with or without prefix (`shared`, `SHARED`,
/// `IP_ACCESS_SHARED`).
impl FromStr for IpAccess {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.strip_prefix("IP_ACCESS_").unwrap_or(s);
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s || v.as_str().to_ascii_uppercase() == upper)
            .ok_or_else(|| {
                ParseEnumError::new("IpAccess", s, Self::ALL.iter().map(|v| v.as_str()), "")
            })
    }
}

impl fmt::Display for IpAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl DeploymentKind ===

impl DeploymentKind {
    /// Every value.
    pub const ALL: &'static [Self] = &[
        Self::Docker,
        Self::Kubernetes,
        Self::Helm,
        Self::Vm,
        Self::Process,
    ];

    /// The name as upstream's `App.deployment` string writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Kubernetes => "kubernetes",
            Self::Helm => "helm",
            Self::Vm => "vm",
            Self::Process => "process",
        }
    }

    /// The controller API's wire value. Upstream sends a string; the enum starts at 1 so that 0
    /// can mean "not given" on the wire.
    pub fn wire_value(self) -> i32 {
        match self {
            Self::Docker => 1,
            Self::Kubernetes => 2,
            Self::Helm => 3,
            Self::Vm => 4,
            Self::Process => 5,
        }
    }

    /// The value for a wire discriminant; `None` for 0 (unset) and unknown values.
    pub fn from_wire(value: i32) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.wire_value() == value)
    }
}

/// Upstream's deployment is a plain lower-case string, so only that spelling is accepted.
impl FromStr for DeploymentKind {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ParseEnumError::new(
                    "DeploymentKind",
                    s,
                    Self::ALL.iter().map(|v| v.as_str()),
                    "",
                )
            })
    }
}

impl fmt::Display for DeploymentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_and_short_names_parse_case_sensitively() {
        assert_eq!("READY".parse(), Ok(CloudletState::Ready));
        assert_eq!("CLOUDLET_STATE_READY".parse(), Ok(CloudletState::Ready));
        assert!("ready".parse::<CloudletState>().is_err());
        assert!("CLOUDLET_STATE_".parse::<CloudletState>().is_err());
        assert_eq!("OK".parse(), Ok(HealthCheck::Ok));
        assert_eq!("HEALTH_CHECK_OK".parse(), Ok(HealthCheck::Ok));
        assert_eq!("TRACKED_STATE_READY".parse(), Ok(TrackedState::Ready));
        assert_eq!(
            "UNDER_MAINTENANCE".parse(),
            Ok(MaintenanceState::UnderMaintenance)
        );
        assert_eq!("IP_ACCESS_DEDICATED".parse(), Ok(IpAccess::Dedicated));
        assert_eq!("shared".parse(), Ok(IpAccess::Shared));
        assert!("Docker".parse::<DeploymentKind>().is_err());
    }

    #[test]
    fn wire_values_round_trip() {
        for v in TrackedState::ALL {
            assert_eq!(TrackedState::from_wire(*v as i32), Some(*v));
            assert_eq!(v.wire_name().parse(), Ok(*v));
        }
        assert_eq!(
            MaintenanceState::from_wire(31),
            Some(MaintenanceState::UnderMaintenance)
        );
        assert_eq!(CloudletState::from_wire(99), None);
        for v in IpAccess::ALL {
            assert_eq!(IpAccess::from_wire(v.wire_value()), Some(*v));
        }
        assert_eq!(IpAccess::from_wire(0), None);
        assert_eq!(IpAccess::from_wire(2), None);
        for v in DeploymentKind::ALL {
            assert_eq!(DeploymentKind::from_wire(v.wire_value()), Some(*v));
        }
        assert_eq!(DeploymentKind::from_wire(0), None);
        assert_eq!(
            HealthCheck::CloudletOffline.wire_name(),
            "HEALTH_CHECK_CLOUDLET_OFFLINE"
        );
    }

    #[test]
    fn error_lists_the_accepted_names() {
        let e = "REDY".parse::<CloudletState>().unwrap_err();
        assert!(e.to_string().contains("READY"), "{e}");
        assert!(e.to_string().contains("CLOUDLET_STATE_"), "{e}");
    }
}
