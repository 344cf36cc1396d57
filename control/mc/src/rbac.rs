//! Role-based access control, free of I/O: upstream's ten roles × eighteen resources × two
//! actions as a static table ([`table`]), the enforcer on an index of every grant
//! ([`Grants`], [`enforce`], [`authorized_orgs`]), the rules for granting and removing roles
//! ([`can_grant`], [`can_remove`]), and the permissions an API key may get
//! ([`check_key_permissions`]).
//!
//! # Model
//! A request is `(subject, org, resource, action)`. A user holds at most one role per
//! organisation; an admin role is held on the empty organisation "" and holds in every
//! organisation (upstream's Casbin matcher `g(org::sub, role) || g(sub, role)`). `manage`
//! always comes with `view`. Which organisation an object belongs to is data of the resource
//! ([`Resource::owner`], checked by [`check_org_type`]): developer objects in developer
//! organisations, operator objects (cloudlets, operator codes, pools) in operator
//! organisations, flavors, settings and controllers on "" only, where only admin grants reach.
//!
//! # API keys
//! Upstream gives each key a role of its own, `<keyid>-role`, with one policy row per
//! permission, and a grouping `org::<keyid>` → that role. Here a key's permissions are kept on
//! the key itself ([`crate::model::ApiKey::permissions`], checked at creation by
//! [`check_key_permissions`]) and the index holds them under [`Subject::Key`]: the key acts in
//! its one organisation with exactly those permissions, never with its creator's others, and
//! no role table grows per key. One difference from upstream, on purpose: when the index is
//! built, a key's permissions are intersected with what its creator holds in that
//! organisation *now*, so a user who loses a role (or leaves) cannot keep its rights through a
//! key made earlier. Key ids are kept apart from user names by the subject kind (the token's
//! `authtype` says which), so a user named like a key id gains nothing.
//!
//! # Cost
//! [`Grants::new`] runs once per change of the grants. A decision is one hash probe on the
//! subject and one binary search among that subject's organisations, then a bit test
//! (`benches/benches/mc_enforcer.rs`: well under a microsecond with 10 000 grants).

mod enforcer;
mod keys;
mod rules;
pub mod table;

pub use enforcer::{AuthorizedOrgs, Decision, Grants, Subject, authorized_orgs, enforce};
pub use keys::{KeyError, check_key_permissions, to_model};
pub use rules::{ForeignAppError, GrantError, Removal, can_grant, can_remove, check_app_org};
pub use table::{
    Action, OrgTypeError, Owner, ParseError, PermSet, Permission, Resource, Role, RoleKind,
    check_org_type, policies,
};

#[cfg(test)]
mod tests;
