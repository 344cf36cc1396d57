//! Who may grant and remove roles (upstream's `AddUserRoleObj` / `RemoveUserRoleObj`), and the
//! ownership rule between an app instance and its app.

use crate::model::OrgType;

use super::enforcer::{Decision, Grants, Subject, enforce, key, well_formed};
use super::table::{Action, Resource, Role, RoleKind};

/// Why a role may not be granted or removed. Messages are upstream's where it had one;
/// [`GrantError::status`] is the HTTP status upstream answered with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("Admin roles cannot be associated with an org, please specify the empty org \"\"")]
    AdminRoleWithOrg,
    #[error("Org name must be specified for the specified role")]
    OrgRequired,
    #[error("Can only assign developer roles for developer organization")]
    DeveloperOrgOnly,
    #[error("Can only assign operator roles for operator organization")]
    OperatorOrgOnly,
    #[error("BillingManager needs a billing organization, which Edgeplane does not have")]
    NoBillingOrgs,
    /// The caller lacks `users:manage` on the organisation.
    #[error("Forbidden: {reason}")]
    Forbidden { reason: String },
    #[error("User {subject} already has a role {role} in org {org:?}")]
    AlreadyHasRole {
        subject: String,
        org: String,
        role: Role,
    },
    #[error("Error: Cannot remove the last remaining manager of an org")]
    LastManager,
}

impl GrantError {
    pub fn status(&self) -> u16 {
        match self {
            GrantError::Forbidden { .. } => 403,
            _ => 400,
        }
    }
}

/// May `granter` give `subject` the `role` in `target_org` (`None`: the empty organisation "",
/// for admin roles; otherwise the organisation's name and type, known to exist)? Checked in
/// upstream's order: admin roles only on "", other roles need an organisation, the granter
/// needs `users:manage` there, developer roles on developer organisations and operator roles
/// on operator organisations, and one role per (subject, organisation).
pub fn can_grant(
    grants: &Grants,
    granter: Subject<'_>,
    subject: &str,
    target_org: Option<(&str, OrgType)>,
    role: Role,
) -> Result<(), GrantError> {
    let org = target_org.map_or("", |(name, _)| name);
    if !well_formed(role, org) {
        return Err(if role.kind() == RoleKind::Admin {
            GrantError::AdminRoleWithOrg
        } else {
            GrantError::OrgRequired
        });
    }
    may_manage_users(grants, granter, org)?;
    match (role.kind(), target_org) {
        (RoleKind::Admin, _) => {}
        (RoleKind::Billing, _) => return Err(GrantError::NoBillingOrgs),
        (RoleKind::Developer, Some((_, OrgType::Developer)))
        | (RoleKind::Operator, Some((_, OrgType::Operator))) => {}
        (_, Some((_, OrgType::Developer))) => return Err(GrantError::DeveloperOrgOnly),
        (_, _) => return Err(GrantError::OperatorOrgOnly),
    }
    if let Some(held) = grants.role_set(subject, org).iter().next() {
        return Err(GrantError::AlreadyHasRole {
            subject: subject.to_string(),
            org: org.to_string(),
            role: held,
        });
    }
    Ok(())
}

/// What removing a role amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// The subject holds the role: delete the grant.
    Remove,
    /// The subject does not hold it: nothing to do, and not an error (as upstream).
    Absent,
}

/// May `remover` take `role` in `org` ("" for admin roles) from `subject`? The remover needs
/// `users:manage` there; the last holder of a manager role (AdminManager on "",
/// Developer/OperatorManager in an organisation) cannot be removed, by others or by themselves.
pub fn can_remove(
    grants: &Grants,
    remover: Subject<'_>,
    subject: &str,
    org: &str,
    role: Role,
) -> Result<Removal, GrantError> {
    may_manage_users(grants, remover, org)?;
    if !grants.role_set(subject, org).contains(role) {
        return Ok(Removal::Absent);
    }
    if role.is_manager() && grants.holders(org, role) <= 1 {
        return Err(GrantError::LastManager);
    }
    Ok(Removal::Remove)
}

fn may_manage_users(grants: &Grants, who: Subject<'_>, org: &str) -> Result<(), GrantError> {
    match enforce(grants, who, org, Resource::Users, Action::Manage) {
        Decision::Allow => Ok(()),
        Decision::Deny { reason } => Err(GrantError::Forbidden { reason }),
    }
}

/// An app instance used another organisation's app (HTTP 403).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "AppInst of organization {appinst_org} may only use its own organization's apps, not one of {app_org}"
)]
pub struct ForeignAppError {
    pub appinst_org: String,
    pub app_org: String,
}

/// An AppInst may use only its own organisation's app (names compare ignoring ASCII case).
pub fn check_app_org(appinst_org: &str, app_org: &str) -> Result<(), ForeignAppError> {
    if key(appinst_org) == key(app_org) {
        Ok(())
    } else {
        Err(ForeignAppError {
            appinst_org: appinst_org.to_string(),
            app_org: app_org.to_string(),
        })
    }
}
