use std::collections::BTreeSet;

use super::*;
use crate::model::{ApiKey, Grant, OrgType};

mod oracle;

use Action::{Manage as M, View as V};
use Resource as R;

fn grant(subject: &str, org: &str, role: Role) -> Grant {
    Grant {
        subject: subject.into(),
        org: org.into(),
        role: role.to_string(),
    }
}

fn api_key(id: &str, org: &str, user: &str, perms: &[(&str, &str)]) -> ApiKey {
    ApiKey {
        id: id.into(),
        org: org.into(),
        username: user.into(),
        description: String::new(),
        secret_hash: String::new(),
        permissions: perms
            .iter()
            .map(|(r, a)| (r.to_string(), a.to_string()))
            .collect(),
        created_at: 0,
    }
}

/// Two developer orgs (DevA, DevB), two operator orgs (OpA, OpB), admins.
fn fixture_grants() -> Vec<Grant> {
    use Role::*;
    vec![
        grant("mexadmin", "", AdminManager),
        grant("adminview", "", AdminViewer),
        grant("admincontrib", "", AdminContributor),
        grant("mgrA", "DevA", DeveloperManager),
        grant("mgrA2", "DevA", DeveloperManager),
        grant("contribA", "DevA", DeveloperContributor),
        grant("viewA", "DevA", DeveloperViewer),
        grant("mgrB", "DevB", DeveloperManager),
        grant("opmgrA", "OpA", OperatorManager),
        grant("opcontribA", "OpA", OperatorContributor),
        grant("opviewA", "OpA", OperatorViewer),
        grant("opmgrB", "OpB", OperatorManager),
        // One user in two orgs with different roles.
        grant("multi", "DevA", DeveloperViewer),
        grant("multi", "DevB", DeveloperContributor),
    ]
}

fn fixture() -> Grants {
    let keys = vec![
        api_key("key-view", "DevA", "mgrA", &[("apps", "view")]),
        api_key("key-manage", "DevA", "mgrA", &[("appinsts", "manage")]),
        // Declared beyond what the creator holds (not via check_key_permissions): capped.
        api_key("key-forged", "DevA", "viewA", &[("apps", "manage")]),
        api_key("key-bad", "DevA", "mgrA", &[("apps", "destroy")]),
    ];
    Grants::new(&fixture_grants(), &keys)
}

fn user(name: &str) -> Subject<'_> {
    Subject::User(name)
}

#[test]
fn grant_table_is_upstreams() {
    assert_eq!(Role::ALL.len(), 10);
    assert_eq!(Resource::ALL.len(), 18);
    assert_eq!(policies().len(), 163, "upstream's InitRolePerms count");
    // Manage always comes with view.
    for (role, p) in policies() {
        if p.action == M {
            assert!(role.permissions().contains(Permission::new(p.resource, V)));
        }
    }
    for r in Role::ALL {
        assert_eq!(r.to_string().parse::<Role>(), Ok(*r));
    }
    for r in Resource::ALL {
        assert_eq!(r.as_str().parse::<Resource>(), Ok(*r));
    }
    assert!("developermanager".parse::<Role>().is_err());
    assert_eq!(
        "apps:destroy".parse::<Action>().unwrap_err().to_string(),
        "invalid action \"apps:destroy\""
    );
    // Region-wide objects are AdminManager's only.
    for r in [R::Controllers, R::Config] {
        for role in Role::ALL {
            let has = role.permissions().contains(Permission::new(r, V));
            assert_eq!(has, *role == Role::AdminManager, "{role} {r}");
        }
    }
}

#[test]
fn enforce_table() {
    let g = fixture();
    #[rustfmt::skip]
    let rows: &[(&str, &str, Resource, Action, bool)] = &[
        // Developer roles on apps / appinsts in their own org...
        ("mgrA", "DevA", R::Apps, M, true),
        ("mgrA", "DevA", R::AppInsts, M, true),
        ("contribA", "DevA", R::Apps, M, true),
        ("contribA", "DevA", R::AppInsts, V, true),
        ("viewA", "DevA", R::Apps, V, true),
        ("viewA", "DevA", R::Apps, M, false),
        ("viewA", "DevA", R::AppInsts, M, false),
        // ... and not in the other developer org.
        ("mgrA", "DevB", R::Apps, V, false),
        ("contribA", "DevB", R::AppInsts, M, false),
        ("viewA", "DevB", R::Apps, V, false),
        ("mgrB", "DevB", R::Apps, M, true),
        ("mgrB", "DevA", R::Apps, V, false),
        // One user, two orgs, two roles.
        ("multi", "DevA", R::Apps, M, false),
        ("multi", "DevA", R::Apps, V, true),
        ("multi", "DevB", R::Apps, M, true),
        // No role at all.
        ("nobody", "DevA", R::Apps, V, false),
        ("nobody", "", R::Flavors, V, false),
        // Membership.
        ("mgrA", "DevA", R::Users, M, true),
        ("contribA", "DevA", R::Users, M, false),
        ("contribA", "DevA", R::Users, V, true),
        // Developers see cloudlets and flavors (scoped to their org) but manage neither.
        ("viewA", "DevA", R::Cloudlets, V, true),
        ("mgrA", "DevA", R::Cloudlets, M, false),
        ("mgrA", "DevA", R::Flavors, V, true),
        ("mgrA", "DevA", R::Flavors, M, false),
        // Billing.
        ("mgrA", "DevA", R::Billing, M, true),
        ("contribA", "DevA", R::Billing, V, false),
        // Operators on cloudlets across two operator orgs.
        ("opmgrA", "OpA", R::Cloudlets, M, true),
        ("opcontribA", "OpA", R::Cloudlets, M, true),
        ("opviewA", "OpA", R::Cloudlets, V, true),
        ("opviewA", "OpA", R::Cloudlets, M, false),
        ("opmgrA", "OpB", R::Cloudlets, V, false),
        ("opmgrB", "OpA", R::Cloudlets, M, false),
        ("opmgrB", "OpB", R::CloudletPools, M, true),
        ("opmgrA", "OpA", R::Apps, V, false),
        ("opmgrA", "OpA", R::Alert, M, true),
        // Admin-only objects (org "").
        ("mexadmin", "", R::Flavors, M, true),
        ("mexadmin", "", R::Config, M, true),
        ("mexadmin", "", R::Controllers, M, true),
        ("adminview", "", R::Config, V, false),
        ("admincontrib", "", R::Flavors, M, false),
        ("mgrA", "", R::Flavors, M, false),
        ("mgrA", "", R::Apps, V, false),
        ("opmgrA", "", R::Cloudlets, V, false),
        // An admin grant holds in every org, with its role's permissions.
        ("mexadmin", "DevA", R::Apps, M, true),
        ("mexadmin", "OpB", R::Cloudlets, M, true),
        ("mexadmin", "NoSuchOrg", R::Apps, M, true),
        ("adminview", "DevB", R::Apps, V, true),
        ("adminview", "DevB", R::Apps, M, false),
        ("admincontrib", "OpA", R::Cloudlets, M, true),
        ("admincontrib", "OpA", R::Users, M, false),
        // Names compare ignoring ASCII case.
        ("MGRA", "deva", R::Apps, M, true),
    ];
    for &(sub, org, res, act, want) in rows {
        let d = enforce(&g, user(sub), org, res, act);
        assert_eq!(d.is_allowed(), want, "{sub} {org} {res}:{act} → {d:?}");
    }
}

#[test]
fn deny_reasons_name_what_is_missing() {
    let g = fixture();
    let reason = |s, o, r, a| match enforce(&g, s, o, r, a) {
        Decision::Deny { reason } => reason,
        Decision::Allow => panic!("allowed"),
    };
    assert_eq!(
        reason(user("viewA"), "DevA", R::Apps, M),
        "user viewA lacks apps:manage in organisation DevA: holds only DeveloperViewer"
    );
    assert_eq!(
        reason(user("nobody"), "DevB", R::Apps, V),
        "user nobody lacks apps:view in organisation DevB: has no role in organisation DevB"
    );
    assert_eq!(
        reason(user("mgrA"), "", R::Config, V),
        "user mgrA lacks config:view in the empty (admin) organisation \"\": has no role in the \
         empty (admin) organisation \"\""
    );
    assert_eq!(
        reason(user("adminview"), "", R::Config, V),
        "user adminview lacks config:view in the empty (admin) organisation \"\": holds only \
         AdminViewer"
    );
    assert_eq!(
        reason(user("adminview"), "DevA", R::Apps, M),
        "user adminview lacks apps:manage in organisation DevA: holds only AdminViewer"
    );
    assert_eq!(
        reason(Subject::Key("key-view"), "DevB", R::Apps, V),
        "API key key-view lacks apps:view in organisation DevB: it acts only in organisation DevA"
    );
    assert_eq!(
        reason(Subject::Key("key-view"), "DevA", R::Apps, M),
        "API key key-view lacks apps:manage in organisation DevA: not among its permissions"
    );
    assert_eq!(
        reason(Subject::Key("key-forged"), "DevA", R::Apps, M),
        "API key key-forged lacks apps:manage in organisation DevA: its creator no longer holds \
         it there"
    );
    assert_eq!(
        reason(Subject::Key("nokey"), "DevA", R::Apps, V),
        "API key nokey is unknown"
    );
}

#[test]
fn keys_act_with_their_own_permissions_only() {
    let g = fixture();
    let key = Subject::Key;
    assert!(enforce(&g, key("key-view"), "DevA", R::Apps, V).is_allowed());
    assert!(!enforce(&g, key("key-view"), "DevA", R::Apps, M).is_allowed());
    // Not the creator's other rights.
    assert!(!enforce(&g, key("key-view"), "DevA", R::Users, M).is_allowed());
    // manage implies view.
    assert!(enforce(&g, key("key-manage"), "DevA", R::AppInsts, V).is_allowed());
    assert!(enforce(&g, key("key-manage"), "deva", R::AppInsts, M).is_allowed());
    // Capped by the creator's rights; unparsable permissions give nothing.
    assert!(!enforce(&g, key("key-forged"), "DevA", R::Apps, M).is_allowed());
    assert!(enforce(&g, key("key-forged"), "DevA", R::Apps, V).is_allowed());
    assert!(!enforce(&g, key("key-bad"), "DevA", R::Apps, V).is_allowed());
    // A key id is not a user name, and a user name is not a key.
    assert!(!enforce(&g, user("key-view"), "DevA", R::Apps, V).is_allowed());
    assert!(!enforce(&g, key("mgrA"), "DevA", R::Apps, V).is_allowed());
    // The creator loses the role: so does the key.
    let grants: Vec<Grant> = fixture_grants()
        .into_iter()
        .filter(|g| g.subject != "mgrA")
        .collect();
    let keys = [api_key("key-view", "DevA", "mgrA", &[("apps", "view")])];
    let g2 = Grants::new(&grants, &keys);
    assert!(!enforce(&g2, key("key-view"), "DevA", R::Apps, V).is_allowed());
}

#[test]
fn authorized_orgs_for_shows() {
    let g = fixture();
    let orgs = |s: &[&str]| AuthorizedOrgs::Orgs(s.iter().map(|x| x.to_string()).collect());
    assert_eq!(
        authorized_orgs(&g, user("multi"), R::Apps, V),
        orgs(&["DevA", "DevB"])
    );
    assert_eq!(
        authorized_orgs(&g, user("multi"), R::Apps, M),
        orgs(&["DevB"])
    );
    assert_eq!(
        authorized_orgs(&g, user("viewA"), R::Cloudlets, V),
        orgs(&["DevA"])
    );
    assert_eq!(authorized_orgs(&g, user("nobody"), R::Apps, V), orgs(&[]));
    assert_eq!(
        authorized_orgs(&g, user("adminview"), R::Apps, V),
        AuthorizedOrgs::All
    );
    assert_eq!(
        authorized_orgs(&g, user("adminview"), R::Apps, M),
        orgs(&[])
    );
    assert_eq!(
        authorized_orgs(&g, Subject::Key("key-manage"), R::AppInsts, V),
        orgs(&["DevA"])
    );
    assert_eq!(
        authorized_orgs(&g, Subject::Key("key-manage"), R::Apps, V),
        orgs(&[])
    );
}

#[test]
fn malformed_grants_are_left_out() {
    use Role::*;
    let bad = vec![
        grant("x", "DevA", AdminManager),
        grant("y", "", DeveloperManager),
        Grant {
            subject: "z".into(),
            org: "DevA".into(),
            role: "Superuser".into(),
        },
    ];
    let g = Grants::new(&bad, &[]);
    assert_eq!(g.rejected(), &bad[..]);
    assert!(!enforce(&g, user("x"), "DevA", R::Apps, V).is_allowed());
    assert!(!enforce(&g, user("y"), "DevA", R::Apps, V).is_allowed());
    assert!(!enforce(&g, user("y"), "", R::Apps, V).is_allowed());
}

#[test]
fn org_types_of_resources() {
    let dev = Some(("DevA", OrgType::Developer));
    let op = Some(("OpA", OrgType::Operator));
    assert_eq!(check_org_type(R::Apps, dev), Ok(()));
    assert_eq!(
        check_org_type(R::Apps, op).unwrap_err().to_string(),
        "Operation for org OpA only allowed for orgs of type developer"
    );
    assert_eq!(check_org_type(R::Cloudlets, op), Ok(()));
    assert_eq!(
        check_org_type(R::Cloudlets, dev).unwrap_err().to_string(),
        "Operation for org DevA only allowed for orgs of type operator"
    );
    assert!(check_org_type(R::Cloudlets, None).is_err());
    assert_eq!(check_org_type(R::Alert, dev), Ok(()));
    assert_eq!(check_org_type(R::Alert, op), Ok(()));
    for r in [R::Flavors, R::Config, R::Controllers, R::ClusterFlavors] {
        assert_eq!(check_org_type(r, None), Ok(()));
        assert!(check_org_type(r, dev).is_err());
        assert!(check_org_type(r, op).is_err());
    }
    assert_eq!(check_org_type(R::Users, None), Ok(()));
    assert_eq!(check_org_type(R::Users, op), Ok(()));
}

#[test]
fn app_instances_use_their_own_orgs_apps() {
    assert_eq!(check_app_org("DevA", "DevA"), Ok(()));
    assert_eq!(check_app_org("DevA", "deva"), Ok(()));
    assert_eq!(
        check_app_org("DevA", "DevB").unwrap_err().to_string(),
        "AppInst of organization DevA may only use its own organization's apps, not one of DevB"
    );
}

#[test]
fn grant_rules() {
    use Role::*;
    let g = fixture();
    let dev_a = Some(("DevA", OrgType::Developer));
    let dev_b = Some(("DevB", OrgType::Developer));
    let op_a = Some(("OpA", OrgType::Operator));
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<(&'a str, OrgType)>,
        Role,
        Result<(), &'a str>,
    );
    let cases: &[Case<'_>] = &[
        ("mgrA", "new", dev_a, DeveloperViewer, Ok(())),
        ("mgrA", "new", dev_a, DeveloperManager, Ok(())),
        ("mexadmin", "new", dev_a, DeveloperContributor, Ok(())),
        ("mexadmin", "new", None, AdminViewer, Ok(())),
        ("opmgrA", "new", op_a, OperatorViewer, Ok(())),
        // Admin roles only on "", other roles need an org.
        (
            "mexadmin",
            "new",
            dev_a,
            AdminManager,
            Err("Admin roles cannot be associated with an org, please specify the empty org \"\""),
        ),
        (
            "mexadmin",
            "new",
            None,
            DeveloperManager,
            Err("Org name must be specified for the specified role"),
        ),
        // Org type must fit the role, even for an admin.
        (
            "mexadmin",
            "new",
            op_a,
            DeveloperViewer,
            Err("Can only assign operator roles for operator organization"),
        ),
        (
            "mexadmin",
            "new",
            dev_a,
            OperatorViewer,
            Err("Can only assign developer roles for developer organization"),
        ),
        (
            "mexadmin",
            "new",
            dev_a,
            BillingManager,
            Err("BillingManager needs a billing organization, which Edgeplane does not have"),
        ),
        // Grants by non-managers, managers of other orgs, non-admins on "".
        (
            "contribA",
            "new",
            dev_a,
            DeveloperViewer,
            Err(
                "Forbidden: user contribA lacks users:manage in organisation DevA: holds only DeveloperContributor",
            ),
        ),
        (
            "viewA",
            "new",
            dev_a,
            DeveloperViewer,
            Err(
                "Forbidden: user viewA lacks users:manage in organisation DevA: holds only DeveloperViewer",
            ),
        ),
        (
            "mgrB",
            "new",
            dev_a,
            DeveloperViewer,
            Err(
                "Forbidden: user mgrB lacks users:manage in organisation DevA: has no role in organisation DevA",
            ),
        ),
        (
            "mgrA",
            "mgrA",
            None,
            AdminManager,
            Err(
                "Forbidden: user mgrA lacks users:manage in the empty (admin) organisation \"\": has no role in the empty (admin) organisation \"\"",
            ),
        ),
        (
            "admincontrib",
            "new",
            dev_a,
            DeveloperViewer,
            Err(
                "Forbidden: user admincontrib lacks users:manage in organisation DevA: holds only AdminContributor",
            ),
        ),
        // One role per (subject, org).
        (
            "mgrA",
            "viewA",
            dev_a,
            DeveloperManager,
            Err("User viewA already has a role DeveloperViewer in org \"DevA\""),
        ),
        (
            "mgrA",
            "VIEWA",
            dev_a,
            DeveloperManager,
            Err("User VIEWA already has a role DeveloperViewer in org \"DevA\""),
        ),
        ("mgrB", "viewA", dev_b, DeveloperViewer, Ok(())),
        (
            "mexadmin",
            "adminview",
            None,
            AdminManager,
            Err("User adminview already has a role AdminViewer in org \"\""),
        ),
    ];
    for (granter, subject, org, role, want) in cases {
        let got = can_grant(&g, user(granter), subject, *org, *role).map_err(|e| e.to_string());
        assert_eq!(
            got,
            want.map_err(str::to_string),
            "{granter} gives {subject} {role} in {org:?}"
        );
    }
    // Keys hold users:manage only if given it.
    let keys = [api_key("k", "DevA", "mgrA", &[("users", "manage")])];
    let g2 = Grants::new(&fixture_grants(), &keys);
    assert_eq!(
        can_grant(&g2, Subject::Key("k"), "new", dev_a, DeveloperViewer),
        Ok(())
    );
    let err = can_grant(&g2, Subject::Key("k"), "new", dev_b, DeveloperViewer).unwrap_err();
    assert_eq!(err.status(), 403);
    assert_eq!(GrantError::OrgRequired.status(), 400);
}

#[test]
fn removal_rules() {
    use Role::*;
    let g = fixture();
    // DevA has two managers: either may go, even by their own hand.
    assert_eq!(
        can_remove(&g, user("mgrA"), "mgrA2", "DevA", DeveloperManager),
        Ok(Removal::Remove)
    );
    assert_eq!(
        can_remove(&g, user("mgrA"), "mgrA", "DevA", DeveloperManager),
        Ok(Removal::Remove)
    );
    // DevB has one: not even an admin may remove them, nor may they remove themselves.
    let last = Err(GrantError::LastManager);
    assert_eq!(
        can_remove(&g, user("mgrB"), "mgrB", "DevB", DeveloperManager),
        last.clone()
    );
    assert_eq!(
        can_remove(&g, user("mexadmin"), "mgrB", "DevB", DeveloperManager),
        last.clone()
    );
    assert_eq!(
        can_remove(&g, user("opmgrA"), "opmgrA", "OpA", OperatorManager),
        last.clone()
    );
    assert_eq!(
        can_remove(&g, user("mexadmin"), "mexadmin", "", AdminManager),
        last.clone()
    );
    assert_eq!(
        GrantError::LastManager.to_string(),
        "Error: Cannot remove the last remaining manager of an org"
    );
    // Other roles go freely; absent roles are not an error.
    assert_eq!(
        can_remove(&g, user("mgrA"), "viewA", "DevA", DeveloperViewer),
        Ok(Removal::Remove)
    );
    assert_eq!(
        can_remove(&g, user("mgrA"), "viewA", "DevA", DeveloperManager),
        Ok(Removal::Absent)
    );
    assert_eq!(
        can_remove(&g, user("mgrA"), "ghost", "DevA", DeveloperViewer),
        Ok(Removal::Absent)
    );
    assert_eq!(
        can_remove(&g, user("mexadmin"), "adminview", "", AdminViewer),
        Ok(Removal::Remove)
    );
    // Non-managers may not remove anyone, themselves included.
    let e = can_remove(&g, user("contribA"), "viewA", "DevA", DeveloperViewer).unwrap_err();
    assert_eq!(e.status(), 403);
    assert!(can_remove(&g, user("viewA"), "viewA", "DevA", DeveloperViewer).is_err());
    assert!(can_remove(&g, user("mgrB"), "viewA", "DevA", DeveloperViewer).is_err());
    // With a second AdminManager, the first may go.
    let mut grants = fixture_grants();
    grants.push(grant("root2", "", AdminManager));
    let g2 = Grants::new(&grants, &[]);
    assert_eq!(
        can_remove(&g2, user("root2"), "mexadmin", "", AdminManager),
        Ok(Removal::Remove)
    );
}

#[test]
fn key_permissions_are_a_subset_of_the_creators() {
    let g = fixture();
    let p = |r, a| Permission::new(r, a);
    // manage adds view; duplicates collapse; sorted.
    assert_eq!(
        check_key_permissions(&g, "mgrA", "DevA", &[("apps", "manage"), ("apps", "view")]),
        Ok(vec![p(R::Apps, V), p(R::Apps, M)])
    );
    assert_eq!(
        check_key_permissions(&g, "viewA", "DevA", &[("appinsts", "view")]),
        Ok(vec![p(R::AppInsts, V)])
    );
    // Admins may make keys in any org with their rights there.
    assert!(check_key_permissions(&g, "mexadmin", "OpA", &[("cloudlets", "manage")]).is_ok());
    let err = |user, org, req: &[(&str, &str)]| {
        check_key_permissions(&g, user, org, req)
            .unwrap_err()
            .to_string()
    };
    // Escalation attempts.
    assert_eq!(
        err("viewA", "DevA", &[("apps", "manage")]),
        "Invalid permission specified: [apps:manage]"
    );
    assert_eq!(
        err(
            "contribA",
            "DevA",
            &[("apps", "manage"), ("users", "manage"), ("config", "view")]
        ),
        "Invalid permission specified: [users:manage, config:view]"
    );
    assert_eq!(
        err("mgrA", "DevB", &[("apps", "view")]),
        "Invalid permission specified: [apps:view]"
    );
    assert_eq!(
        err("mgrA", "DevA", &[("cloudlets", "manage")]),
        "Invalid permission specified: [cloudlets:manage]"
    );
    assert_eq!(
        err("adminview", "DevA", &[("apps", "manage")]),
        "Invalid permission specified: [apps:manage]"
    );
    // Malformed requests.
    assert_eq!(err("mgrA", "DevA", &[]), "No permissions specified");
    assert_eq!(
        err("mgrA", "DevA", &[("apps", "delete")]),
        "Invalid action \"delete\", must be view or manage"
    );
    assert_eq!(
        err("mgrA", "DevA", &[("aps", "view")]),
        "Invalid resource \"aps\""
    );
    assert!(err("mexadmin", "", &[("config", "view")]).starts_with("Invalid org specified"));
    // What it returns is what the key gets.
    let perms = check_key_permissions(&g, "mgrA", "DevA", &[("apps", "manage")]).unwrap();
    let model = to_model(&perms);
    assert_eq!(
        model,
        vec![
            ("apps".into(), "view".into()),
            ("apps".into(), "manage".into())
        ]
    );
    let refs: Vec<(&str, &str)> = model
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let k = api_key("k1", "DevA", "mgrA", &refs);
    let g2 = Grants::new(&fixture_grants(), &[k]);
    let got: BTreeSet<Permission> = g2.perms(Subject::Key("k1"), "DevA").iter().collect();
    assert_eq!(got, perms.into_iter().collect());
}

#[test]
fn names_beyond_the_stack_buffer_fold_too() {
    let long_org = format!("Org{}", "X".repeat(70));
    let g = Grants::new(&[grant("Alice", &long_org, Role::DeveloperViewer)], &[]);
    let lower = long_org.to_ascii_lowercase();
    assert!(enforce(&g, user("ALICE"), &lower, R::Apps, V).is_allowed());
    assert!(enforce(&g, user("alice"), &long_org, R::Apps, V).is_allowed());
    assert!(!enforce(&g, user("alice"), &long_org[..60], R::Apps, V).is_allowed());
}
