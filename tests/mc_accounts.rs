//! `edgeplane mc` as a real process on 127.0.0.1, driven with curl: names, passwords,
//! organisations, roles, API keys, the audit log and the region registry. Every case runs
//! twice, on the embedded store (`redb::`) and on PostgreSQL (`postgres::`, a fresh database
//! of `EDGEPLANE_PG_URL`, which must be set: without it those tests fail, saying how).
//! Logins, tokens and TLS are in `mc_login.rs`.

#[path = "common/mc.rs"]
#[macro_use]
mod mc_common;

use mc_common::{A, Backend, Mc, msg, names, password_of};
use serde_json::{Value, json};

/// Case-duplicate names, user/org clashes, invalid names and e-mails, weak passwords, and
/// bodies with unknown or missing fields.
fn names_and_passwords(b: Backend) {
    let mc = Mc::start(b, &[]);
    let create = |name: &str, email: &str, pw: &str| {
        mc.post(
            "/api/v1/usercreate",
            None,
            &json!({"name": name, "email": email, "passhash": pw}),
        )
    };
    let strong = password_of("x");
    assert_eq!(create("Alice", "alice@example.com", &strong).0, 200);
    let (s, r) = create("aLICE", "other@example.com", &strong);
    assert_eq!(s, 409, "{r}");
    assert!(msg(&r).contains("already exists (case-insensitive)"), "{r}");
    let (s, r) = create("bob", "ALICE@example.com", &strong);
    assert_eq!(s, 409, "same e-mail ignoring case: {r}");
    let (s, r) = create("bob", "bob@example.com", "password1");
    assert_eq!(s, 400, "{r}");
    assert!(
        msg(&r).starts_with("Invalid password: password too weak"),
        "{r}"
    );
    let (s, r) = create("bob", "bob@example.com", "short");
    assert_eq!(
        (s, msg(&r).contains("at least 8 characters")),
        (400, true),
        "{r}"
    );
    let (s, r) = create("bob::x", "bob@example.com", &strong);
    assert_eq!(s, 400, "{r}");
    assert!(msg(&r).starts_with("Invalid name"), "{r}");
    let (s, r) = create("bob", "not-an-email", &strong);
    assert_eq!((s, msg(&r).contains("email")), (400, true), "{r}");
    // An organisation may not take a user's name, nor a user an organisation's.
    let alice = mc.login("alice", &strong);
    let (s, r) = mc.post(
        &format!("{A}/org/create"),
        Some(&alice),
        &json!({"name": "ALICE", "type": "developer"}),
    );
    assert_eq!(s, 409, "{r}");
    let (s, _) = mc.post(
        &format!("{A}/org/create"),
        Some(&alice),
        &json!({"name": "DevA", "type": "developer"}),
    );
    assert_eq!(s, 200);
    let (s, r) = create("deva", "deva@example.com", &strong);
    assert_eq!(s, 409, "{r}");
    assert!(msg(&r).contains("organisation"), "{r}");
    let (s, r) = mc.post(
        &format!("{A}/org/create"),
        Some(&alice),
        &json!({"name": "x", "type": "billing"}),
    );
    assert_eq!((s, msg(&r).contains("type")), (400, true), "{r}");
    // Unknown and missing fields, broken JSON.
    let (s, r) = mc.post(
        "/api/v1/usercreate",
        None,
        &json!({"name": "c", "email": "c@x", "passhash": strong, "admin": true}),
    );
    assert_eq!(
        (s, msg(&r).contains("unknown field `admin`")),
        (400, true),
        "{r}"
    );
    let (s, r) = mc.post("/api/v1/usercreate", None, &json!({"name": "c"}));
    assert_eq!((s, msg(&r).contains("missing field")), (400, true), "{r}");
    let (s, _, r) = mc.post_raw("/api/v1/login", None, "{not json", &[]);
    assert_eq!(s, 400, "{r}");
}

/// Two developer-ish worlds: alice manages devA, bob manages operator org opB, carol views
/// devA, eve has no role. Grants by non-managers, roles of the other org type, unknown
/// organisations, duplicates, the last manager, and what each sees of orgs and users.
fn roles_and_views(b: Backend) {
    let mc = Mc::start(b, &[]);
    let admin = mc.admin_token();
    let alice = mc.user("alice");
    let bob = mc.user("bob");
    let carol = mc.user("carol");
    let eve = mc.user("eve");
    mc.user("dave");
    let post = |t: &str, path: &str, body: Value| mc.post(&format!("{A}{path}"), Some(t), &body);
    assert_eq!(
        post(
            &alice,
            "/org/create",
            json!({"name": "devA", "type": "developer"})
        )
        .0,
        200
    );
    assert_eq!(
        post(
            &bob,
            "/org/create",
            json!({"name": "opB", "type": "operator"})
        )
        .0,
        200
    );
    let add = |t: &str, org: &str, user: &str, role: &str| {
        post(
            t,
            "/role/adduser",
            json!({"org": org, "username": user, "role": role}),
        )
    };
    let remove = |t: &str, org: &str, user: &str, role: &str| {
        post(
            t,
            "/role/removeuser",
            json!({"org": org, "username": user, "role": role}),
        )
    };
    assert_eq!(add(&alice, "devA", "carol", "DeveloperViewer").0, 200);
    // A viewer cannot grant; neither can a manager of another org, nor a no-role user.
    for t in [&carol, &bob, &eve] {
        let (s, r) = add(t, "devA", "dave", "DeveloperContributor");
        assert_eq!(s, 403, "{r}");
        assert!(msg(&r).contains("users:manage"), "{r}");
    }
    // Another org type's role.
    let (s, r) = add(&alice, "devA", "dave", "OperatorViewer");
    assert_eq!(
        (s, msg(&r)),
        (
            400,
            "Can only assign developer roles for developer organization".into()
        )
    );
    let (s, r) = add(&bob, "opB", "dave", "DeveloperViewer");
    assert_eq!(
        (s, msg(&r)),
        (
            400,
            "Can only assign operator roles for operator organization".into()
        )
    );
    // Admin roles are for admins only; unknown roles are bad input.
    assert_eq!(add(&alice, "", "dave", "AdminManager").0, 403);
    assert_eq!(add(&alice, "devA", "dave", "Overlord").0, 400);
    // Unknown organisation: 403 for non-admins (no fishing), 404 for admins; unknown user 404.
    assert_eq!(add(&alice, "nosuchorg", "dave", "DeveloperViewer").0, 403);
    assert_eq!(add(&admin, "nosuchorg", "dave", "DeveloperViewer").0, 404);
    assert_eq!(add(&alice, "devA", "nosuchuser", "DeveloperViewer").0, 404);
    // One role per user and org.
    assert_eq!(add(&alice, "devA", "carol", "DeveloperContributor").0, 409);
    // The last manager cannot remove themselves; with a second manager they can.
    let (s, r) = remove(&alice, "devA", "alice", "DeveloperManager");
    assert_eq!(
        (s, msg(&r)),
        (
            400,
            "Error: Cannot remove the last remaining manager of an org".into()
        )
    );
    assert_eq!(add(&alice, "devA", "dave", "DeveloperManager").0, 200);
    assert_eq!(remove(&carol, "devA", "dave", "DeveloperManager").0, 403);
    assert_eq!(remove(&alice, "devA", "alice", "DeveloperManager").0, 200);
    assert_eq!(
        add(&alice, "devA", "eve", "DeveloperViewer").0,
        403,
        "alice is no manager now"
    );
    // Org views.
    let orgs = |t: &str| names(&post(t, "/org/show", json!({})).1, "name");
    assert_eq!(orgs(&admin), ["devA", "opB"]);
    assert_eq!(orgs(&bob), ["opB"]);
    assert_eq!(orgs(&carol), ["devA"]);
    assert_eq!(orgs(&alice), Vec::<String>::new());
    assert_eq!(orgs(&eve), Vec::<String>::new());
    // User views: members of the orgs one may view, and oneself.
    let users = |t: &str, body: Value| post(t, "/user/show", body);
    assert_eq!(
        names(&users(&carol, json!({})).1, "name"),
        ["carol", "dave"]
    );
    assert_eq!(names(&users(&eve, json!({})).1, "name"), ["eve"]);
    assert_eq!(names(&users(&bob, json!({})).1, "name"), ["bob"]);
    assert_eq!(names(&users(&admin, json!({})).1, "name").len(), 6);
    assert_eq!(users(&carol, json!({"org": "opB"})).0, 403);
    assert_eq!(
        names(&users(&bob, json!({"org": "opB"})).1, "name"),
        ["bob"]
    );
    let (s, r) = users(&admin, json!({}));
    assert!(
        s == 200 && !r.to_string().contains("argon2"),
        "no hashes shown: {r}"
    );
    // My roles.
    let mine = post(&carol, "/role/assignment/show", json!({})).1;
    assert_eq!(
        mine,
        json!([{"org": "devA", "username": "carol", "role": "DeveloperViewer"}])
    );
    assert_eq!(
        post(&eve, "/role/show", json!({}))
            .1
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert!(
        post(&eve, "/role/perms/show", json!({}))
            .1
            .as_array()
            .unwrap()
            .len()
            > 100
    );
    // Deleting users: oneself or admin; never the last manager.
    assert_eq!(post(&eve, "/user/delete", json!({"name": "carol"})).0, 403);
    let (s, r) = post(&admin, "/user/delete", json!({"name": "bob"}));
    assert_eq!(s, 400, "bob is opB's last manager: {r}");
    assert_eq!(
        post(&admin, "/user/delete", json!({"name": "nosuch"})).0,
        404
    );
    // Org delete: managers (and admins) only; unknown org 403/404.
    assert_eq!(post(&carol, "/org/delete", json!({"name": "devA"})).0, 403);
    assert_eq!(post(&eve, "/org/delete", json!({"name": "ghost"})).0, 403);
    assert_eq!(post(&admin, "/org/delete", json!({"name": "ghost"})).0, 404);
    assert_eq!(post(&bob, "/org/delete", json!({"name": "opB"})).0, 200);
    assert_eq!(orgs(&admin), ["devA"]);
    assert_eq!(post(&admin, "/user/delete", json!({"name": "bob"})).0, 200);
}

/// API keys: a subset of the creator's permissions in one org (escalation refused with 403
/// naming the permission), key logins, a key's token cannot manage keys, deleted keys stop.
fn api_keys(b: Backend) {
    let mc = Mc::start(b, &[]);
    let alice = mc.user("alice");
    let bob = mc.user("bob");
    let post = |t: &str, path: &str, body: Value| mc.post(&format!("{A}{path}"), Some(t), &body);
    assert_eq!(
        post(
            &alice,
            "/org/create",
            json!({"name": "devA", "type": "developer"})
        )
        .0,
        200
    );
    assert_eq!(
        post(
            &bob,
            "/org/create",
            json!({"name": "opB", "type": "operator"})
        )
        .0,
        200
    );
    let create = |t: &str, org: &str, perms: Value| {
        post(
            t,
            "/user/create/apikey",
            json!({"org": org, "description": "ci", "permissions": perms}),
        )
    };
    // Escalation: cloudlets:manage is an operator permission alice does not hold in devA.
    let (s, r) = create(
        &alice,
        "devA",
        json!([{"resource": "apps", "action": "manage"}, {"resource": "cloudlets", "action": "manage"}]),
    );
    assert_eq!(s, 403, "{r}");
    assert!(msg(&r).contains("cloudlets:manage"), "{r}");
    // Another org where she holds nothing.
    assert_eq!(
        create(
            &alice,
            "opB",
            json!([{"resource": "cloudlets", "action": "view"}])
        )
        .0,
        403
    );
    assert_eq!(
        create(
            &alice,
            "devA",
            json!([{"resource": "apps", "action": "destroy"}])
        )
        .0,
        400
    );
    assert_eq!(create(&alice, "devA", json!([])).0, 400);
    let (s, key) = create(
        &alice,
        "devA",
        json!([{"resource": "users", "action": "view"}]),
    );
    assert_eq!(s, 200, "{key}");
    let (id, secret) = (key["id"].as_str().unwrap(), key["apikey"].as_str().unwrap());
    let (s, r) = mc.post(
        "/api/v1/login",
        None,
        &json!({"apikeyid": id, "apikey": secret}),
    );
    assert_eq!(s, 200, "{r}");
    let kt = r["token"].as_str().unwrap().to_string();
    assert_eq!(
        mc.post(
            "/api/v1/login",
            None,
            &json!({"apikeyid": id, "apikey": "guess"})
        )
        .0,
        401
    );
    // The key acts with its own permission only: it sees devA, manages nothing.
    assert_eq!(
        names(&post(&kt, "/org/show", json!({})).1, "name"),
        ["devA"]
    );
    assert_eq!(
        post(
            &kt,
            "/role/adduser",
            json!({"org": "devA", "username": "bob", "role": "DeveloperViewer"})
        )
        .0,
        403
    );
    // A key's token may not manage keys, nor create orgs or change the password.
    for (path, body) in [
        (
            "/user/create/apikey",
            json!({"org": "devA", "permissions": [{"resource": "users", "action": "view"}]}),
        ),
        ("/user/show/apikey", json!({})),
        ("/user/delete/apikey", json!({"id": id})),
        ("/org/create", json!({"name": "devK", "type": "developer"})),
        ("/user/newpass", json!({"password": password_of("new")})),
    ] {
        let (s, r) = post(&kt, path, body);
        assert_eq!(s, 403, "{path}: {r}");
        assert!(msg(&r).contains("log in with the user's password"), "{r}");
    }
    let shown = post(&alice, "/user/show/apikey", json!({})).1;
    assert_eq!(names(&shown, "id"), [id]);
    assert!(!shown.to_string().contains(secret), "{shown}");
    // Another user's key is not theirs to delete (404 as if absent).
    assert_eq!(post(&bob, "/user/delete/apikey", json!({"id": id})).0, 404);
    assert_eq!(
        post(&alice, "/user/delete/apikey", json!({"id": id})).0,
        200
    );
    assert_eq!(
        post(&kt, "/org/show", json!({})).0,
        401,
        "deleted key's token"
    );
}

/// The audit log: passwords and key secrets never appear; entries are visible to their
/// author and, per organisation, to those who may view it.
fn audit_log(b: Backend) {
    let mc = Mc::start(b, &[]);
    let admin = mc.admin_token();
    let alice = mc.user("alice");
    let carol = mc.user("carol");
    let eve = mc.user("eve");
    let post = |t: &str, path: &str, body: Value| mc.post(&format!("{A}{path}"), Some(t), &body);
    post(
        &alice,
        "/org/create",
        json!({"name": "devA", "type": "developer"}),
    );
    post(
        &alice,
        "/role/adduser",
        json!({"org": "devA", "username": "carol", "role": "DeveloperViewer"}),
    );
    let key = post(
        &alice,
        "/user/create/apikey",
        json!({"org": "devA", "permissions": [{"resource": "apps", "action": "view"}]}),
    )
    .1;
    let secret = key["apikey"].as_str().unwrap();
    mc.post(
        "/api/v1/login",
        None,
        &json!({"apikeyid": key["id"], "apikey": secret}),
    );
    mc.post(
        "/api/v1/login",
        None,
        &json!({"username": "alice", "password": "a wrong one"}),
    );
    post(
        &alice,
        "/user/newpass",
        json!({"password": "brand new Pelican-Tuba 77"}),
    );
    let mine = post(&alice, "/audit/show", json!({})).1;
    let ops: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    for op in [
        "/api/v1/auth/org/create",
        "/api/v1/auth/role/adduser",
        "/api/v1/auth/user/create/apikey",
        "/api/v1/login",
        "/api/v1/auth/user/newpass",
    ] {
        assert!(ops.contains(&op), "{op} in {ops:?}");
    }
    let failed = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == 401)
        .expect("failed login");
    assert_eq!(failed["error"], "Invalid username or password");
    // Per org: members and admins; others 403.
    let (s, org_log) = post(&carol, "/audit/show", json!({"org": "devA"}));
    assert_eq!(s, 200);
    assert!(
        org_log.to_string().contains("/api/v1/auth/role/adduser"),
        "{org_log}"
    );
    assert_eq!(post(&eve, "/audit/show", json!({"org": "devA"})).0, 403);
    assert_eq!(post(&admin, "/audit/show", json!({"org": "devA"})).0, 200);
    let eve_log = post(&eve, "/audit/show", json!({})).1;
    assert_eq!(
        names(&eve_log, "operation"),
        ["/api/v1/login", "/api/v1/usercreate"],
        "eve's own entries only: {eve_log}"
    );
    assert_eq!(post(&eve, "/audit/show", json!({"limit": 0})).0, 400);
    // Redaction: no password, key secret or token anywhere.
    let all = format!(
        "{mine}{org_log}{}",
        post(&admin, "/audit/show", json!({"org": "devA", "limit": 1000})).1
    );
    for secret_text in [
        password_of("alice").as_str(),
        secret,
        "a wrong one",
        "brand new Pelican-Tuba 77",
        alice.as_str(),
    ] {
        assert!(
            !all.contains(secret_text),
            "{secret_text:?} leaked into the audit log"
        );
    }
    assert!(all.contains("<redacted>"), "{all}");
}

/// The region registry: admins manage it; everyone may list it, addresses blanked. And the
/// bootstrap's files.
fn controllers(b: Backend) {
    let mc = Mc::start(b, &[]);
    // The bootstrapped admin's password and the token keys are secrets: 0600.
    use std::os::unix::fs::PermissionsExt;
    for f in [mc.dir.path().join("admin-password"), mc.signing_keys_file()] {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    let admin = mc.admin_token();
    let alice = mc.user("alice");
    let post = |t: &str, path: &str, body: Value| mc.post(&format!("{A}{path}"), Some(t), &body);
    let c =
        json!({"region": "local", "address": "127.0.0.1:55001", "notifyaddr": "127.0.0.1:37001"});
    let (s, r) = post(&alice, "/controller/create", c.clone());
    assert_eq!(s, 403);
    assert!(msg(&r).contains("controllers:manage"), "{r}");
    assert_eq!(post(&admin, "/controller/create", c.clone()).0, 200);
    assert_eq!(post(&admin, "/controller/create", c.clone()).0, 409);
    assert_eq!(post(&admin, "/controller/show", json!({})).1, json!([c]));
    assert_eq!(
        post(&alice, "/controller/show", json!({})).1,
        json!([{"region": "local", "address": "", "notifyaddr": ""}])
    );
    assert_eq!(
        post(&alice, "/controller/delete", json!({"region": "local"})).0,
        403
    );
    assert_eq!(
        post(&admin, "/controller/delete", json!({"region": "local"})).0,
        200
    );
    assert_eq!(
        post(&admin, "/controller/delete", json!({"region": "local"})).0,
        404
    );
    assert_eq!(
        mc.post(&format!("{A}/controller/show"), None, &json!({})).0,
        401
    );
}

both_backends!(
    names_and_passwords,
    roles_and_views,
    api_keys,
    audit_log,
    controllers,
);
