//! The static part of RBAC: upstream's ten roles, two actions, eighteen resources, the grant
//! table (`mc/orm/role.go:InitRolePerms`) and which kind of organisation owns each resource.

use std::fmt;
use std::str::FromStr;

use crate::model::OrgType;

/// A name that is not one of upstream's roles, resources or actions.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}")]
pub struct ParseError {
    /// "role", "resource" or "action".
    pub kind: &'static str,
    pub value: String,
}

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident, $kind:literal, [$($variant:ident = $text:literal),+ $(,)?]) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order (`ALL[v as usize] == v`).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Upstream's name.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            /// Upstream's exact (case-sensitive) name.
            fn from_str(s: &str) -> Result<Self, ParseError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ParseError { kind: $kind, value: s.to_string() }),
                }
            }
        }
    };
}

named_enum!(
    /// One of upstream's ten roles.
    Role, "role", [
    AdminManager = "AdminManager",
    AdminContributor = "AdminContributor",
    AdminViewer = "AdminViewer",
    DeveloperManager = "DeveloperManager",
    DeveloperContributor = "DeveloperContributor",
    DeveloperViewer = "DeveloperViewer",
    OperatorManager = "OperatorManager",
    OperatorContributor = "OperatorContributor",
    OperatorViewer = "OperatorViewer",
    BillingManager = "BillingManager",
]);

named_enum!(
    /// `manage` implies `view`: every grant of `manage` also grants `view`.
    Action, "action", [View = "view", Manage = "manage"]);

named_enum!(
    /// Upstream's resources (`mc/orm/role.go`).
    Resource, "resource", [
    Apps = "apps",
    AppInsts = "appinsts",
    Clusters = "clusters",
    ClusterInsts = "clusterinsts",
    AppAnalytics = "appanalytics",
    ClusterAnalytics = "clusteranalytics",
    DeveloperPolicy = "developerpolicy",
    Alert = "alert",
    Cloudlets = "cloudlets",
    CloudletAnalytics = "cloudletanalytics",
    ResTagTbl = "restagtbl",
    CloudletPools = "cloudletpools",
    Users = "users",
    Flavors = "flavors",
    ClusterFlavors = "clusterflavors",
    Billing = "billing",
    Controllers = "controllers",
    Config = "config",
]);

/// The kind of role: decides which organisations may hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleKind {
    /// Held on the empty organisation "" only; holds in every organisation.
    Admin,
    Developer,
    Operator,
    /// Upstream's billing organisations; Edgeplane has none, so it cannot be assigned.
    Billing,
}

impl Role {
    pub const fn kind(self) -> RoleKind {
        match self {
            AdminManager | AdminContributor | AdminViewer => RoleKind::Admin,
            DeveloperManager | DeveloperContributor | DeveloperViewer => RoleKind::Developer,
            OperatorManager | OperatorContributor | OperatorViewer => RoleKind::Operator,
            BillingManager => RoleKind::Billing,
        }
    }

    /// The organisation-managing roles: the last of them in an organisation cannot be removed.
    pub const fn is_manager(self) -> bool {
        matches!(self, AdminManager | DeveloperManager | OperatorManager)
    }

    /// The permissions the role grants (upstream's policy rows).
    pub fn permissions(self) -> PermSet {
        ROLE_PERMS[self as usize]
    }
}

/// Which organisation an object of a resource belongs to (checked by [`check_org_type`];
/// upstream's `withRequiresOrg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Developer objects (apps, instances, clusters, ...) live in developer organisations.
    Developer,
    /// Operator objects (cloudlets, operator codes, pools, ...) live in operator organisations.
    Operator,
    /// Alerts: either kind.
    DeveloperOrOperator,
    /// Membership: any organisation, or "" for the admin roles.
    Any,
    /// Region-wide objects (flavors, settings, controllers): the empty organisation "" only,
    /// which only admin grants reach.
    Admin,
}

impl Resource {
    pub const fn owner(self) -> Owner {
        use Resource::*;
        match self {
            Apps | AppInsts | Clusters | ClusterInsts | AppAnalytics | ClusterAnalytics
            | DeveloperPolicy | Billing => Owner::Developer,
            Alert => Owner::DeveloperOrOperator,
            Cloudlets | CloudletAnalytics | ResTagTbl | CloudletPools => Owner::Operator,
            Users => Owner::Any,
            Flavors | ClusterFlavors | Controllers | Config => Owner::Admin,
        }
    }
}

/// A (resource, action) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    pub resource: Resource,
    pub action: Action,
}

impl Permission {
    pub const fn new(resource: Resource, action: Action) -> Self {
        Permission { resource, action }
    }

    const fn bit(self) -> u64 {
        1 << (self.resource as u32 * 2 + self.action as u32)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource, self.action)
    }
}

/// A set of permissions as a bit set (resource × action), so union, intersection and
/// membership are single instructions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PermSet(u64);

impl PermSet {
    pub const EMPTY: PermSet = PermSet(0);

    pub const fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub const fn with(self, p: Permission) -> PermSet {
        PermSet(self.0 | p.bit())
    }

    /// `p` and, for `manage`, `view` of the same resource (manage implies view).
    pub const fn with_implied(self, p: Permission) -> PermSet {
        let s = self.with(p);
        match p.action {
            Action::Manage => s.with(Permission::new(p.resource, Action::View)),
            Action::View => s,
        }
    }

    pub const fn union(self, o: PermSet) -> PermSet {
        PermSet(self.0 | o.0)
    }

    pub const fn intersect(self, o: PermSet) -> PermSet {
        PermSet(self.0 & o.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `self ⊆ o`.
    pub const fn is_subset(self, o: PermSet) -> bool {
        self.0 & !o.0 == 0
    }

    /// The members, ordered by resource then action.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Resource::ALL.iter().flat_map(move |&r| {
            Action::ALL
                .iter()
                .map(move |&a| Permission::new(r, a))
                .filter(move |p| self.contains(*p))
        })
    }
}

impl FromIterator<Permission> for PermSet {
    /// Adds the implied `view` of every `manage`.
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        iter.into_iter()
            .fold(PermSet::EMPTY, |s, p| s.with_implied(p))
    }
}

/// Manage (with the implied view) or view only.
#[derive(Clone, Copy)]
enum Level {
    M,
    V,
}

use Resource as R;
use Role::*;

const DEVELOPER_RESOURCES: &[Resource] = &[
    R::Apps,
    R::AppInsts,
    R::Clusters,
    R::ClusterInsts,
    R::AppAnalytics,
    R::ClusterAnalytics,
    R::DeveloperPolicy,
    R::Alert,
];
const OPERATOR_RESOURCES: &[Resource] = &[
    R::Cloudlets,
    R::CloudletAnalytics,
    R::ResTagTbl,
    R::CloudletPools,
    R::Alert,
];

/// Upstream's grant table (reference §A5), row by row.
const GRANT_TABLE: &[(Role, &[Resource], Level)] = &[
    // Developer resources.
    (DeveloperManager, DEVELOPER_RESOURCES, Level::M),
    (AdminManager, DEVELOPER_RESOURCES, Level::M),
    (DeveloperContributor, DEVELOPER_RESOURCES, Level::M),
    (AdminContributor, DEVELOPER_RESOURCES, Level::M),
    (DeveloperViewer, DEVELOPER_RESOURCES, Level::V),
    (AdminViewer, DEVELOPER_RESOURCES, Level::V),
    // Operator resources.
    (OperatorManager, OPERATOR_RESOURCES, Level::M),
    (AdminManager, OPERATOR_RESOURCES, Level::M),
    (OperatorContributor, OPERATOR_RESOURCES, Level::M),
    (AdminContributor, OPERATOR_RESOURCES, Level::M),
    (OperatorViewer, OPERATOR_RESOURCES, Level::V),
    (AdminViewer, OPERATOR_RESOURCES, Level::V),
    // Membership.
    (DeveloperManager, &[R::Users], Level::M),
    (OperatorManager, &[R::Users], Level::M),
    (AdminManager, &[R::Users], Level::M),
    (BillingManager, &[R::Users], Level::M),
    (DeveloperContributor, &[R::Users], Level::V),
    (OperatorContributor, &[R::Users], Level::V),
    (AdminContributor, &[R::Users], Level::V),
    (DeveloperViewer, &[R::Users], Level::V),
    (OperatorViewer, &[R::Users], Level::V),
    (AdminViewer, &[R::Users], Level::V),
    // What developers may see of the operators' side.
    (
        DeveloperManager,
        &[R::Cloudlets, R::Flavors, R::ClusterFlavors],
        Level::V,
    ),
    (
        DeveloperContributor,
        &[R::Cloudlets, R::Flavors, R::ClusterFlavors],
        Level::V,
    ),
    (
        DeveloperViewer,
        &[R::Cloudlets, R::Flavors, R::ClusterFlavors],
        Level::V,
    ),
    // Billing.
    (DeveloperManager, &[R::Billing], Level::M),
    (BillingManager, &[R::Billing], Level::M),
    (AdminManager, &[R::Billing], Level::M),
    (AdminContributor, &[R::Billing], Level::V),
    // Region-wide objects: AdminManager only.
    (
        AdminManager,
        &[
            R::Controllers,
            R::Flavors,
            R::ClusterFlavors,
            R::Config,
            R::CloudletPools,
            R::ResTagTbl,
        ],
        Level::M,
    ),
];

const fn compute_role_perms() -> [PermSet; 10] {
    let mut out = [PermSet::EMPTY; 10];
    let mut i = 0;
    while i < GRANT_TABLE.len() {
        let (role, resources, level) = GRANT_TABLE[i];
        let mut j = 0;
        while j < resources.len() {
            let action = match level {
                Level::M => Action::Manage,
                Level::V => Action::View,
            };
            out[role as usize] =
                out[role as usize].with_implied(Permission::new(resources[j], action));
            j += 1;
        }
        i += 1;
    }
    out
}

static ROLE_PERMS: [PermSet; 10] = compute_role_perms();

/// Every (role, resource, action) policy row, as upstream's `casbin_rule` `p` rows (163).
pub fn policies() -> Vec<(Role, Permission)> {
    Role::ALL
        .iter()
        .flat_map(|&role| role.permissions().iter().map(move |p| (role, p)))
        .collect()
}

/// Why an object's organisation does not fit its resource (HTTP 400, as upstream).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OrgTypeError(pub String);

/// Checks that an object of `resource` may belong to `org` (`None`: the empty organisation
/// ""): developer objects to developer organisations, operator objects (cloudlets, operator
/// codes, pools) to operator organisations, region-wide objects (flavors, settings,
/// controllers) to "" only. Upstream's `withRequiresOrg` type check; it applies to admins too.
pub fn check_org_type(
    resource: Resource,
    org: Option<(&str, OrgType)>,
) -> Result<(), OrgTypeError> {
    let err = |s: String| Err(OrgTypeError(s));
    match (resource.owner(), org) {
        (Owner::Any, _) => Ok(()),
        (Owner::Admin, None) => Ok(()),
        (Owner::Admin, Some((name, _))) => err(format!(
            "{resource} belong to no organisation: specify the empty org \"\", not {name}"
        )),
        (owner, None) => err(format!(
            "Operation for {resource} needs an organization of type {}",
            owner_types(owner)
        )),
        (Owner::Developer, Some((_, OrgType::Developer)))
        | (Owner::Operator, Some((_, OrgType::Operator)))
        | (Owner::DeveloperOrOperator, Some(_)) => Ok(()),
        (owner, Some((name, _))) => err(format!(
            "Operation for org {name} only allowed for orgs of type {}",
            owner_types(owner)
        )),
    }
}

fn owner_types(owner: Owner) -> &'static str {
    match owner {
        Owner::Developer => "developer",
        Owner::Operator => "operator",
        _ => "developer or operator",
    }
}
