//! The master controller's RBAC decision (`mc::rbac::enforce`) with 10 000 grants in the
//! system: 4 000 users in 1 500 developer and 500 operator organisations (mixed-case names, so
//! lookups pay for case folding), each user holding two or three roles, plus admins and API
//! keys. Decisions are drawn from a fixed list of 4 096 requests (half in the subject's own
//! organisation, half in another; 1 282 are allowed). Also
//! the index build (once per change of the grants) and `authorized_orgs` for show filtering.

// The shipped binary's allocator (src/main.rs), so allocation costs match production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mc::model::{ApiKey, Grant};
use mc::rbac::{Action, Grants, Resource, Role, Subject, authorized_orgs, enforce};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const DEV_ORGS: usize = 1_500;
const OP_ORGS: usize = 500;
const USERS: usize = 4_000;
const GRANTS: usize = 10_000;

fn dev_org(i: usize) -> String {
    format!("DevOrg{i:04}")
}

fn op_org(i: usize) -> String {
    format!("Operator{i:03}")
}

fn user(i: usize) -> String {
    format!("user{i:05}")
}

struct World {
    grants: Vec<Grant>,
    keys: Vec<ApiKey>,
    /// (subject, is key, org, resource, action).
    requests: Vec<(String, bool, String, Resource, Action)>,
}

fn world() -> World {
    let mut rng = SmallRng::seed_from_u64(14);
    let dev_roles = [
        Role::DeveloperManager,
        Role::DeveloperContributor,
        Role::DeveloperViewer,
    ];
    let op_roles = [
        Role::OperatorManager,
        Role::OperatorContributor,
        Role::OperatorViewer,
    ];
    let mut grants = Vec::with_capacity(GRANTS);
    for a in 0..5 {
        grants.push(Grant {
            subject: format!("admin{a}"),
            org: String::new(),
            role: Role::AdminManager.to_string(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    while grants.len() < GRANTS {
        let u = rng.random_range(0..USERS);
        let (org, role) = if u % 5 == 0 {
            (
                op_org(rng.random_range(0..OP_ORGS)),
                op_roles[rng.random_range(0..3)],
            )
        } else {
            (
                dev_org(rng.random_range(0..DEV_ORGS)),
                dev_roles[rng.random_range(0..3)],
            )
        };
        if seen.insert((u, org.clone())) {
            grants.push(Grant {
                subject: user(u),
                org,
                role: role.to_string(),
            });
        }
    }
    let keys: Vec<ApiKey> = grants
        .iter()
        .skip(5)
        .step_by(50)
        .enumerate()
        .map(|(i, g)| ApiKey {
            id: format!("{i:08x}-0000-4000-8000-000000000000"),
            org: g.org.clone(),
            username: g.subject.clone(),
            description: String::new(),
            secret_hash: String::new(),
            permissions: vec![
                ("apps".into(), "view".into()),
                ("cloudlets".into(), "view".into()),
            ],
            created_at: 0,
        })
        .collect();
    let resources = [
        Resource::Apps,
        Resource::AppInsts,
        Resource::Cloudlets,
        Resource::Users,
    ];
    let requests = (0..4096)
        .map(|i| {
            let r = resources[rng.random_range(0..resources.len())];
            let a = if rng.random_bool(0.5) {
                Action::View
            } else {
                Action::Manage
            };
            if i % 16 == 0 {
                let k = &keys[rng.random_range(0..keys.len())];
                return (k.id.clone(), true, k.org.clone(), r, a);
            }
            let g = &grants[rng.random_range(5..grants.len())];
            // Half in the user's own org, half in another.
            let org = if rng.random_bool(0.5) {
                g.org.clone()
            } else {
                dev_org(rng.random_range(0..DEV_ORGS))
            };
            (g.subject.clone(), false, org, r, a)
        })
        .collect();
    World {
        grants,
        keys,
        requests,
    }
}

fn bench(c: &mut Criterion) {
    let w = world();
    let grants = Grants::new(&w.grants, &w.keys);
    assert!(grants.rejected().is_empty());
    let allowed = w
        .requests
        .iter()
        .filter(|(s, k, o, r, a)| {
            let sub = if *k {
                Subject::Key(s)
            } else {
                Subject::User(s)
            };
            enforce(&grants, sub, o, *r, *a).is_allowed()
        })
        .count();
    eprintln!(
        "mc_enforcer: {} grants, {allowed} of {} requests allowed",
        w.grants.len(),
        w.requests.len()
    );

    let mut g = c.benchmark_group("mc_enforcer");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("enforce_10k_grants", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let (s, k, o, r, a) = &w.requests[i % w.requests.len()];
            i += 1;
            let sub = if *k {
                Subject::Key(s)
            } else {
                Subject::User(s)
            };
            black_box(enforce(&grants, sub, o, *r, *a))
        });
    });
    // The allowed path alone (a denial also formats its reason).
    let allowed_reqs: Vec<_> = w
        .requests
        .iter()
        .filter(|(s, k, o, r, a)| {
            let sub = if *k {
                Subject::Key(s)
            } else {
                Subject::User(s)
            };
            enforce(&grants, sub, o, *r, *a).is_allowed()
        })
        .collect();
    g.bench_function("enforce_10k_grants_allowed", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let (s, k, o, r, a) = allowed_reqs[i % allowed_reqs.len()];
            i += 1;
            let sub = if *k {
                Subject::Key(s)
            } else {
                Subject::User(s)
            };
            black_box(enforce(&grants, sub, o, *r, *a))
        });
    });
    g.bench_function("authorized_orgs_10k_grants", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let (s, _, _, r, a) = &w.requests[(i * 16 + 1) % w.requests.len()];
            i += 1;
            black_box(authorized_orgs(&grants, Subject::User(s), *r, *a))
        });
    });
    g.sample_size(10);
    g.bench_function("build_index_10k_grants", |b| {
        b.iter(|| Grants::new(black_box(&w.grants), black_box(&w.keys)));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
