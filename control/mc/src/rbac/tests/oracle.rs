//! The indexed enforcer against a naive oracle: a linear scan over the grants and keys as
//! stored, written from the rules rather than from the index.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::super::*;
use crate::model::{ApiKey, Grant};

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Does any stored, well-formed grant of `user` give `p` in `org`?
fn oracle_user(grants: &[Grant], user: &str, org: &str, p: Permission) -> bool {
    grants.iter().any(|g| {
        let Ok(role) = g.role.parse::<Role>() else {
            return false;
        };
        let admin = role.kind() == RoleKind::Admin;
        let well_formed = admin == g.org.is_empty();
        let reaches = if admin {
            true
        } else {
            same(&g.org, org) && !org.is_empty()
        };
        well_formed && same(&g.subject, user) && reaches && policies().contains(&(role, p))
    })
}

fn oracle(
    grants: &[Grant],
    keys: &[ApiKey],
    subject: Subject<'_>,
    org: &str,
    p: Permission,
) -> bool {
    match subject {
        Subject::User(u) => oracle_user(grants, u, org, p),
        Subject::Key(id) => keys.iter().rev().any(|k| {
            // The last key stored under an id wins in the index (ids are unique in practice).
            let last = keys.iter().rposition(|x| same(&x.id, &k.id));
            let declared = k
                .permissions
                .iter()
                .all(|(r, a)| r.parse::<Resource>().is_ok() && a.parse::<Action>().is_ok())
                && k.permissions.iter().any(|(r, a)| {
                    r == p.resource.as_str()
                        && (a == p.action.as_str() || (a == "manage" && p.action == Action::View))
                });
            same(&k.id, id)
                && std::ptr::eq(k, &keys[last.unwrap()])
                && same(&k.org, org)
                && declared
                && oracle_user(grants, &k.username, &k.org, p)
        }),
    }
}

const ROLES: &[&str] = &[
    "AdminManager",
    "AdminContributor",
    "AdminViewer",
    "DeveloperManager",
    "DeveloperContributor",
    "DeveloperViewer",
    "OperatorManager",
    "OperatorContributor",
    "OperatorViewer",
    "BillingManager",
    "NotARole",
];

fn name(rng: &mut StdRng, prefix: &str, n: u32) -> String {
    let s = format!("{prefix}{}", rng.random_range(0..n));
    // Sometimes spelled in upper case: names compare ignoring ASCII case.
    if rng.random_bool(0.2) {
        s.to_ascii_uppercase()
    } else {
        s
    }
}

fn random_case(rng: &mut StdRng, users: u32, orgs: u32) -> (Vec<Grant>, Vec<ApiKey>) {
    let n = rng.random_range(0..60);
    let grants: Vec<Grant> = (0..n)
        .map(|_| {
            let role = ROLES[rng.random_range(0..ROLES.len())];
            // Mostly well-formed, sometimes not.
            let admin = role.starts_with("Admin");
            let org = if rng.random_bool(0.1) == admin {
                name(rng, "org", orgs)
            } else {
                String::new()
            };
            Grant {
                subject: name(rng, "u", users),
                org,
                role: role.into(),
            }
        })
        .collect();
    let nk = rng.random_range(0..6);
    let keys = (0..nk)
        .map(|_| {
            let perms = (0..rng.random_range(0..4))
                .map(|_| {
                    let r = if rng.random_bool(0.05) {
                        "nosuch"
                    } else {
                        Resource::ALL[rng.random_range(0..Resource::ALL.len())].as_str()
                    };
                    let a = if rng.random_bool(0.5) {
                        "view"
                    } else {
                        "manage"
                    };
                    (r.to_string(), a.to_string())
                })
                .collect();
            ApiKey {
                id: name(rng, "key", 4),
                org: name(rng, "org", orgs),
                username: name(rng, "u", users),
                description: String::new(),
                secret_hash: String::new(),
                permissions: perms,
                created_at: 0,
            }
        })
        .collect();
    (grants, keys)
}

#[test]
fn indexed_enforcer_agrees_with_linear_oracle() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0bac);
    let (users, orgs) = (6, 4);
    let mut checked = 0usize;
    let mut allowed = 0usize;
    for case in 0..400 {
        let (grants, keys) = random_case(&mut rng, users, orgs);
        let index = Grants::new(&grants, &keys);
        for _ in 0..200 {
            let org = if rng.random_bool(0.15) {
                String::new()
            } else {
                name(&mut rng, "org", orgs + 1)
            };
            let r = Resource::ALL[rng.random_range(0..Resource::ALL.len())];
            let a = Action::ALL[rng.random_range(0..2)];
            let p = Permission::new(r, a);
            let sub_name = if rng.random_bool(0.3) {
                name(&mut rng, "key", 5)
            } else {
                name(&mut rng, "u", users + 1)
            };
            let subject = if sub_name.to_ascii_lowercase().starts_with("key") {
                Subject::Key(&sub_name)
            } else {
                Subject::User(&sub_name)
            };
            let want = oracle(&grants, &keys, subject, &org, p);
            let got = enforce(&index, subject, &org, r, a);
            assert_eq!(
                got.is_allowed(),
                want,
                "case {case}: {subject} {org:?} {p}: {got:?}\n{grants:#?}\n{keys:#?}"
            );
            checked += 1;
            allowed += usize::from(want);

            // authorized_orgs agrees with enforce over every org named anywhere.
            if let AuthorizedOrgs::Orgs(set) = authorized_orgs(&index, subject, r, a) {
                for o in (0..=orgs).map(|i| format!("org{i}")) {
                    let in_set = set.iter().any(|s| same(s, &o));
                    assert_eq!(
                        in_set,
                        oracle(&grants, &keys, subject, &o, p),
                        "case {case}: orgs {subject} {o} {p}"
                    );
                }
            } else {
                assert!(
                    oracle(&grants, &keys, subject, "", p),
                    "case {case}: All without an admin grant"
                );
                for o in (0..=orgs).map(|i| format!("org{i}")) {
                    assert!(oracle(&grants, &keys, subject, &o, p));
                }
            }
        }
    }
    // The cases exercise both answers.
    assert!(
        allowed > checked / 50 && allowed < checked / 2,
        "{allowed} of {checked}"
    );
}
