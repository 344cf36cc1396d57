//! Tests of [`super`]: changes find exactly their streams.

use super::*;

fn client(id: u64, lat: f64, lon: f64) -> Arc<Client> {
    Arc::new(Client::new(id, LatLon::new(lat, lon).unwrap()))
}

fn cloudlet(name: &str) -> CloudletKey {
    CloudletKey {
        organization: "op".into(),
        name: name.into(),
    }
}

fn at(tag: u64, cl: &str, lat: f64, lon: f64) -> Placement {
    Placement {
        group: GroupKey::Inst(tag),
        app: 7,
        cloudlet: Some(cloudlet(cl)),
        at: Some(LatLon::new(lat, lon).unwrap()),
    }
}

#[test]
fn groups_cloudlets_and_apps_find_only_their_streams() {
    let r = Registry::default();
    let a = client(1, 52.5, 13.4);
    let b = client(2, 52.5, 13.4);
    let c = client(3, 48.1, 11.6);
    r.add(a.clone(), &at(10, "berlin", 52.52, 13.405));
    r.add(b.clone(), &at(10, "berlin", 52.52, 13.405));
    r.add(c.clone(), &at(20, "munich", 48.13, 11.58));
    assert_eq!(r.open(), 3);
    let ids = |v: Vec<Arc<Client>>| {
        let mut ids: Vec<u64> = v.iter().map(|c| c.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(r.clients(GroupKey::Inst(10))), [1, 2]);
    let on: Vec<(u64, u64)> = r
        .on_cloudlet(&cloudlet("munich"))
        .iter()
        .map(|(t, c)| (*t, c.id))
        .collect();
    assert_eq!(on, [(20, 3)]);
    // An instance near Munich is nearer only for the Munich client... which already is there;
    // one near Berlin's clients (Potsdam) is nearer for them, not for C.
    assert_eq!(
        ids(r.nearer(7, 30, LatLon::new(52.39, 13.06).unwrap())),
        Vec::<u64>::new()
    );
    assert_eq!(
        ids(r.nearer(7, 30, LatLon::new(52.50, 13.40).unwrap())),
        [1, 2]
    );
    // Another app's instance reaches nobody; the instance's own streams are always included.
    assert!(r.nearer(8, 30, LatLon::new(52.5, 13.4).unwrap()).is_empty());
    assert_eq!(
        ids(r.nearer(7, 20, LatLon::new(48.13, 11.58).unwrap())),
        [3]
    );

    r.relocate(1, GroupKey::Inst(10), &at(20, "munich", 48.13, 11.58));
    assert_eq!(ids(r.clients(GroupKey::Inst(20))), [1, 3]);
    r.remove(2, GroupKey::Inst(10));
    assert!(r.on_cloudlet(&cloudlet("berlin")).is_empty());
    assert_eq!(r.open(), 2);
    let inner = r.lock();
    assert!(!inner.groups.contains_key(&GroupKey::Inst(10)));
    assert_eq!(inner.by_app[&7].len(), 1);
}

#[test]
fn a_full_queue_marks_the_stream_for_a_resync() {
    let a = client(1, 1.0, 1.0);
    let p = |about| Push {
        kind: PushKind::LatencyRequest,
        about,
    };
    for i in 0..PUSH_QUEUE as u64 {
        assert!(a.push(p(i)));
    }
    assert!(!a.take_missed());
    assert!(!a.push(p(99)));
    assert!(a.take_missed());
    assert!(!a.take_missed());
    let got = a.take();
    assert_eq!(got.len(), PUSH_QUEUE);
    assert_eq!(
        (got[0], got[PUSH_QUEUE - 1]),
        (p(0), p(PUSH_QUEUE as u64 - 1))
    );
    assert!(a.take().is_empty());
    a.close();
    assert!(!a.push(p(1)));
}
