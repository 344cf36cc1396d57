//! The one behavioural contract every [`McStore`] implementation must pass.
//!
//! Each `pub async fn` checks one behaviour against stores from a [`StoreFactory`] and panics
//! (assert-style) on a violation. [`conformance_tests!`](crate::conformance_tests) expands to one
//! `#[tokio::test]` per function (multi-threaded, so the concurrency tests really race), so a
//! backend's test file is a factory plus one macro call and cannot silently skip a behaviour.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;

use super::{
    AuditQuery, FailedLogins, Kind, MAX_AUDIT_LIMIT, MAX_TEXT, McStore, McStoreError, UserUpdate,
};
use crate::model::{ApiKey, AuditEntry, Controller, Grant, Org, OrgType, User};

/// Makes stores for one test. Every `open` on the same factory must reach the same data (same
/// directory, same database), so reopening tests durability; different factories are isolated.
/// A test drops the store it has before opening again (redb refuses a second open).
#[async_trait]
pub trait StoreFactory: Send + Sync {
    /// Opens, or reopens, the store under test with default options.
    async fn open(&self) -> Arc<dyn McStore>;

    /// Opens it keeping only `retention` audit entries.
    async fn open_with_audit_retention(&self, retention: u64) -> Arc<dyn McStore>;
}

/// Expands to one `#[tokio::test]` per conformance behaviour.
///
/// `$factory` is an async fn (or closure) taking the test name (`&'static str`, handy for a
/// unique database) and returning an `impl StoreFactory`. A backend that is not available must
/// make it panic with a message saying how to provide it, never skip.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            users_create_get_case_insensitive,
            users_and_orgs_share_names,
            user_update_fields,
            user_delete_cascades,
            orgs_lifecycle,
            org_delete_removes_grants_and_keys,
            grants_one_role_per_pair,
            grants_need_subject_and_org,
            api_keys_lifecycle,
            api_key_ids_share_names,
            audit_append_and_query,
            audit_retention_is_bounded,
            controllers_lifecycle,
            invalid_input_refused,
            durable_across_reopen,
            concurrent_user_and_org_same_name,
            concurrent_roles_same_pair,
            concurrent_org_delete_and_grant,
            concurrent_failed_logins_count,
            concurrent_audit_appends,
        );
    };
    (@each $factory:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let factory = ($factory)(stringify!($name)).await;
                $crate::store::conformance::$name(&factory).await;
            }
        )+
    };
}

// ---- fixtures ----

pub fn user(name: &str) -> User {
    User {
        name: name.into(),
        email: format!("{name}@example.com"),
        passhash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${name}"),
        locked: false,
        failed_logins: 0,
        last_failed_login: 0,
        created_at: 1_700_000_000,
    }
}

pub fn org(name: &str) -> Org {
    Org {
        name: name.into(),
        org_type: OrgType::Developer,
        delete_in_progress: false,
        created_at: 1_700_000_001,
    }
}

pub fn grant(subject: &str, org: &str, role: &str) -> Grant {
    Grant {
        subject: subject.into(),
        org: org.into(),
        role: role.into(),
    }
}

pub fn api_key(id: &str, username: &str, org: &str) -> ApiKey {
    ApiKey {
        id: id.into(),
        org: org.into(),
        username: username.into(),
        description: format!("key {id}"),
        secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$s$h".into(),
        permissions: vec![
            ("apps".into(), "manage".into()),
            ("appinsts".into(), "view".into()),
        ],
        created_at: 1_700_000_002,
    }
}

pub fn audit(username: &str, orgs: &[&str], operation: &str) -> AuditEntry {
    AuditEntry {
        seq: 0,
        time_ms: 1_700_000_000_000,
        username: username.into(),
        orgs: orgs.iter().map(|o| (*o).to_owned()).collect(),
        operation: operation.into(),
        request: r#"{"app":"x","password":""}"#.into(),
        status: 200,
        error: String::new(),
        remote: "127.0.0.1".into(),
    }
}

pub fn controller(region: &str, address: &str) -> Controller {
    Controller {
        region: region.into(),
        address: address.into(),
        notify_addr: format!("{address}-notify"),
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn names(users: &[User]) -> Vec<&str> {
    users.iter().map(|u| u.name.as_str()).collect()
}

fn seqs(entries: &[AuditEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

fn query(org: Option<&str>, user: Option<&str>, limit: usize) -> AuditQuery {
    AuditQuery {
        org: org.map(Into::into),
        user: user.map(Into::into),
        before_seq: None,
        limit,
    }
}

// ---- users and organisations ----

/// Users are found by any ASCII case of their name or e-mail, and keep their spelling.
pub async fn users_create_get_case_insensitive(f: &dyn StoreFactory) {
    let s = f.open().await;
    let alice = user("Alice");
    s.create_user(&alice).await.unwrap();
    s.create_user(&user("bob")).await.unwrap();
    assert_eq!(s.user("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(s.user("ALICE").await.unwrap(), Some(alice.clone()));
    assert_eq!(
        s.user_by_email("ALICE@Example.com").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(s.user("carol").await.unwrap(), None);
    assert_eq!(s.user_by_email("carol@example.com").await.unwrap(), None);

    assert_eq!(
        s.create_user(&user("aLiCe")).await,
        Err(McStoreError::AlreadyExists {
            kind: Kind::User,
            name: "aLiCe".into()
        })
    );
    let mut same_mail = user("carol");
    same_mail.email = "BOB@example.COM".into();
    assert_eq!(
        s.create_user(&same_mail).await,
        Err(McStoreError::AlreadyExists {
            kind: Kind::Email,
            name: "BOB@example.COM".into()
        })
    );
    assert_eq!(s.user("carol").await.unwrap(), None, "refused create wrote");
    assert_eq!(names(&s.list_users().await.unwrap()), ["Alice", "bob"]);
}

/// A user may not be named like an organisation, nor the reverse, ignoring case.
pub async fn users_and_orgs_share_names(f: &dyn StoreFactory) {
    let s = f.open().await;
    s.create_org(&org("DevOrg")).await.unwrap();
    let err = s.create_user(&user("devorg")).await.unwrap_err();
    assert_eq!(
        err,
        McStoreError::NameTaken {
            name: "devorg".into(),
            taken_by: Kind::Org,
            existing: "DevOrg".into()
        }
    );
    assert!(err.to_string().contains("organisation \"DevOrg\""), "{err}");
    s.create_user(&user("bob")).await.unwrap();
    assert_eq!(
        s.create_org(&org("BOB")).await,
        Err(McStoreError::NameTaken {
            name: "BOB".into(),
            taken_by: Kind::User,
            existing: "bob".into()
        })
    );
    assert_eq!(
        s.create_org(&org("DEVORG")).await,
        Err(McStoreError::AlreadyExists {
            kind: Kind::Org,
            name: "DEVORG".into()
        })
    );
    assert!(s.user("devorg").await.unwrap().is_none());
    assert!(s.org("bob").await.unwrap().is_none());
    let orgs: Vec<String> = s
        .list_orgs()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(orgs, ["DevOrg"]);
}

/// Updates change only the fields given, atomically; name and creation time stay.
pub async fn user_update_fields(f: &dyn StoreFactory) {
    let s = f.open().await;
    s.create_user(&user("Alice")).await.unwrap();
    s.create_user(&user("bob")).await.unwrap();

    let u = s
        .update_user(
            "ALICE",
            &UserUpdate {
                passhash: Some("$argon2id$new".into()),
                locked: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (u.name.as_str(), u.passhash.as_str()),
        ("Alice", "$argon2id$new")
    );
    assert!(u.locked);
    assert_eq!(u.created_at, user("Alice").created_at);
    assert_eq!(s.user("alice").await.unwrap(), Some(u));

    let fail = |at| UserUpdate {
        failed_logins: Some(FailedLogins::Increment { at }),
        ..Default::default()
    };
    s.update_user("alice", &fail(100)).await.unwrap();
    let u = s.update_user("alice", &fail(105)).await.unwrap();
    assert_eq!((u.failed_logins, u.last_failed_login), (2, 105));
    let reset = UserUpdate {
        failed_logins: Some(FailedLogins::Reset),
        ..Default::default()
    };
    let u = s.update_user("alice", &reset).await.unwrap();
    assert_eq!((u.failed_logins, u.last_failed_login), (0, 105));

    // E-mail: unique, the old one is freed, the new one found.
    let to = |email: &str| UserUpdate {
        email: Some(email.into()),
        ..Default::default()
    };
    assert_eq!(
        s.update_user("alice", &to("Bob@Example.com")).await,
        Err(McStoreError::AlreadyExists {
            kind: Kind::Email,
            name: "Bob@Example.com".into()
        })
    );
    let u = s
        .update_user("alice", &to("alice@new.example"))
        .await
        .unwrap();
    assert_eq!(u.email, "alice@new.example");
    assert!(
        s.user_by_email("alice@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.user_by_email("ALICE@new.example")
            .await
            .unwrap()
            .unwrap()
            .name,
        "Alice"
    );
    // Same address in another case: allowed, stored as given.
    let u = s
        .update_user("alice", &to("Alice@New.example"))
        .await
        .unwrap();
    assert_eq!(u.email, "Alice@New.example");
    // The freed address can be taken by someone else.
    s.update_user("bob", &to("alice@example.com"))
        .await
        .unwrap();

    assert_eq!(
        s.update_user("nobody", &reset).await,
        Err(McStoreError::NotFound {
            kind: Kind::User,
            name: "nobody".into()
        })
    );
}

/// Deleting a user removes its grants, its API keys and their grants, and frees its name and
/// e-mail; a second delete answers `false`.
pub async fn user_delete_cascades(f: &dyn StoreFactory) {
    let s = f.open().await;
    s.create_user(&user("Alice")).await.unwrap();
    s.create_user(&user("bob")).await.unwrap();
    s.create_org(&org("dev")).await.unwrap();
    s.add_grant(&grant("Alice", "dev", "DeveloperManager"))
        .await
        .unwrap();
    s.add_grant(&grant("bob", "dev", "DeveloperViewer"))
        .await
        .unwrap();
    s.create_api_key(&api_key("key-1", "alice", "dev"))
        .await
        .unwrap();
    s.add_grant(&grant("key-1", "dev", "key-1-role"))
        .await
        .unwrap();

    assert!(s.delete_user("ALICE").await.unwrap());
    assert!(s.user("alice").await.unwrap().is_none());
    assert!(s.grants_of_subject("alice").await.unwrap().is_empty());
    assert!(s.api_key("key-1").await.unwrap().is_none());
    assert!(s.grants_of_subject("key-1").await.unwrap().is_empty());
    assert_eq!(
        s.grants().await.unwrap(),
        [grant("bob", "dev", "DeveloperViewer")]
    );
    assert!(!s.delete_user("alice").await.unwrap());
    // Name and e-mail are free again.
    s.create_user(&user("alice")).await.unwrap();
    assert_eq!(
        s.user_by_email("Alice@example.com")
            .await
            .unwrap()
            .unwrap()
            .name,
        "alice"
    );
    assert!(s.grants_of_subject("alice").await.unwrap().is_empty());
}

pub async fn orgs_lifecycle(f: &dyn StoreFactory) {
    let s = f.open().await;
    let mut op = org("TelcoOp");
    op.org_type = OrgType::Operator;
    s.create_org(&op).await.unwrap();
    s.create_org(&org("apps-r-us")).await.unwrap();
    assert_eq!(s.org("telcoop").await.unwrap(), Some(op.clone()));
    assert_eq!(s.org("nope").await.unwrap(), None);
    let listed: Vec<String> = s
        .list_orgs()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(listed, ["apps-r-us", "TelcoOp"]);

    let marked = s.set_org_delete_in_progress("TELCOOP", true).await.unwrap();
    assert!(marked.delete_in_progress);
    assert_eq!(marked.name, "TelcoOp");
    assert!(s.org("TelcoOp").await.unwrap().unwrap().delete_in_progress);
    let cleared = s
        .set_org_delete_in_progress("telcoop", false)
        .await
        .unwrap();
    assert_eq!(cleared, op);
    assert_eq!(
        s.set_org_delete_in_progress("nope", true).await,
        Err(McStoreError::NotFound {
            kind: Kind::Org,
            name: "nope".into()
        })
    );

    assert!(s.delete_org("telcoOP").await.unwrap());
    assert!(s.org("TelcoOp").await.unwrap().is_none());
    assert!(!s.delete_org("TelcoOp").await.unwrap());
    // The name is free for a user now.
    s.create_user(&user("telcoop")).await.unwrap();
}

/// Deleting an organisation removes its grants and API keys (and the keys' grants) in the same
/// transaction; other organisations' grants and the users stay.
pub async fn org_delete_removes_grants_and_keys(f: &dyn StoreFactory) {
    let s = f.open().await;
    for u in ["alice", "bob"] {
        s.create_user(&user(u)).await.unwrap();
    }
    for o in ["Dev", "other"] {
        s.create_org(&org(o)).await.unwrap();
    }
    s.add_grant(&grant("alice", "Dev", "DeveloperManager"))
        .await
        .unwrap();
    s.add_grant(&grant("bob", "dev", "DeveloperViewer"))
        .await
        .unwrap();
    s.add_grant(&grant("alice", "other", "DeveloperViewer"))
        .await
        .unwrap();
    s.add_grant(&grant("alice", "", "AdminManager"))
        .await
        .unwrap();
    s.create_api_key(&api_key("k-dev", "alice", "Dev"))
        .await
        .unwrap();
    s.add_grant(&grant("k-dev", "Dev", "k-dev-role"))
        .await
        .unwrap();
    s.create_api_key(&api_key("k-other", "alice", "other"))
        .await
        .unwrap();

    assert!(s.delete_org("DEV").await.unwrap());
    assert!(s.grants_in_org("dev").await.unwrap().is_empty());
    assert!(s.api_key("k-dev").await.unwrap().is_none());
    assert_eq!(
        sorted(s.grants().await.unwrap()),
        sorted(vec![
            grant("alice", "other", "DeveloperViewer"),
            grant("alice", "", "AdminManager"),
        ])
    );
    assert_eq!(s.count_api_keys("alice").await.unwrap(), 1);
    assert!(s.user("bob").await.unwrap().is_some());
    // A new org of the same name starts empty.
    s.create_org(&org("dev")).await.unwrap();
    assert!(s.grants_in_org("Dev").await.unwrap().is_empty());
}

pub async fn grants_one_role_per_pair(f: &dyn StoreFactory) {
    let s = f.open().await;
    s.create_user(&user("Alice")).await.unwrap();
    s.create_user(&user("bob")).await.unwrap();
    s.create_org(&org("Dev")).await.unwrap();
    s.create_org(&org("ops")).await.unwrap();

    let manager = grant("Alice", "Dev", "DeveloperManager");
    assert!(s.add_grant(&manager).await.unwrap());
    assert!(!s.add_grant(&manager).await.unwrap(), "same grant twice");
    assert!(
        !s.add_grant(&grant("alice", "DEV", "DeveloperManager"))
            .await
            .unwrap(),
        "same grant in another case"
    );
    let err = s
        .add_grant(&grant("ALICE", "dev", "DeveloperViewer"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        McStoreError::RoleConflict {
            subject: "Alice".into(),
            org: "Dev".into(),
            existing: "DeveloperManager".into()
        }
    );
    assert!(err.to_string().contains("DeveloperManager"), "{err}");
    assert!(
        s.add_grant(&grant("alice", "ops", "OperatorViewer"))
            .await
            .unwrap()
    );
    assert!(
        s.add_grant(&grant("alice", "", "AdminViewer"))
            .await
            .unwrap()
    );
    assert!(
        s.add_grant(&grant("bob", "dev", "DeveloperContributor"))
            .await
            .unwrap()
    );

    assert_eq!(
        sorted(s.grants_of_subject("ALICE").await.unwrap()),
        sorted(vec![
            manager.clone(),
            grant("alice", "ops", "OperatorViewer"),
            grant("alice", "", "AdminViewer"),
        ])
    );
    assert_eq!(
        sorted(s.grants_in_org("dev").await.unwrap()),
        sorted(vec![
            manager.clone(),
            grant("bob", "dev", "DeveloperContributor")
        ])
    );
    assert_eq!(
        s.grants_in_org("").await.unwrap(),
        [grant("alice", "", "AdminViewer")]
    );
    assert_eq!(s.grants().await.unwrap().len(), 4);

    // Removal: the role must match; absent is Ok(false).
    assert!(
        !s.remove_grant(&grant("alice", "dev", "DeveloperViewer"))
            .await
            .unwrap()
    );
    assert!(
        s.remove_grant(&grant("alice", "DEV", "DeveloperManager"))
            .await
            .unwrap()
    );
    assert!(!s.remove_grant(&manager).await.unwrap());
    assert!(!s.remove_grant(&grant("nobody", "x", "y")).await.unwrap());
    // Now another role may be granted for the pair.
    assert!(
        s.add_grant(&grant("alice", "dev", "DeveloperViewer"))
            .await
            .unwrap()
    );
}

/// A grant names an existing user or API key, and an existing organisation or "".
pub async fn grants_need_subject_and_org(f: &dyn StoreFactory) {
    let s = f.open().await;
    s.create_user(&user("alice")).await.unwrap();
    s.create_org(&org("dev")).await.unwrap();
    assert_eq!(
        s.add_grant(&grant("ghost", "dev", "DeveloperViewer")).await,
        Err(McStoreError::NotFound {
            kind: Kind::User,
            name: "ghost".into()
        })
    );
    assert_eq!(
        s.add_grant(&grant("alice", "nowhere", "DeveloperViewer"))
            .await,
        Err(McStoreError::NotFound {
            kind: Kind::Org,
            name: "nowhere".into()
        })
    );
    assert!(s.grants().await.unwrap().is_empty());
}

pub async fn api_keys_lifecycle(f: &dyn StoreFactory) {
    let s = f.open().await;
    s.create_user(&user("alice")).await.unwrap();
    s.create_user(&user("bob")).await.unwrap();
    s.create_org(&org("dev")).await.unwrap();
    let k1 = api_key("0F8A-KEY-1", "Alice", "dev");
    let k2 = api_key("0f8a-key-2", "alice", "DEV");
    s.create_api_key(&k1).await.unwrap();
    s.create_api_key(&k2).await.unwrap();
    s.create_api_key(&api_key("bob-key", "bob", "dev"))
        .await
        .unwrap();
    assert_eq!(s.api_key("0f8a-key-1").await.unwrap(), Some(k1.clone()));
    assert_eq!(s.api_key("missing").await.unwrap(), None);
    assert_eq!(
        s.api_keys_of_user("ALICE").await.unwrap(),
        [k1.clone(), k2.clone()]
    );
    assert_eq!(s.count_api_keys("alice").await.unwrap(), 2);
    assert_eq!(s.count_api_keys("bob").await.unwrap(), 1);
    assert_eq!(s.count_api_keys("nobody").await.unwrap(), 0);

    assert_eq!(
        s.create_api_key(&api_key("0f8a-KEY-1", "bob", "dev")).await,
        Err(McStoreError::AlreadyExists {
            kind: Kind::ApiKey,
            name: "0f8a-KEY-1".into()
        })
    );
    assert_eq!(
        s.create_api_key(&api_key("k3", "ghost", "dev")).await,
        Err(McStoreError::NotFound {
            kind: Kind::User,
            name: "ghost".into()
        })
    );
    assert_eq!(
        s.create_api_key(&api_key("k3", "alice", "nowhere")).await,
        Err(McStoreError::NotFound {
            kind: Kind::Org,
            name: "nowhere".into()
        })
    );

    // A key's grants have its id as subject and go with it.
    s.add_grant(&grant("0f8a-key-1", "dev", "0f8a-key-1-role"))
        .await
        .unwrap();
    s.add_grant(&grant("alice", "dev", "DeveloperManager"))
        .await
        .unwrap();
    assert!(s.delete_api_key("0F8A-key-1").await.unwrap());
    assert!(!s.delete_api_key("0f8a-key-1").await.unwrap());
    assert!(s.grants_of_subject("0f8a-key-1").await.unwrap().is_empty());
    assert_eq!(
        s.grants().await.unwrap(),
        [grant("alice", "dev", "DeveloperManager")]
    );
    assert_eq!(s.api_keys_of_user("alice").await.unwrap(), [k2]);
    assert_eq!(s.count_api_keys("alice").await.unwrap(), 1);
}

/// Key ids are grant subjects like user names: the two may not clash.
pub async fn api_key_ids_share_names(f: &dyn StoreFactory) {
    let s = f.open().await;
    s.create_user(&user("alice")).await.unwrap();
    s.create_org(&org("dev")).await.unwrap();
    assert_eq!(
        s.create_api_key(&api_key("ALICE", "alice", "dev")).await,
        Err(McStoreError::NameTaken {
            name: "ALICE".into(),
            taken_by: Kind::User,
            existing: "alice".into()
        })
    );
    s.create_api_key(&api_key("Key-9", "alice", "dev"))
        .await
        .unwrap();
    assert_eq!(
        s.create_user(&user("key-9")).await,
        Err(McStoreError::NameTaken {
            name: "key-9".into(),
            taken_by: Kind::ApiKey,
            existing: "Key-9".into()
        })
    );
    assert!(matches!(
        s.create_org(&org("KEY-9")).await,
        Err(McStoreError::NameTaken {
            taken_by: Kind::ApiKey,
            ..
        })
    ));
}

pub async fn audit_append_and_query(f: &dyn StoreFactory) {
    let s = f.open().await;
    assert!(
        s.query_audit(&query(None, None, 10))
            .await
            .unwrap()
            .is_empty()
    );
    let entries = [
        audit("alice", &["Dev"], "/api/v1/auth/ctrl/CreateApp"),
        audit("bob", &["ops"], "/api/v1/auth/ctrl/CreateCloudlet"),
        audit("Alice", &["dev", "ops"], "/api/v1/auth/ctrl/CreateAppInst"),
        audit("", &[], "/api/v1/login"),
        audit("bob", &["DEV"], "/api/v1/auth/ctrl/DeleteApp"),
    ];
    let mut assigned = Vec::new();
    for e in &entries {
        assigned.push(s.append_audit(e).await.unwrap());
    }
    assert!(
        assigned.windows(2).all(|w| w[0] < w[1]),
        "seqs not increasing: {assigned:?}"
    );
    let [a, b, c, d, e] = assigned[..] else {
        unreachable!()
    };

    let all = s.query_audit(&query(None, None, 100)).await.unwrap();
    assert_eq!(seqs(&all), [e, d, c, b, a], "newest first");
    let mut expected = entries[2].clone();
    expected.seq = c;
    assert_eq!(all[2], expected, "entry stored as given, with its seq");

    let by_org = s.query_audit(&query(Some("dev"), None, 100)).await.unwrap();
    assert_eq!(seqs(&by_org), [e, c, a]);
    let by_user = s
        .query_audit(&query(None, Some("ALICE"), 100))
        .await
        .unwrap();
    assert_eq!(seqs(&by_user), [c, a]);
    let both = s
        .query_audit(&query(Some("ops"), Some("bob"), 100))
        .await
        .unwrap();
    assert_eq!(seqs(&both), [b]);
    let limited = s.query_audit(&query(Some("DEV"), None, 2)).await.unwrap();
    assert_eq!(seqs(&limited), [e, c]);
    let page = s
        .query_audit(&AuditQuery {
            before_seq: Some(c),
            ..query(Some("dev"), None, 2)
        })
        .await
        .unwrap();
    assert_eq!(seqs(&page), [a], "paging backwards from the last seen");
    assert!(
        s.query_audit(&query(Some("nowhere"), None, 10))
            .await
            .unwrap()
            .is_empty()
    );

    for limit in [0, MAX_AUDIT_LIMIT + 1] {
        assert!(matches!(
            s.query_audit(&query(None, None, limit)).await,
            Err(McStoreError::InvalidArgument(_))
        ));
    }
}

/// With a retention of N, an append drops what is N or more below it; seqs keep growing.
pub async fn audit_retention_is_bounded(f: &dyn StoreFactory) {
    let s = f.open_with_audit_retention(3).await;
    let mut assigned = Vec::new();
    for i in 0..7 {
        assigned.push(
            s.append_audit(&audit("alice", &["dev"], &format!("op{i}")))
                .await
                .unwrap(),
        );
    }
    let kept = s.query_audit(&query(None, None, 100)).await.unwrap();
    assert_eq!(seqs(&kept), [assigned[6], assigned[5], assigned[4]]);
    assert_eq!(kept[0].operation, "op6");
}

pub async fn controllers_lifecycle(f: &dyn StoreFactory) {
    let s = f.open().await;
    let eu = controller("EU", "ctrl-eu:55001");
    let us = controller("US", "ctrl-us:55001");
    s.create_controller(&us).await.unwrap();
    s.create_controller(&eu).await.unwrap();
    assert_eq!(s.controller("EU").await.unwrap(), Some(eu.clone()));
    assert_eq!(s.controller("JP").await.unwrap(), None);
    assert_eq!(
        s.list_controllers().await.unwrap(),
        [eu.clone(), us.clone()]
    );
    assert_eq!(
        s.create_controller(&controller("EU", "other:1")).await,
        Err(McStoreError::AlreadyExists {
            kind: Kind::Controller,
            name: "EU".into()
        })
    );
    assert_eq!(
        s.create_controller(&controller("JP", "ctrl-eu:55001"))
            .await,
        Err(McStoreError::AlreadyExists {
            kind: Kind::ControllerAddress,
            name: "ctrl-eu:55001".into()
        })
    );
    assert!(s.delete_controller("EU").await.unwrap());
    assert!(!s.delete_controller("EU").await.unwrap());
    assert_eq!(s.list_controllers().await.unwrap(), [us]);
    // Its address is free again.
    s.create_controller(&controller("JP", "ctrl-eu:55001"))
        .await
        .unwrap();
}

/// Empty names, NUL characters and oversized text are refused with `InvalidArgument`; lookups
/// of such names answer "absent"; nothing panics.
pub async fn invalid_input_refused(f: &dyn StoreFactory) {
    let s = f.open().await;
    let invalid = |r: Result<(), McStoreError>| {
        assert!(
            matches!(r, Err(McStoreError::InvalidArgument(_))),
            "expected InvalidArgument, got {r:?}"
        )
    };
    invalid(s.create_user(&user("")).await);
    invalid(s.create_user(&user("a\0b")).await);
    let mut no_mail = user("carol");
    no_mail.email = String::new();
    invalid(s.create_user(&no_mail).await);
    let mut huge = user("dave");
    huge.passhash = "x".repeat(MAX_TEXT + 1);
    invalid(s.create_user(&huge).await);
    invalid(s.create_org(&org("")).await);
    invalid(s.create_org(&org("o\0")).await);
    invalid(s.create_controller(&controller("", "a:1")).await);
    invalid(s.create_api_key(&api_key("", "a", "b")).await);
    assert!(matches!(
        s.add_grant(&grant("", "dev", "r")).await,
        Err(McStoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.append_audit(&audit("a\0", &[], "op")).await,
        Err(McStoreError::InvalidArgument(_))
    ));
    s.create_user(&user("alice")).await.unwrap();
    assert!(matches!(
        s.update_user(
            "alice",
            &UserUpdate {
                email: Some("x\0y".into()),
                ..Default::default()
            }
        )
        .await,
        Err(McStoreError::InvalidArgument(_))
    ));

    for name in ["", "\0", "a\0b"] {
        assert_eq!(s.user(name).await.unwrap(), None);
        assert_eq!(s.user_by_email(name).await.unwrap(), None);
        assert_eq!(s.org(name).await.unwrap(), None);
        assert_eq!(s.api_key(name).await.unwrap(), None);
        assert_eq!(s.controller(name).await.unwrap(), None);
        assert!(!s.delete_user(name).await.unwrap());
        assert!(!s.delete_org(name).await.unwrap());
        assert!(!s.delete_api_key(name).await.unwrap());
        assert!(!s.delete_controller(name).await.unwrap());
        assert!(!s.remove_grant(&grant(name, name, "r")).await.unwrap());
        assert!(s.grants_of_subject(name).await.unwrap().is_empty());
        assert_eq!(s.count_api_keys(name).await.unwrap(), 0);
        assert!(s.api_keys_of_user(name).await.unwrap().is_empty());
    }
    assert!(s.list_users().await.unwrap().len() == 1);
    assert!(s.list_orgs().await.unwrap().is_empty());
}

/// Everything survives closing and reopening, and audit seqs continue past the old ones.
pub async fn durable_across_reopen(f: &dyn StoreFactory) {
    let last_seq = {
        let s = f.open().await;
        s.create_user(&user("Alice")).await.unwrap();
        s.create_org(&org("Dev")).await.unwrap();
        s.add_grant(&grant("alice", "dev", "DeveloperManager"))
            .await
            .unwrap();
        s.create_api_key(&api_key("k1", "alice", "dev"))
            .await
            .unwrap();
        s.create_controller(&controller("EU", "eu:1"))
            .await
            .unwrap();
        s.append_audit(&audit("alice", &["dev"], "op"))
            .await
            .unwrap()
    };
    let s = f.open().await;
    assert_eq!(s.user("alice").await.unwrap(), Some(user("Alice")));
    assert_eq!(s.org("dev").await.unwrap(), Some(org("Dev")));
    assert_eq!(
        s.grants().await.unwrap(),
        [grant("alice", "dev", "DeveloperManager")]
    );
    assert_eq!(
        s.api_key("k1").await.unwrap(),
        Some(api_key("k1", "alice", "dev"))
    );
    assert_eq!(
        s.list_controllers().await.unwrap(),
        [controller("EU", "eu:1")]
    );
    assert_eq!(
        seqs(&s.query_audit(&query(None, None, 10)).await.unwrap()),
        [last_seq]
    );
    let next = s.append_audit(&audit("alice", &[], "op2")).await.unwrap();
    assert!(next > last_seq, "seq went from {last_seq} to {next}");
}

// ---- concurrency ----

/// A user create and an organisation create of the same name (in different cases), racing:
/// exactly one wins, the other is told the name is taken, and the loser wrote nothing.
pub async fn concurrent_user_and_org_same_name(f: &dyn StoreFactory) {
    let s = f.open().await;
    const ROUNDS: usize = 24;
    let mut tasks = Vec::new();
    for i in 0..ROUNDS {
        let (su, so) = (Arc::clone(&s), Arc::clone(&s));
        let u = tokio::spawn(async move { su.create_user(&user(&format!("Racer{i}"))).await });
        let o = tokio::spawn(async move { so.create_org(&org(&format!("racer{i}"))).await });
        tasks.push((i, u, o));
    }
    for (i, u, o) in tasks {
        let (u, o) = (u.await.unwrap(), o.await.unwrap());
        match (&u, &o) {
            (Ok(()), Err(McStoreError::NameTaken { taken_by, .. })) => {
                assert_eq!(*taken_by, Kind::User);
                assert!(s.org(&format!("racer{i}")).await.unwrap().is_none());
            }
            (Err(McStoreError::NameTaken { taken_by, .. }), Ok(())) => {
                assert_eq!(*taken_by, Kind::Org);
                assert!(s.user(&format!("racer{i}")).await.unwrap().is_none());
            }
            _ => panic!("round {i}: user create {u:?}, org create {o:?}"),
        }
    }
    let total = s.list_users().await.unwrap().len() + s.list_orgs().await.unwrap().len();
    assert_eq!(total, ROUNDS);
}

/// Two different roles for the same (subject, org), racing: exactly one is granted.
pub async fn concurrent_roles_same_pair(f: &dyn StoreFactory) {
    let s = f.open().await;
    s.create_org(&org("dev")).await.unwrap();
    const USERS: usize = 12;
    for i in 0..USERS {
        s.create_user(&user(&format!("u{i}"))).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..USERS {
        for role in ["DeveloperManager", "DeveloperViewer"] {
            let s = Arc::clone(&s);
            tasks.push(tokio::spawn(async move {
                s.add_grant(&grant(&format!("u{i}"), "dev", role)).await
            }));
        }
    }
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(true) => granted += 1,
            Err(McStoreError::RoleConflict { .. }) => {}
            other => panic!("unexpected add_grant result {other:?}"),
        }
    }
    assert_eq!(granted, USERS);
    assert_eq!(s.grants_in_org("dev").await.unwrap().len(), USERS);
}

/// Grants added while their organisation is deleted never outlive it.
pub async fn concurrent_org_delete_and_grant(f: &dyn StoreFactory) {
    let s = f.open().await;
    const ORGS: usize = 10;
    s.create_user(&user("alice")).await.unwrap();
    for i in 0..ORGS {
        s.create_org(&org(&format!("o{i}"))).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..ORGS {
        let (sd, sg) = (Arc::clone(&s), Arc::clone(&s));
        let d = tokio::spawn(async move { sd.delete_org(&format!("o{i}")).await });
        let g = tokio::spawn(async move {
            sg.add_grant(&grant("alice", &format!("O{i}"), "DeveloperViewer"))
                .await
        });
        tasks.push((d, g));
    }
    for (d, g) in tasks {
        assert_eq!(d.await.unwrap(), Ok(true));
        match g.await.unwrap() {
            Ok(true)
            | Err(McStoreError::NotFound {
                kind: Kind::Org, ..
            }) => {}
            other => panic!("unexpected add_grant result {other:?}"),
        }
    }
    assert_eq!(s.grants().await.unwrap(), [], "a grant outlived its org");
}

/// Concurrent failed logins are each counted.
pub async fn concurrent_failed_logins_count(f: &dyn StoreFactory) {
    let s = f.open().await;
    s.create_user(&user("alice")).await.unwrap();
    const N: u32 = 20;
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                s.update_user(
                    "alice",
                    &UserUpdate {
                        failed_logins: Some(FailedLogins::Increment { at: i64::from(i) }),
                        ..Default::default()
                    },
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(s.user("alice").await.unwrap().unwrap().failed_logins, N);
}

/// Concurrent appends get distinct seqs, and every entry is there.
pub async fn concurrent_audit_appends(f: &dyn StoreFactory) {
    let s = f.open().await;
    const N: usize = 40;
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                s.append_audit(&audit("alice", &["dev"], &format!("op{i}")))
                    .await
            })
        })
        .collect();
    let mut assigned = BTreeSet::new();
    for t in tasks {
        assert!(assigned.insert(t.await.unwrap().unwrap()), "seq reused");
    }
    let all = s
        .query_audit(&query(Some("dev"), None, 1000))
        .await
        .unwrap();
    assert_eq!(all.len(), N);
    let got: BTreeSet<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(got, assigned);
}
