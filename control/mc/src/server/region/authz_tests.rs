//! Table tests of the region authorisation, without I/O.

use super::*;
use crate::model::{ApiKey, Grant, OrgType};
use pb::ObjectKind as K;

fn grants() -> Grants {
    let g = |s: &str, o: &str, r: &str| Grant {
        subject: s.into(),
        org: o.into(),
        role: r.into(),
    };
    let key = ApiKey {
        id: "key1".into(),
        org: "devA".into(),
        username: "dm".into(),
        description: String::new(),
        secret_hash: String::new(),
        permissions: vec![("appinsts".into(), "manage".into())],
        created_at: 0,
    };
    Grants::new(
        &[
            g("admin", "", "AdminManager"),
            g("aview", "", "AdminViewer"),
            g("dm", "devA", "DeveloperManager"),
            g("dc", "devA", "DeveloperContributor"),
            g("dv", "devA", "DeveloperViewer"),
            g("om", "opA", "OperatorManager"),
            g("ov", "opA", "OperatorViewer"),
            g("stale", "gone", "DeveloperManager"),
        ],
        &[key],
    )
}

fn orgs() -> Orgs {
    let o = |n: &str, t: OrgType, deleting: bool| {
        (
            name_key(n),
            Org {
                name: n.into(),
                org_type: t,
                delete_in_progress: deleting,
                created_at: 0,
            },
        )
    };
    [
        o("devA", OrgType::Developer, false),
        o("devB", OrgType::Developer, false),
        o("opA", OrgType::Operator, false),
        o("opB", OrgType::Operator, false),
        o("gone", OrgType::Developer, true),
    ]
    .into_iter()
    .collect()
}

fn req(action: Action, kind: K, org: &str) -> Request {
    Request {
        action,
        kind,
        org: org.into(),
        app_org: String::new(),
        current_org: None,
    }
}

const M: Action = Action::Manage;
const V: Action = Action::View;

/// (user, request, expected status: 200 allowed, else the refusal's, and a word of its message).
fn check(rows: &[(&str, Request, u16, &str)]) {
    let (g, o) = (grants(), orgs());
    for (user, r, want, word) in rows {
        let got = authorize(&g, Subject::User(user), r, &o);
        let (status, msg) = match &got {
            Ok(()) => (200, String::new()),
            Err(e) => (e.status.as_u16(), e.message.clone()),
        };
        assert_eq!(status, *want, "{user} {r:?}: {msg}");
        assert!(msg.contains(word), "{user} {r:?}: {msg:?} lacks {word:?}");
    }
}

#[test]
fn developer_roles_on_apps_and_instances() {
    check(&[
        ("dm", req(M, K::App, "devA"), 200, ""),
        ("dc", req(M, K::App, "devA"), 200, ""),
        ("dv", req(M, K::App, "devA"), 403, "apps:manage"),
        ("dv", req(V, K::App, "devA"), 200, ""),
        ("nobody", req(V, K::App, "devA"), 403, "has no role"),
        ("dm", req(M, K::App, "devB"), 403, "devB"),
        ("dm", req(M, K::AppInst, "devA"), 200, ""),
        ("dv", req(M, K::AppInst, "devA"), 403, "appinsts:manage"),
        ("dc", req(M, K::ClusterInst, "devA"), 200, ""),
        ("dm", req(M, K::ClusterInst, "devB"), 403, "devB"),
        ("admin", req(M, K::AppInst, "devB"), 200, ""),
        ("aview", req(M, K::App, "devB"), 403, "apps:manage"),
        ("aview", req(V, K::App, "devB"), 200, ""),
    ]);
}

#[test]
fn operators_on_cloudlets_and_operator_codes() {
    check(&[
        ("om", req(M, K::Cloudlet, "opA"), 200, ""),
        ("om", req(M, K::OperatorCode, "opA"), 200, ""),
        ("ov", req(M, K::Cloudlet, "opA"), 403, "cloudlets:manage"),
        ("om", req(M, K::Cloudlet, "opB"), 403, "opB"),
        ("om", req(V, K::CloudletInfo, "opA"), 200, ""),
        ("dm", req(M, K::Cloudlet, "opA"), 403, "opA"),
        ("admin", req(M, K::OperatorCode, "opB"), 200, ""),
    ]);
}

#[test]
fn operator_code_owner_must_be_authorised_too() {
    let mut r = req(M, K::OperatorCode, "opA");
    r.current_org = Some("opB".into());
    check(&[("om", r.clone(), 403, "opB")]);
    r.current_org = Some("OPA".into());
    check(&[("om", r, 200, "")]);
}

#[test]
fn flavors_and_settings_are_for_admins() {
    check(&[
        ("admin", req(M, K::Flavor, ""), 200, ""),
        ("admin", req(M, K::Settings, ""), 200, ""),
        ("dm", req(M, K::Flavor, ""), 403, "flavors:manage"),
        ("om", req(M, K::Settings, ""), 403, "config:manage"),
        ("aview", req(M, K::Flavor, ""), 403, "flavors:manage"),
        ("admin", req(M, K::Flavor, "devA"), 400, "no organisation"),
    ]);
}

#[test]
fn organisation_checks() {
    check(&[
        // Type mismatches: 400 even for admins.
        ("admin", req(M, K::App, "opA"), 400, "type developer"),
        ("admin", req(M, K::Cloudlet, "devA"), 400, "type operator"),
        ("om", req(M, K::App, "opA"), 403, "apps:manage"),
        // Unknown: 400 naming it for an admin, 403 for anyone else (no role there).
        ("admin", req(M, K::App, "nosuch"), 400, "nosuch not found"),
        ("dm", req(M, K::App, "nosuch"), 403, "nosuch"),
        ("admin", req(M, K::App, ""), 400, "organization is required"),
        ("stale", req(M, K::App, "gone"), 400, "being deleted"),
    ]);
}

#[test]
fn an_app_instance_uses_its_own_organisations_app() {
    let mut r = req(M, K::AppInst, "devA");
    r.app_org = "devB".into();
    check(&[
        ("dm", r.clone(), 403, "devB"),
        ("admin", r.clone(), 403, "devA"),
    ]);
    r.app_org = "DEVA".into();
    check(&[("dm", r, 200, "")]);
}

#[test]
fn api_key_acts_with_its_permissions_only() {
    let (g, o) = (grants(), orgs());
    let key = Subject::Key("key1");
    assert!(authorize(&g, key, &req(M, K::AppInst, "devA"), &o).is_ok());
    let e = authorize(&g, key, &req(M, K::App, "devA"), &o).unwrap_err();
    assert_eq!(e.status.as_u16(), 403, "{e}");
    let e = authorize(&g, key, &req(M, K::AppInst, "devB"), &o).unwrap_err();
    assert!(e.message.contains("acts only in organisation devA"), "{e}");
}

fn app(org: &str) -> pb::Object {
    pb::Object {
        obj: Some(Obj::App(pb::App {
            key: Some(pb::AppKey {
                organization: org.into(),
                name: "a".into(),
                version: "1".into(),
            }),
            ..Default::default()
        })),
    }
}

fn cloudlet(org: &str) -> pb::Object {
    pb::Object {
        obj: Some(Obj::Cloudlet(pb::Cloudlet {
            key: Some(pb::CloudletKey {
                organization: org.into(),
                name: "c".into(),
            }),
            ..Default::default()
        })),
    }
}

#[test]
fn shows_are_filtered_to_what_the_caller_may_view() {
    let (g, o) = (grants(), orgs());
    let flavor = pb::Object {
        obj: Some(Obj::Flavor(pb::Flavor::default())),
    };
    let settings = pb::Object {
        obj: Some(Obj::Settings(pb::Settings::default())),
    };
    let dv = ShowScope::new(&g, Subject::User("dv"), &o);
    assert!(dv.allows(&app("devA")) && dv.allows(&app("DEVA")));
    assert!(!dv.allows(&app("devB")));
    assert!(dv.allows(&cloudlet("opA")), "developers see every cloudlet");
    assert!(dv.allows(&flavor) && !dv.allows(&settings));
    let om = ShowScope::new(&g, Subject::User("om"), &o);
    assert!(om.allows(&cloudlet("opA")) && !om.allows(&cloudlet("opB")));
    assert!(!om.allows(&app("devA")) && !om.any(K::App));
    let nobody = ShowScope::new(&g, Subject::User("nobody"), &o);
    assert!(!nobody.any(K::App) && !nobody.allows(&cloudlet("opA")));
    assert!(nobody.any(K::Flavor) && nobody.any(K::Unspecified));
    let aview = ShowScope::new(&g, Subject::User("aview"), &o);
    assert!(aview.allows(&app("devB")));
    assert!(!aview.allows(&settings), "config is AdminManager's only");
    let admin = ShowScope::new(&g, Subject::User("admin"), &o);
    assert!(admin.allows(&settings) && admin.allows(&cloudlet("opB")));
    let key = ShowScope::new(&g, Subject::Key("key1"), &o);
    assert!(!key.any(K::App), "the key holds appinsts only");
    assert!(key.any(K::AppInst));
}

#[test]
fn kinds_map_to_upstreams_resources() {
    assert_eq!(resource(K::OperatorCode, M), Some(Resource::Cloudlets));
    assert_eq!(
        resource(K::CloudletInfo, V),
        Some(Resource::CloudletAnalytics)
    );
    assert_eq!(resource(K::Settings, V), Some(Resource::Config));
    assert_eq!(resource(K::Unspecified, V), None);
    let k = pb::ObjectKey {
        key: Some(Key::OperatorCode(pb::OperatorCodeKey { code: "1".into() })),
    };
    assert_eq!(key_org_of(&k), Some((K::OperatorCode, None)));
}
