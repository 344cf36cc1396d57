//! The session and the replica, without sockets: what a subscriber is told to do for each shape
//! of stream the controller (or a broken network) can produce.

use std::time::Duration;

use edge_model::{AppInst, AppInstKey, HealthCheck, Object, ObjectKey};

use super::*;
use crate::convert::tests::{app_inst, objects};
use crate::notify::Notice;

fn update(version: u64, object: Object) -> Notice {
    Notice::Update { version, object }
}

fn inst(name: &str) -> AppInst {
    AppInst {
        key: AppInstKey {
            organization: "AcmeAppCo".into(),
            name: name.into(),
        },
        ..app_inst()
    }
}

fn inst_key(name: &str) -> ObjectKey {
    ObjectKey::AppInst(inst(name).key)
}

/// A session and a replica after one complete snapshot of `objects` at `version`.
fn synced(objects: Vec<Object>, version: u64) -> (Session, Replica) {
    let (mut s, mut r) = (Session::new(), Replica::new());
    s.connected();
    for o in objects {
        s.notice(update(version, o), &mut r);
    }
    s.notice(Notice::SnapshotEnd { version }, &mut r);
    assert_eq!(s.step(), Step::Publish { version });
    (s, r)
}

#[test]
fn nothing_is_published_until_the_snapshot_ends() {
    let (mut s, mut r) = (Session::new(), Replica::new());
    s.connected();
    assert!(s.in_snapshot());
    for o in objects() {
        s.notice(update(7, o), &mut r);
        assert_eq!(s.step(), Step::Wait);
    }
    s.notice(Notice::SnapshotEnd { version: 7 }, &mut r);
    assert!(!s.in_snapshot());
    assert_eq!(s.step(), Step::Publish { version: 7 });
    assert_eq!(r.len(), objects().len());
    // Answered: a second step has nothing to say.
    assert_eq!(s.step(), Step::Wait);
}

#[test]
fn an_empty_snapshot_is_published_so_its_version_is_acknowledged() {
    let (mut s, mut r) = (Session::new(), Replica::new());
    s.connected();
    s.notice(Notice::SnapshotEnd { version: 3 }, &mut r);
    assert_eq!(s.step(), Step::Publish { version: 3 });
}

#[test]
fn snapshot_end_prunes_what_the_snapshot_did_not_resend() {
    let (mut s, mut r) = synced(vec![inst("a").into(), inst("b").into()], 5);
    // Reconnect: while away, `b` was deleted and `c` created.
    s.connected();
    s.notice(update(9, inst("a").into()), &mut r);
    s.notice(update(9, inst("c").into()), &mut r);
    assert_eq!(s.step(), Step::Wait);
    assert!(
        r.app_inst(&inst("b").key).is_some(),
        "not pruned before the end"
    );
    s.notice(Notice::SnapshotEnd { version: 9 }, &mut r);
    assert_eq!(s.step(), Step::Publish { version: 9 });
    let mut keys = r.keys();
    keys.sort();
    assert_eq!(keys, [inst_key("a"), inst_key("c")]);
}

#[test]
fn a_reconnect_in_the_middle_of_a_snapshot_prunes_by_the_complete_one() {
    let (mut s, mut r) = synced(vec![inst("a").into(), inst("b").into()], 5);
    s.connected();
    s.notice(update(8, inst("b").into()), &mut r);
    s.notice(update(8, inst("x").into()), &mut r);
    // The connection drops before SNAPSHOT_END; the next one's snapshot holds only `a`.
    s.connected();
    s.notice(update(9, inst("a").into()), &mut r);
    assert_eq!(s.step(), Step::Wait);
    s.notice(Notice::SnapshotEnd { version: 9 }, &mut r);
    assert_eq!(s.step(), Step::Publish { version: 9 });
    assert_eq!(r.keys(), [inst_key("a")]);
}

#[test]
fn a_batch_that_changes_nothing_is_acknowledged_without_a_build() {
    let (mut s, mut r) = synced(vec![inst("a").into()], 5);
    s.notice(update(6, inst("a").into()), &mut r);
    assert_eq!(s.step(), Step::Ack { version: 6 });
    // Deleting what is not held changes nothing either.
    s.notice(
        Notice::Delete {
            version: 7,
            key: inst_key("zz"),
        },
        &mut r,
    );
    assert_eq!(s.step(), Step::Ack { version: 7 });
    let changed = AppInst {
        health: HealthCheck::Ok,
        ..inst("a")
    };
    s.notice(update(8, changed.clone().into()), &mut r);
    assert_eq!(s.step(), Step::Publish { version: 8 });
    assert_eq!(r.app_inst(&changed.key), Some(&changed));
}

#[test]
fn a_duplicate_version_is_not_answered_twice() {
    let (mut s, mut r) = synced(vec![inst("a").into()], 5);
    s.notice(update(5, inst("a").into()), &mut r);
    assert_eq!(s.step(), Step::Wait);
}

#[test]
fn an_older_version_is_applied_but_never_lowers_the_acknowledgement() {
    let (mut s, mut r) = synced(vec![inst("a").into()], 10);
    s.notice(update(4, inst("b").into()), &mut r);
    assert_eq!(s.step(), Step::Publish { version: 10 });
    assert!(r.app_inst(&inst("b").key).is_some());
    s.notice(update(3, inst("b").into()), &mut r);
    assert_eq!(s.step(), Step::Wait);
    // In one batch the highest version counts, whatever the order.
    s.notice(update(12, inst("c").into()), &mut r);
    s.notice(update(11, inst("d").into()), &mut r);
    assert_eq!(s.step(), Step::Publish { version: 12 });
}

#[test]
fn a_new_connection_may_start_at_a_lower_version() {
    // A controller restarted on a fresh store: its revisions start over.
    let (mut s, mut r) = synced(vec![inst("a").into()], 50);
    s.connected();
    s.notice(update(2, inst("a").into()), &mut r);
    s.notice(Notice::SnapshotEnd { version: 2 }, &mut r);
    assert_eq!(s.step(), Step::Publish { version: 2 });
}

#[test]
fn deletes_remove_and_publish() {
    let (mut s, mut r) = synced(objects(), 5);
    for (i, o) in objects().iter().enumerate() {
        let version = 6 + i as u64;
        s.notice(
            Notice::Delete {
                version,
                key: o.key(),
            },
            &mut r,
        );
        assert_eq!(s.step(), Step::Publish { version });
    }
    assert!(r.is_empty());
}

#[test]
fn the_replica_holds_every_kind_by_key() {
    let r: Replica = objects().into_iter().collect();
    assert_eq!(r.len(), objects().len());
    for o in objects() {
        assert!(r.holds(&o), "{:?}", o.key());
    }
    let mut keys = r.keys();
    keys.sort();
    let mut want: Vec<ObjectKey> = objects().iter().map(Object::key).collect();
    want.sort();
    assert_eq!(keys, want);
    let mut r = r;
    let a = app_inst();
    assert_eq!(r.insert(a.clone().into()), Some(Object::AppInst(a.clone())));
    assert_eq!(r.remove(&ObjectKey::AppInst(a.key.clone())), Some(a.into()));
    assert_eq!(r.len(), objects().len() - 1);
}

#[test]
fn backoff_doubles_to_a_cap_and_resets_after_a_long_session() {
    let ms = Duration::from_millis;
    let mut b = Backoff::default();
    let delays: Vec<_> = (0..8).map(|_| b.after_session(ms(5))).collect();
    assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000].map(ms));
    assert_eq!(b.after_session(Duration::from_secs(11)), ms(100));
    assert_eq!(b.after_session(ms(5)), ms(200));
}
