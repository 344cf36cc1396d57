//! Who may do what to a region's objects: a pure function of the caller's grants, the
//! operation, the object and the organisations it names (no I/O: the caller looks the
//! organisations up first). Upstream's rules (`mc/orm/*.mc2.go`, `authorized` +
//! `withRequiresOrg`):
//!
//! | kind | resource | organisation |
//! |---|---|---|
//! | App | `apps` | `key.organization` (developer) |
//! | ClusterInst | `clusterinsts` | `key.organization` (developer) |
//! | AppInst | `appinsts` | `key.organization` (developer); its `app` must be of the same org |
//! | Cloudlet, OperatorCode | `cloudlets` | `key.organization` / `organization` (operator) |
//! | CloudletInfo | `cloudletanalytics` to view, `cloudlets` to manage | `key.organization` (operator) |
//! | Flavor | `flavors` (manage); viewing is open to every logged-in user | "" (admins) |
//! | Settings | `config` | "" (admins) |
//!
//! Order of the checks, as upstream: the permission first (403 naming what is missing), then
//! the organisation: it must exist (400 naming it; a non-admin never gets here for an unknown
//! organisation, since nobody holds a role there, so organisation names cannot be fished
//! for), not be being deleted (400), and be of the resource's type (400). An AppInst using
//! another organisation's app is 403 naming both. The cloudlet of a ClusterInst or AppInst
//! may be any operator's: operators' cloudlets serve developers.

use std::collections::HashMap;

use edge_api::pb::{self, object::Obj, object_key::Key};

use crate::model::{Org, name_key};
use crate::rbac::{
    Action, AuthorizedOrgs, Grants, Owner, Resource, Subject, authorized_orgs, check_app_org,
    check_org_type, enforce,
};
use crate::server::error::ApiError;

/// An operation on one object, as the enforcer needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
    pub kind: pb::ObjectKind,
    /// The object's organisation ("" for flavors and settings).
    pub org: String,
    /// For an AppInst: the organisation of the app it runs (empty: not given).
    pub app_org: String,
    /// For an update or delete of an OperatorCode: the organisation that owns it now (whose
    /// rights are needed too, so that nobody takes over another's code).
    pub current_org: Option<String>,
}

/// The resource a kind's objects are authorised as.
pub fn resource(kind: pb::ObjectKind, action: Action) -> Option<Resource> {
    use pb::ObjectKind as K;
    Some(match kind {
        K::App => Resource::Apps,
        K::ClusterInst => Resource::ClusterInsts,
        K::AppInst => Resource::AppInsts,
        K::Cloudlet | K::OperatorCode => Resource::Cloudlets,
        K::CloudletInfo if action == Action::View => Resource::CloudletAnalytics,
        K::CloudletInfo => Resource::Cloudlets,
        K::Flavor => Resource::Flavors,
        K::Settings => Resource::Config,
        K::Unspecified => return None,
    })
}

/// The kind and organisation of an object (what its key names).
pub fn object_org(o: &pb::Object) -> Option<(pb::ObjectKind, &str)> {
    use pb::ObjectKind as K;
    Some(match o.obj.as_ref()? {
        Obj::OperatorCode(c) => (K::OperatorCode, c.organization.as_str()),
        Obj::Flavor(_) => (K::Flavor, ""),
        Obj::Settings(_) => (K::Settings, ""),
        Obj::Cloudlet(c) => (K::Cloudlet, key_org(&c.key)),
        Obj::CloudletInfo(c) => (K::CloudletInfo, key_org(&c.key)),
        Obj::App(a) => (K::App, a.key.as_ref().map_or("", |k| &k.organization)),
        Obj::ClusterInst(c) => (
            K::ClusterInst,
            c.key.as_ref().map_or("", |k| &k.organization),
        ),
        Obj::AppInst(i) => (K::AppInst, i.key.as_ref().map_or("", |k| &k.organization)),
    })
}

fn key_org(k: &Option<pb::CloudletKey>) -> &str {
    k.as_ref().map_or("", |k| &k.organization)
}

/// The kind and organisation a key names (`None` for an operator code's: its key is the code
/// alone, its organisation a field of the stored object).
pub fn key_org_of(k: &pb::ObjectKey) -> Option<(pb::ObjectKind, Option<&str>)> {
    use pb::ObjectKind as K;
    Some(match k.key.as_ref()? {
        Key::OperatorCode(_) => (K::OperatorCode, None),
        Key::Flavor(_) => (K::Flavor, Some("")),
        Key::Settings(_) => (K::Settings, Some("")),
        Key::Cloudlet(c) => (K::Cloudlet, Some(&c.organization)),
        Key::CloudletInfo(c) => (K::CloudletInfo, Some(&c.organization)),
        Key::App(a) => (K::App, Some(&a.organization)),
        Key::ClusterInst(c) => (K::ClusterInst, Some(&c.organization)),
        Key::AppInst(i) => (K::AppInst, Some(&i.organization)),
    })
}

/// A create or update of `o` (`current_org`: see [`Request`]).
pub fn manage_object(o: &pb::Object, current_org: Option<String>) -> Result<Request, ApiError> {
    let (kind, org) =
        object_org(o).ok_or_else(|| ApiError::bad_request("object: required, with one kind"))?;
    let app_org = match &o.obj {
        Some(Obj::AppInst(i)) => i.app.as_ref().map_or("", |a| &a.organization),
        _ => "",
    };
    Ok(Request {
        action: Action::Manage,
        kind,
        org: org.to_string(),
        app_org: app_org.to_string(),
        current_org,
    })
}

/// What the organisation lookup returns: the organisations named, by [`name_key`].
pub type Orgs = HashMap<String, Org>;

fn forbidden(reason: &str) -> ApiError {
    ApiError::forbidden(format!("Forbidden: {reason}"))
}

/// Allows `req` for `subject`, or says why not (403 for a missing permission or a foreign
/// app, 400 for an organisation that is unknown, being deleted, missing or of the wrong type).
pub fn authorize(
    grants: &Grants,
    subject: Subject<'_>,
    req: &Request,
    orgs: &Orgs,
) -> Result<(), ApiError> {
    let resource = resource(req.kind, req.action)
        .ok_or_else(|| ApiError::bad_request("object: a kind is required"))?;
    let admin_only = resource.owner() == Owner::Admin;
    if admin_only && !req.org.is_empty() {
        // Flavors and settings have no organisation; a caller naming one is confused.
        return Err(ApiError::bad_request(format!(
            "{resource} belong to no organisation, not {}",
            req.org
        )));
    }
    if !admin_only && req.org.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{kind:?}: the organization is required",
            kind = req.kind
        )));
    }
    let mut check = vec![req.org.as_str()];
    check.extend(
        req.current_org
            .as_deref()
            .filter(|c| !c.eq_ignore_ascii_case(&req.org)),
    );
    for org in check {
        if let crate::rbac::Decision::Deny { reason } =
            enforce(grants, subject, org, resource, req.action)
        {
            return Err(forbidden(&reason));
        }
        if !admin_only {
            org_fits(resource, org, orgs)?;
        }
    }
    if req.kind == pb::ObjectKind::AppInst && !req.app_org.is_empty() {
        check_app_org(&req.org, &req.app_org).map_err(|e| forbidden(&e.to_string()))?;
    }
    Ok(())
}

/// The organisation exists, is not being deleted, and is of the resource's type.
fn org_fits(resource: Resource, org: &str, orgs: &Orgs) -> Result<(), ApiError> {
    let o = orgs
        .get(&name_key(org))
        .ok_or_else(|| ApiError::bad_request(format!("organization {org} not found")))?;
    if o.delete_in_progress {
        return Err(ApiError::bad_request(format!(
            "organization {} is being deleted",
            o.name
        )));
    }
    check_org_type(resource, Some((&o.name, o.org_type)))
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Which objects of a show the caller may see: per kind, the organisations where it holds the
/// view right. Flavors are visible to all; every cloudlet (and its info) is visible to a
/// developer (there are no private cloudlet pools in Edgeplane: every cloudlet is public, as
/// upstream shows public cloudlets to every developer).
pub struct ShowScope {
    by_kind: Vec<(pb::ObjectKind, AuthorizedOrgs)>,
    developer: bool,
}

impl ShowScope {
    pub fn new(grants: &Grants, subject: Subject<'_>, orgs: &Orgs) -> ShowScope {
        use pb::ObjectKind as K;
        let kinds = [
            K::OperatorCode,
            K::Settings,
            K::Cloudlet,
            K::CloudletInfo,
            K::App,
            K::ClusterInst,
            K::AppInst,
        ];
        let by_kind: Vec<_> = kinds
            .iter()
            .filter_map(|&k| {
                let r = resource(k, Action::View)?;
                Some((k, authorized_orgs(grants, subject, r, Action::View)))
            })
            .collect();
        // A developer: holds cloudlets:view (the developer roles' read of cloudlets) in a
        // developer organisation.
        let developer = match authorized_orgs(grants, subject, Resource::Cloudlets, Action::View) {
            AuthorizedOrgs::All => true,
            AuthorizedOrgs::Orgs(set) => set.iter().any(|o| {
                orgs.get(&name_key(o))
                    .is_some_and(|o| o.org_type == crate::model::OrgType::Developer)
            }),
        };
        ShowScope { by_kind, developer }
    }

    fn orgs(&self, kind: pb::ObjectKind) -> Option<&AuthorizedOrgs> {
        self.by_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| a)
    }

    /// Whether the caller may view any object of `kind` at all (a show of a kind seen
    /// nowhere is 403, as upstream).
    pub fn any(&self, kind: pb::ObjectKind) -> bool {
        use pb::ObjectKind as K;
        match kind {
            K::Unspecified | K::Flavor => true,
            K::Cloudlet | K::CloudletInfo if self.developer => true,
            k => match self.orgs(k) {
                Some(AuthorizedOrgs::All) => true,
                Some(AuthorizedOrgs::Orgs(s)) => !s.is_empty(),
                None => false,
            },
        }
    }

    /// Whether the caller may see `o`.
    pub fn allows(&self, o: &pb::Object) -> bool {
        use pb::ObjectKind as K;
        let Some((kind, org)) = object_org(o) else {
            return false;
        };
        match kind {
            K::Flavor => true,
            K::Cloudlet | K::CloudletInfo if self.developer => true,
            k => match self.orgs(k) {
                Some(AuthorizedOrgs::All) => true,
                Some(AuthorizedOrgs::Orgs(s)) => {
                    !org.is_empty() && s.iter().any(|a| a.eq_ignore_ascii_case(org))
                }
                None => false,
            },
        }
    }
}

#[cfg(test)]
#[path = "authz_tests.rs"]
mod tests;
