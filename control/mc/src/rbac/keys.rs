//! The permissions an API key may be given: a subset of its creator's in the key's
//! organisation (the escalation rule of upstream's `CreateUserApiKey`, and Kubernetes').

use super::enforcer::Grants;
use super::table::{Action, PermSet, Permission, Resource};

/// Why a key's requested permissions are refused (HTTP 400, as upstream).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("No permissions specified")]
    Empty,
    #[error("Invalid org specified: an API key acts in one organization, not the empty org")]
    OrgRequired,
    #[error("Invalid resource {0:?}")]
    InvalidResource(String),
    #[error("Invalid action {0:?}, must be view or manage")]
    InvalidAction(String),
    /// Permissions the creator does not hold in the organisation.
    #[error("Invalid permission specified: [{}]", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "))]
    NotHeld(Vec<Permission>),
}

/// Checks the `(resource, action)` pairs requested for a new key of `creator` in `org` and
/// returns the key's permissions: sorted, without duplicates, each `manage` with its implied
/// `view`. Every requested permission must be held by the creator in that organisation
/// (through an organisation role or an admin grant). The caller stores the result in
/// [`crate::model::ApiKey::permissions`] (see [`to_model`]).
pub fn check_key_permissions(
    grants: &Grants,
    creator: &str,
    org: &str,
    requested: &[(&str, &str)],
) -> Result<Vec<Permission>, KeyError> {
    if requested.is_empty() {
        return Err(KeyError::Empty);
    }
    if org.is_empty() {
        return Err(KeyError::OrgRequired);
    }
    let mut wanted = PermSet::EMPTY;
    for &(resource, action) in requested {
        let r: Resource = resource
            .parse()
            .map_err(|_| KeyError::InvalidResource(resource.to_string()))?;
        let a: Action = action
            .parse()
            .map_err(|_| KeyError::InvalidAction(action.to_string()))?;
        wanted = wanted.with_implied(Permission::new(r, a));
    }
    let held = grants.user_perms(creator, org);
    if !wanted.is_subset(held) {
        let missing = wanted.iter().filter(|p| !held.contains(*p)).collect();
        return Err(KeyError::NotHeld(missing));
    }
    Ok(wanted.iter().collect())
}

/// Permissions in the model's form, `("apps", "manage")`.
pub fn to_model(perms: &[Permission]) -> Vec<(String, String)> {
    perms
        .iter()
        .map(|p| (p.resource.to_string(), p.action.to_string()))
        .collect()
}
