use super::*;
use crate::table::Proto;

fn table(yaml: &str) -> RouteTable {
    RouteTable::from_yaml(yaml).unwrap()
}

fn tcp(port: u16) -> ListenerKey {
    ListenerKey {
        proto: Proto::Tcp,
        port,
    }
}

fn udp(port: u16) -> ListenerKey {
    ListenerKey {
        proto: Proto::Udp,
        port,
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The state after `plan` was carried out in full on `table` (what the executor would hold).
fn after(before: &Before, table: &RouteTable, plan: &Plan) -> Before {
    let mut next = Before::default();
    for (key, version) in &plan.publish {
        let route = match version {
            Version::New => table.get(key).unwrap().clone(),
            Version::Previous => before.routes[key].clone(),
        };
        next.listeners.insert(*key, route.bind_addr());
        next.routes.insert(*key, route);
    }
    next.backends = before.backends.clone();
    for bk in &plan.drain {
        next.backends.remove(bk);
    }
    for bk in &plan.add {
        next.backends.insert(*bk, None);
    }
    for (bk, check) in &plan.checks {
        next.backends.insert(*bk, check.clone());
    }
    next
}

const TWO: &str = r#"
defaults: {bind: 127.0.0.1}
listeners:
  - {proto: tcp, port: 8080, backends: ["127.0.0.1:1", "127.0.0.1:2"],
     health_check: {interval: 1s, timeout: 100ms}}
  - {proto: udp, port: 5000, backends: ["127.0.0.1:3"]}
"#;

#[test]
fn first_table_binds_starts_and_checks_everything() {
    let t = table(TWO);
    let before = Before::default();
    assert_eq!(
        sockets_needed(&before, &t),
        BTreeSet::from([tcp(8080), udp(5000)])
    );
    let p = plan(&before, &t, &BTreeSet::new());
    assert_eq!(
        p.publish,
        vec![(tcp(8080), Version::New), (udp(5000), Version::New)]
    );
    assert_eq!(p.start, vec![tcp(8080), udp(5000)]);
    assert!(p.stop.is_empty() && p.drain.is_empty());
    assert_eq!(p.add.len(), 3);
    // Only the TCP route has a check; the UDP backend stays unchecked (healthy).
    let hc = t.get(&tcp(8080)).unwrap().health_check.clone();
    assert_eq!(
        p.checks,
        vec![
            ((tcp(8080), addr("127.0.0.1:1")), hc.clone()),
            ((tcp(8080), addr("127.0.0.1:2")), hc),
        ]
    );
}

#[test]
fn the_same_table_again_changes_nothing() {
    let t = table(TWO);
    let first = plan(&Before::default(), &t, &BTreeSet::new());
    let before = after(&Before::default(), &t, &first);
    assert!(sockets_needed(&before, &t).is_empty());
    let p = plan(&before, &t, &BTreeSet::new());
    assert_eq!(p.publish.len(), 2);
    assert_eq!(
        (p.add, p.stop, p.start, p.drain, p.checks),
        (vec![], vec![], vec![], vec![], vec![])
    );
}

#[test]
fn removed_routes_stop_and_removed_backends_drain() {
    let t = table(TWO);
    let before = after(
        &Before::default(),
        &t,
        &plan(&Before::default(), &t, &BTreeSet::new()),
    );
    let next = table(
        r#"
defaults: {bind: 127.0.0.1}
listeners:
  - {proto: tcp, port: 8080, backends: ["127.0.0.1:2", "127.0.0.1:4"],
     health_check: {interval: 1s, timeout: 100ms}}
"#,
    );
    let p = plan(&before, &next, &BTreeSet::new());
    assert_eq!(p.stop, vec![udp(5000)]);
    assert_eq!(
        p.drain,
        vec![
            (tcp(8080), addr("127.0.0.1:1")),
            (udp(5000), addr("127.0.0.1:3"))
        ]
    );
    assert_eq!(p.add, vec![(tcp(8080), addr("127.0.0.1:4"))]);
    // The kept backend keeps its running check; only the new one gets one.
    assert_eq!(p.checks.len(), 1);
    assert_eq!(p.checks[0].0, (tcp(8080), addr("127.0.0.1:4")));
}

#[test]
fn a_changed_bind_address_rebinds() {
    let t = table(TWO);
    let before = after(
        &Before::default(),
        &t,
        &plan(&Before::default(), &t, &BTreeSet::new()),
    );
    let next = table(&TWO.replace("{bind: 127.0.0.1}", "{bind: 127.0.0.2}"));
    assert_eq!(
        sockets_needed(&before, &next),
        BTreeSet::from([tcp(8080), udp(5000)])
    );
    let p = plan(&before, &next, &BTreeSet::new());
    assert_eq!(p.stop, vec![tcp(8080), udp(5000)]);
    assert_eq!(p.start, vec![tcp(8080), udp(5000)]);
    assert!(p.add.is_empty() && p.drain.is_empty());
}

#[test]
fn a_failed_certificate_keeps_the_previous_version_and_its_backends() {
    let t = table(TWO);
    let before = after(
        &Before::default(),
        &t,
        &plan(&Before::default(), &t, &BTreeSet::new()),
    );
    // The new version moves the TCP route to other backends and drops its check; it fails.
    let next = table(
        r#"
defaults: {bind: 127.0.0.1}
listeners:
  - {proto: tcp, port: 8080, backends: ["127.0.0.1:9"]}
  - {proto: udp, port: 5000, backends: ["127.0.0.1:3"]}
"#,
    );
    let p = plan(&before, &next, &BTreeSet::from([tcp(8080)]));
    assert_eq!(
        p.publish,
        vec![(tcp(8080), Version::Previous), (udp(5000), Version::New)]
    );
    assert_eq!(
        (p.stop, p.start, p.add, p.drain, p.checks),
        (vec![], vec![], vec![], vec![], vec![])
    );
}

#[test]
fn a_failed_new_listener_is_neither_published_nor_started() {
    let t = table(TWO);
    let p = plan(&Before::default(), &t, &BTreeSet::from([udp(5000)]));
    assert_eq!(p.publish, vec![(tcp(8080), Version::New)]);
    assert_eq!(p.start, vec![tcp(8080)]);
    assert!(!p.add.iter().any(|(k, _)| *k == udp(5000)));
}

#[test]
fn a_failed_rebind_stops_the_old_socket_and_publishes_nothing() {
    let t = table(TWO);
    let before = after(
        &Before::default(),
        &t,
        &plan(&Before::default(), &t, &BTreeSet::new()),
    );
    let next = table(&TWO.replace("{bind: 127.0.0.1}", "{bind: 127.0.0.2}"));
    let p = plan(&before, &next, &BTreeSet::from([udp(5000)]));
    assert_eq!(p.publish, vec![(tcp(8080), Version::New)]);
    assert_eq!(p.stop, vec![tcp(8080), udp(5000)]);
    assert_eq!(p.start, vec![tcp(8080)]);
    assert_eq!(p.drain, vec![(udp(5000), addr("127.0.0.1:3"))]);
}

#[test]
fn check_changes_restart_or_stop_checks() {
    let t = table(TWO);
    let before = after(
        &Before::default(),
        &t,
        &plan(&Before::default(), &t, &BTreeSet::new()),
    );
    let slower = table(&TWO.replace("interval: 1s", "interval: 2s"));
    let p = plan(&before, &slower, &BTreeSet::new());
    assert_eq!(p.checks.len(), 2);
    assert!(
        p.checks
            .iter()
            .all(|(_, c)| c.as_ref().unwrap().interval.as_secs() == 2)
    );
    let off = table(&TWO.replace(
        "health_check: {interval: 1s, timeout: 100ms}",
        "health_check: {enabled: false}",
    ));
    let p = plan(&before, &off, &BTreeSet::new());
    assert_eq!(p.checks.len(), 2);
    assert!(p.checks.iter().all(|(_, c)| c.is_none()));
}
