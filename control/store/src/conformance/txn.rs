//! Transactions: each compare kind, atomic failure, the else branch, invalid requests.

use super::{StoreFactory, pairs};
use crate::{Compare, MAX_TXN_OPS, Op, Store, StoreError, Txn};

/// Runs `compare` as the only condition of a txn that puts `marker`; returns whether it held
/// and checks that the marker was written exactly when it did.
async fn holds(s: &dyn Store, compare: Compare, marker: &str) -> bool {
    let resp = s
        .txn(Txn::new().when([compare]).and_then([Op::put(marker, "x")]))
        .await
        .unwrap();
    let written = s.get(marker.as_bytes()).await.unwrap().is_some();
    assert_eq!(
        resp.succeeded, written,
        "txn reported succeeded={} but marker written={written}",
        resp.succeeded
    );
    resp.succeeded
}

/// `Absent` holds for missing keys only (including deleted ones).
pub async fn txn_compare_absent(f: &dyn StoreFactory) {
    let s = f.open().await;
    assert!(holds(&*s, Compare::absent("k"), "m1").await);
    s.put(b"k", b"v").await.unwrap();
    assert!(!holds(&*s, Compare::absent("k"), "m2").await);
    s.delete(b"k").await.unwrap();
    assert!(holds(&*s, Compare::absent("k"), "m3").await);

    // The create-if-absent idiom: the second create fails and leaves the first value.
    let create = |v: &'static str| {
        Txn::new()
            .when([Compare::absent("obj")])
            .and_then([Op::put("obj", v)])
    };
    assert!(s.txn(create("first")).await.unwrap().succeeded);
    assert!(!s.txn(create("second")).await.unwrap().succeeded);
    assert_eq!(s.get(b"obj").await.unwrap().unwrap().value, b"first");
}

/// `Present` holds for existing keys only.
pub async fn txn_compare_present(f: &dyn StoreFactory) {
    let s = f.open().await;
    assert!(!holds(&*s, Compare::present("k"), "m1").await);
    s.put(b"k", b"").await.unwrap(); // an empty value still exists
    assert!(holds(&*s, Compare::present("k"), "m2").await);
    s.delete(b"k").await.unwrap();
    assert!(!holds(&*s, Compare::present("k"), "m3").await);
}

/// `ModRevision` holds for exactly the last-modified revision; a missing key has revision 0.
pub async fn txn_compare_mod_revision(f: &dyn StoreFactory) {
    let s = f.open().await;
    assert!(
        holds(&*s, Compare::mod_revision("k", 0), "m1").await,
        "missing key has mod_revision 0"
    );
    let r1 = s.put(b"k", b"v1").await.unwrap();
    assert!(!holds(&*s, Compare::mod_revision("k", 0), "m2").await);
    assert!(!holds(&*s, Compare::mod_revision("k", r1 - 1), "m3").await);
    assert!(!holds(&*s, Compare::mod_revision("k", r1 + 1), "m4").await);
    assert!(holds(&*s, Compare::mod_revision("k", r1), "m5").await);

    // Optimistic update: read, then write only if nobody wrote in between.
    let read = s.get(b"k").await.unwrap().unwrap();
    s.put(b"k", b"someone else").await.unwrap();
    let update = Txn::new()
        .when([Compare::mod_revision("k", read.mod_revision)])
        .and_then([Op::put("k", "mine")]);
    assert!(
        !s.txn(update).await.unwrap().succeeded,
        "stale mod_revision must fail"
    );
    assert_eq!(s.get(b"k").await.unwrap().unwrap().value, b"someone else");
}

/// `Value` holds for an exact byte match on an existing key; never on a missing key.
pub async fn txn_compare_value(f: &dyn StoreFactory) {
    let s = f.open().await;
    assert!(
        !holds(&*s, Compare::value("k", ""), "m1").await,
        "value compare on a missing key"
    );
    s.put(b"k", b"blue").await.unwrap();
    assert!(holds(&*s, Compare::value("k", "blue"), "m2").await);
    assert!(!holds(&*s, Compare::value("k", "blu"), "m3").await);
    assert!(!holds(&*s, Compare::value("k", "blue!"), "m4").await);
    s.put(b"k", b"").await.unwrap();
    assert!(holds(&*s, Compare::value("k", ""), "m5").await);
}

/// If any compare fails, none of the success ops is applied and no revision is made.
pub async fn txn_failed_writes_nothing(f: &dyn StoreFactory) {
    let s = f.open().await;
    s.put(b"a", b"1").await.unwrap();
    let rb = s.put(b"b", b"1").await.unwrap();
    let before = s.range(b"").await.unwrap();

    let txn = Txn::new()
        .when([
            Compare::present("a"),
            Compare::mod_revision("b", rb),
            Compare::absent("a"),
        ])
        .and_then([
            Op::put("a", "2"),
            Op::put("c", "new"),
            Op::delete("b"),
            Op::delete_prefix("b"),
        ]);
    let resp = s.txn(txn).await.unwrap();
    assert!(!resp.succeeded, "one false compare must fail the whole txn");

    let after = s.range(b"").await.unwrap();
    assert_eq!(after.kvs, before.kvs, "a failed txn changed data");
    if f.exclusive() {
        assert_eq!(resp.revision, before.revision);
        assert_eq!(
            after.revision, before.revision,
            "a failed txn made a revision"
        );
    }
}

/// The failure branch runs when a compare fails, and only then.
pub async fn txn_else_branch(f: &dyn StoreFactory) {
    let s = f.open().await;
    let txn = || {
        Txn::new()
            .when([Compare::absent("lock")])
            .and_then([Op::put("lock", "held"), Op::put("winner", "then")])
            .or_else([Op::put("loser", "else"), Op::delete("winner")])
    };
    let first = s.txn(txn()).await.unwrap();
    assert!(first.succeeded);
    assert_eq!(
        pairs(&s.range(b"").await.unwrap().kvs),
        [
            ("lock".into(), "held".into()),
            ("winner".into(), "then".into())
        ]
    );

    let second = s.txn(txn()).await.unwrap();
    assert!(!second.succeeded);
    assert!(
        second.revision > first.revision,
        "the else branch wrote, so it made a revision"
    );
    assert_eq!(
        pairs(&s.range(b"").await.unwrap().kvs),
        [
            ("lock".into(), "held".into()),
            ("loser".into(), "else".into())
        ]
    );
    let loser = s.get(b"loser").await.unwrap().unwrap();
    assert_eq!(loser.mod_revision, second.revision);
}

/// Malformed transactions are refused before anything is written.
pub async fn txn_invalid_rejected(f: &dyn StoreFactory) {
    let s = f.open().await;
    s.put(b"keep", b"v").await.unwrap();
    let before = s.range(b"").await.unwrap();
    let bad = [
        Txn::new().and_then([Op::put("a", "1"), Op::put("a", "2")]),
        Txn::new().and_then([Op::delete_prefix("a/"), Op::put("a/b", "1")]),
        Txn::new().and_then([Op::delete("a"), Op::put("a", "1")]),
        Txn::new().or_else([Op::put("x", "1"), Op::put("x", "1")]),
        Txn::new().and_then([Op::put("", "1")]),
        Txn::new().when([Compare::present("")]),
        Txn::new().and_then((0..=MAX_TXN_OPS).map(|i| Op::put(format!("k{i}"), "v"))),
    ];
    for txn in bad {
        let debug = format!("{txn:?}");
        match s.txn(txn).await {
            Err(StoreError::InvalidRequest(msg)) => assert!(!msg.is_empty()),
            other => panic!("{debug} was not refused: {other:?}"),
        }
    }
    // Exactly the limit is fine.
    let full = Txn::new().and_then((0..MAX_TXN_OPS).map(|i| Op::put(format!("k{i}"), "v")));
    assert!(s.txn(full).await.unwrap().succeeded);
    assert_eq!(s.range(b"k").await.unwrap().kvs.len(), MAX_TXN_OPS + 1);
    assert_eq!(s.get(b"keep").await.unwrap(), before.kvs.into_iter().next());
}
