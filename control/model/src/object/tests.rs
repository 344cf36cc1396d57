use super::*;
use crate::types::{CloudletState, TrackedState};

fn all_keys() -> Vec<ObjectKey> {
    vec![
        ObjectKey::OperatorCode("26201".into()),
        ObjectKey::Flavor("x1.small".into()),
        ObjectKey::Settings,
        ObjectKey::Cloudlet(CloudletKey {
            organization: "telekom".into(),
            name: "frankfurt-1".into(),
        }),
        ObjectKey::CloudletInfo(CloudletKey {
            organization: "telekom".into(),
            name: "frankfurt-1".into(),
        }),
        ObjectKey::App(AppKey {
            organization: "AcmeAppCo".into(),
            name: "some app".into(),
            version: "1.0".into(),
        }),
        ObjectKey::ClusterInst(ClusterKey {
            organization: "AcmeAppCo".into(),
            name: "small/cluster".into(),
        }),
        ObjectKey::AppInst(AppInstKey {
            organization: "Acme%AppCo".into(),
            name: "inst-ü-1".into(),
        }),
    ]
}

#[test]
fn store_keys_round_trip_for_every_kind() {
    let keys = all_keys();
    let kinds: Vec<_> = keys.iter().map(ObjectKey::kind).collect();
    assert_eq!(kinds, ObjectKind::ALL);
    for key in keys {
        let text = key.to_store_key();
        assert!(text.starts_with(&format!("{}/", key.kind())), "{text}");
        assert_eq!(ObjectKey::from_store_key(&text), Ok(key.clone()), "{text}");
        assert_eq!(key.to_string(), text);
    }
}

#[test]
fn store_keys_escape_separators_and_non_ascii() {
    let keys = all_keys();
    assert_eq!(keys[0].to_store_key(), "OperatorCode/26201");
    assert_eq!(keys[2].to_store_key(), "Settings/settings");
    assert_eq!(keys[5].to_store_key(), "App/AcmeAppCo/some%20app/1.0");
    assert_eq!(
        keys[6].to_store_key(),
        "ClusterInst/AcmeAppCo/small%2Fcluster"
    );
    assert_eq!(keys[7].to_store_key(), "AppInst/Acme%25AppCo/inst-%C3%BC-1");
}

#[test]
fn a_slash_in_a_name_does_not_fake_an_organization_prefix() {
    let sneaky = ObjectKey::AppInst(AppInstKey {
        organization: "a/b".into(),
        name: "c".into(),
    });
    assert!(!sneaky.to_store_key().starts_with("AppInst/a/"));
    let empty = ObjectKey::AppInst(AppInstKey {
        organization: String::new(),
        name: String::new(),
    });
    assert_eq!(empty.to_store_key(), "AppInst//");
    assert_eq!(ObjectKey::from_store_key("AppInst//"), Ok(empty));
}

#[test]
fn malformed_store_keys_are_rejected() {
    let reason = |k: &str| ObjectKey::from_store_key(k).unwrap_err().reason;
    assert_eq!(reason("Nope/x"), KeyErrorKind::UnknownKind("Nope".into()));
    assert_eq!(
        reason("appinst/a/b"),
        KeyErrorKind::UnknownKind("appinst".into())
    );
    assert_eq!(reason(""), KeyErrorKind::UnknownKind(String::new()));
    assert!(matches!(
        reason("AppInst/a"),
        KeyErrorKind::Arity {
            expected: 2,
            got: 1,
            ..
        }
    ));
    assert!(matches!(reason("App/a/b/c/d"), KeyErrorKind::Arity { .. }));
    assert!(matches!(reason("Settings"), KeyErrorKind::Arity { .. }));
    assert_eq!(reason("Settings/other"), KeyErrorKind::Settings);
    assert_eq!(reason("Flavor/x%2"), KeyErrorKind::BadEscape(0));
    assert_eq!(reason("AppInst/a/%G0"), KeyErrorKind::BadEscape(1));
    assert_eq!(reason("Flavor/%FF"), KeyErrorKind::NotUtf8(0));
    assert_eq!(reason("Flavor/%41"), KeyErrorKind::NotCanonical(0));
    assert_eq!(reason("Flavor/a%2fb"), KeyErrorKind::NotCanonical(0));
    assert_eq!(reason("Flavor/a b"), KeyErrorKind::NotCanonical(0));
}

#[test]
fn key_errors_print_on_one_line() {
    let e = ObjectKey::from_store_key("Flavor/\nx").unwrap_err();
    assert!(!e.to_string().contains('\n'), "{e}");
}

#[test]
fn kinds_parse_from_their_names_loosely() {
    for k in ObjectKind::ALL {
        assert_eq!(k.as_str().parse(), Ok(k));
        assert_eq!(k.as_str().to_lowercase().parse(), Ok(k));
    }
    assert_eq!("app_inst".parse(), Ok(ObjectKind::AppInst));
    assert_eq!("cloudlet-info".parse(), Ok(ObjectKind::CloudletInfo));
    let e = "AppInstance".parse::<ObjectKind>().unwrap_err();
    assert!(e.to_string().contains("ClusterInst"), "{e}");
}

#[test]
fn dependency_order_covers_every_kind_once_with_parents_first() {
    let mut sorted = ObjectKind::DEPENDENCY_ORDER;
    sorted.sort();
    assert_eq!(sorted, ObjectKind::ALL);
    let rank = ObjectKind::dependency_rank;
    assert!(rank(ObjectKind::Cloudlet) < rank(ObjectKind::ClusterInst));
    assert!(rank(ObjectKind::App) < rank(ObjectKind::AppInst));
    assert!(rank(ObjectKind::Flavor) < rank(ObjectKind::App));
    assert_eq!(rank(ObjectKind::Settings), 0);
}

#[test]
fn objects_know_their_kind_and_key() {
    let info = CloudletInfo::with_state(
        CloudletKey {
            organization: "telekom".into(),
            name: "berlin".into(),
        },
        CloudletState::Ready,
    );
    let obj = Object::from(info.clone());
    assert_eq!(obj.kind(), ObjectKind::CloudletInfo);
    assert_eq!(obj.key(), ObjectKey::CloudletInfo(info.key));
    assert_eq!(obj.key().kind(), obj.kind());
    let settings = Object::from(Settings::default());
    assert_eq!(settings.key(), ObjectKey::Settings);
    let cluster = Object::ClusterInst(ClusterInst {
        key: ClusterKey {
            organization: "o".into(),
            name: "c".into(),
        },
        cloudlet: CloudletKey {
            organization: "telekom".into(),
            name: "berlin".into(),
        },
        flavor: None,
        ip_access: crate::IpAccess::Shared,
        num_masters: 1,
        num_nodes: 0,
        state: TrackedState::Ready,
        node_address: None,
    });
    assert_eq!(cluster.key().to_store_key(), "ClusterInst/o/c");
}
