//! The grant index and the decisions made on it: [`enforce`] and [`authorized_orgs`].

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::model::{ApiKey, Grant};

use super::table::{Action, PermSet, Permission, Resource, Role, RoleKind};

/// Who asks: a user (by name), or an API key (by id) acting with its own permissions only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject<'a> {
    User(&'a str),
    Key(&'a str),
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(u) => write!(f, "user {u}"),
            Subject::Key(k) => write!(f, "API key {k}"),
        }
    }
}

/// The outcome of [`enforce`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// `reason` names the subject, the missing permission and the organisation.
    Deny {
        reason: String,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Where a subject holds a permission, for filtering shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizedOrgs {
    /// Through an admin grant: every organisation, and "".
    All,
    /// These organisations (as spelled in the grants); empty when none.
    Orgs(BTreeSet<String>),
}

/// An organisation as spelled, and the roles held there.
type OrgRoles = (Box<str>, RoleSet);

/// A set of roles as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RoleSet(u16);

impl RoleSet {
    fn with(self, r: Role) -> Self {
        RoleSet(self.0 | 1 << r as u16)
    }
    pub(crate) fn contains(self, r: Role) -> bool {
        self.0 & 1 << r as u16 != 0
    }
    pub(crate) fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.iter().copied().filter(move |r| self.contains(*r))
    }
    fn perms(self) -> PermSet {
        self.iter()
            .fold(PermSet::EMPTY, |s, r| s.union(r.permissions()))
    }
}

/// One organisation a user holds roles in.
#[derive(Debug)]
struct OrgEntry {
    /// [`crate::model::name_key`] of the organisation: the sort and search key.
    key: Box<str>,
    /// As spelled in the (first) grant.
    name: Box<str>,
    roles: RoleSet,
    perms: PermSet,
}

#[derive(Debug, Default)]
struct UserEntry {
    admin_roles: RoleSet,
    admin: PermSet,
    /// Sorted by `key`: a decision is one binary search.
    orgs: Vec<OrgEntry>,
}

#[derive(Debug)]
struct KeyEntry {
    org_key: Box<str>,
    org: Box<str>,
    /// The key's declared permissions (with implied views), capped by its creator's current
    /// permissions in the organisation.
    perms: PermSet,
    declared: PermSet,
}

/// Every grant in the system, indexed for decisions: by subject (a hash lookup), then by
/// organisation (a binary search among that subject's organisations). Built once per change of
/// the grants, off the request path. Names of users and organisations compare ignoring ASCII
/// case, as the store keeps them unique ([`crate::model::name_key`]).
///
/// Malformed grants are left out and listed by [`Grants::rejected`]: an unknown role name, an
/// admin role on an organisation, or another role on the empty organisation "" (the grant
/// rules never create them; leaving them out fails closed).
#[derive(Debug, Default)]
pub struct Grants {
    users: HashMap<Box<str>, UserEntry>,
    keys: HashMap<Box<str>, KeyEntry>,
    /// Organisation key → (user key, roles), for the grant rules.
    members: HashMap<Box<str>, Vec<(Box<str>, RoleSet)>>,
    rejected: Vec<Grant>,
}

/// `name` in its compared form, without allocating when it already is.
pub(crate) fn key(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Calls `f` with `name` in its compared form, folding case in a stack buffer (names are at
/// most 64 bytes; longer ones allocate): the decision path allocates nothing.
pub(crate) fn with_key<R>(name: &str, f: impl FnOnce(&str) -> R) -> R {
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return f(name);
    }
    let mut buf = [0u8; 64];
    match buf.get_mut(..name.len()) {
        Some(b) => {
            b.copy_from_slice(name.as_bytes());
            b.make_ascii_lowercase();
            f(std::str::from_utf8(b).expect("ASCII case folding keeps UTF-8"))
        }
        None => f(&name.to_ascii_lowercase()),
    }
}

/// Whether `role` may be held on `org` at all (admin roles on "" only, others on an org).
pub(crate) fn well_formed(role: Role, org: &str) -> bool {
    (role.kind() == RoleKind::Admin) == org.is_empty()
}

impl Grants {
    /// Indexes role grants and API keys. A key's permissions are its declared ones (manage
    /// implies view) capped by what its creator holds in the key's organisation now: a creator
    /// who loses a role takes it from their keys too.
    pub fn new(grants: &[Grant], keys: &[ApiKey]) -> Grants {
        let mut g = Grants::default();
        // (user key, org key) → (org as spelled, roles): one role set per pair.
        let mut pairs: HashMap<(Box<str>, Box<str>), OrgRoles> = HashMap::new();
        for grant in grants {
            let role = match grant.role.parse::<Role>() {
                Ok(r) if well_formed(r, &grant.org) => r,
                _ => {
                    g.rejected.push(grant.clone());
                    continue;
                }
            };
            let subject: Box<str> = key(&grant.subject).into();
            if grant.org.is_empty() {
                let user = g.users.entry(subject).or_default();
                user.admin_roles = user.admin_roles.with(role);
                user.admin = user.admin.union(role.permissions());
                continue;
            }
            let entry = pairs
                .entry((subject, key(&grant.org).into()))
                .or_insert_with(|| (grant.org.as_str().into(), RoleSet::default()));
            entry.1 = entry.1.with(role);
        }
        for ((subject, org), (name, roles)) in pairs {
            g.members
                .entry(org.clone())
                .or_default()
                .push((subject.clone(), roles));
            g.users.entry(subject).or_default().orgs.push(OrgEntry {
                key: org,
                name,
                roles,
                perms: roles.perms(),
            });
        }
        for user in g.users.values_mut() {
            user.orgs.sort_by(|a, b| a.key.cmp(&b.key));
        }
        for k in keys {
            let declared: Option<PermSet> = k
                .permissions
                .iter()
                .map(|(r, a)| Some(Permission::new(r.parse().ok()?, a.parse().ok()?)))
                .collect();
            let Some(declared) = declared else {
                // An unparsable permission: the key gets none (fails closed).
                g.keys.insert(
                    key(&k.id).into(),
                    KeyEntry {
                        org_key: key(&k.org).into(),
                        org: k.org.as_str().into(),
                        perms: PermSet::EMPTY,
                        declared: PermSet::EMPTY,
                    },
                );
                continue;
            };
            let creator = g.user_perms(&k.username, &k.org);
            g.keys.insert(
                key(&k.id).into(),
                KeyEntry {
                    org_key: key(&k.org).into(),
                    org: k.org.as_str().into(),
                    perms: declared.intersect(creator),
                    declared,
                },
            );
        }
        g
    }

    /// Grants that were left out as malformed (for the log).
    pub fn rejected(&self) -> &[Grant] {
        &self.rejected
    }

    fn user(&self, name: &str) -> Option<&UserEntry> {
        with_key(name, |k| self.users.get(k))
    }

    fn org_entry<'a>(user: &'a UserEntry, org: &str) -> Option<&'a OrgEntry> {
        with_key(org, |org| {
            user.orgs
                .binary_search_by(|o| (*o.key).cmp(org))
                .ok()
                .map(|i| &user.orgs[i])
        })
    }

    /// Everything `user` may do in `org` (admin grants included).
    pub fn user_perms(&self, user: &str, org: &str) -> PermSet {
        let Some(u) = self.user(user) else {
            return PermSet::EMPTY;
        };
        let in_org = if org.is_empty() {
            PermSet::EMPTY
        } else {
            Self::org_entry(u, org).map_or(PermSet::EMPTY, |o| o.perms)
        };
        u.admin.union(in_org)
    }

    /// Everything `subject` may do in `org`.
    pub fn perms(&self, subject: Subject<'_>, org: &str) -> PermSet {
        match subject {
            Subject::User(u) => self.user_perms(u, org),
            Subject::Key(id) => match with_key(id, |id| self.keys.get(id)) {
                Some(k) if with_key(org, |org| *k.org_key == *org) => k.perms,
                _ => PermSet::EMPTY,
            },
        }
    }

    /// The roles `user` holds in `org` ("" for the admin roles).
    pub fn roles(&self, user: &str, org: &str) -> Vec<Role> {
        let Some(u) = self.user(user) else {
            return Vec::new();
        };
        let set = if org.is_empty() {
            u.admin_roles
        } else {
            Self::org_entry(u, org).map_or(RoleSet::default(), |o| o.roles)
        };
        set.iter().collect()
    }

    /// How many users hold `role` in `org`.
    pub(crate) fn holders(&self, org: &str, role: Role) -> usize {
        if org.is_empty() {
            return self
                .users
                .values()
                .filter(|u| u.admin_roles.contains(role))
                .count();
        }
        self.members.get(&*key(org)).map_or(0, |m| {
            m.iter().filter(|(_, roles)| roles.contains(role)).count()
        })
    }

    /// The roles of `user` in `org` as a set.
    pub(crate) fn role_set(&self, user: &str, org: &str) -> RoleSet {
        let Some(u) = self.user(user) else {
            return RoleSet::default();
        };
        if org.is_empty() {
            u.admin_roles
        } else {
            Self::org_entry(u, org).map_or(RoleSet::default(), |o| o.roles)
        }
    }
}

/// May `subject` do `action` on `resource` in `org`? An admin grant (org "") holds in every
/// organisation; any other grant only in its own; an API key only in its organisation, with its
/// own permissions (never its creator's others). A lookup: one hash probe and one binary
/// search, no scan of the grants.
pub fn enforce(
    grants: &Grants,
    subject: Subject<'_>,
    org: &str,
    resource: Resource,
    action: Action,
) -> Decision {
    let p = Permission::new(resource, action);
    if grants.perms(subject, org).contains(p) {
        return Decision::Allow;
    }
    Decision::Deny {
        reason: deny_reason(grants, subject, org, p),
    }
}

fn deny_reason(grants: &Grants, subject: Subject<'_>, org: &str, p: Permission) -> String {
    let place = if org.is_empty() {
        "the empty (admin) organisation \"\"".to_string()
    } else {
        format!("organisation {org}")
    };
    match subject {
        Subject::User(u) => {
            let mut roles = grants.roles(u, org);
            if !org.is_empty() {
                roles.extend(grants.roles(u, ""));
            }
            let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
            let held = if roles.is_empty() {
                format!("has no role in {place}")
            } else {
                format!("holds only {}", roles.join(", "))
            };
            format!("user {u} lacks {p} in {place}: {held}")
        }
        Subject::Key(id) => match grants.keys.get(&*key(id)) {
            None => format!("API key {id} is unknown"),
            Some(k) if *k.org_key != *key(org) => format!(
                "API key {id} lacks {p} in {place}: it acts only in organisation {}",
                k.org
            ),
            Some(k) if k.declared.contains(p) => {
                format!("API key {id} lacks {p} in {place}: its creator no longer holds it there")
            }
            Some(_) => format!("API key {id} lacks {p} in {place}: not among its permissions"),
        },
    }
}

/// The organisations in which `subject` may do `action` on `resource`: [`AuthorizedOrgs::All`]
/// through an admin grant, else the set (possibly empty: the caller answers 403).
pub fn authorized_orgs(
    grants: &Grants,
    subject: Subject<'_>,
    resource: Resource,
    action: Action,
) -> AuthorizedOrgs {
    let p = Permission::new(resource, action);
    let mut set = BTreeSet::new();
    match subject {
        Subject::User(name) => {
            if let Some(u) = grants.user(name) {
                if u.admin.contains(p) {
                    return AuthorizedOrgs::All;
                }
                set.extend(
                    u.orgs
                        .iter()
                        .filter(|o| o.perms.contains(p))
                        .map(|o| o.name.to_string()),
                );
            }
        }
        Subject::Key(id) => {
            if let Some(k) = grants.keys.get(&*key(id))
                && k.perms.contains(p)
            {
                set.insert(k.org.to_string());
            }
        }
    }
    AuthorizedOrgs::Orgs(set)
}
