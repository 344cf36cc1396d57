//! Watches: live, replayed, grouped per revision, compacted, slow, racing a writer, closed.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{StoreFactory, assert_quiet, del, expect_response, next_item, put, summary};
use crate::{Event, Op, StoreError, Txn};

/// A watch from the current revision sees later changes under its prefix, and nothing else.
pub async fn watch_from_now(f: &dyn StoreFactory) {
    let s = f.open().await;
    s.put(b"w/old", b"before").await.unwrap();
    let now = s.current_revision().await.unwrap();
    let mut w = s.watch(b"w/", now).await.unwrap();

    let r1 = s.put(b"w/a", b"1").await.unwrap();
    s.put(b"other/a", b"1").await.unwrap(); // outside the prefix
    let r2 = s.put(b"w/a", b"2").await.unwrap();
    let r3 = s.delete(b"w/a").await.unwrap().unwrap();

    let first = expect_response(&mut w).await;
    assert_eq!(first.revision, r1);
    assert_eq!(summary(&first.events), [put("w/a", "1")]);
    let Event::Put(kv) = &first.events[0] else {
        unreachable!("checked by summary")
    };
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r1, r1, 1)
    );

    let second = expect_response(&mut w).await;
    assert_eq!(second.revision, r2);
    let Event::Put(kv) = &second.events[0] else {
        panic!("expected a put, got {second:?}")
    };
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r1, r2, 2)
    );

    let third = expect_response(&mut w).await;
    assert_eq!(
        (third.revision, summary(&third.events)),
        (r3, vec![del("w/a")])
    );
    assert_eq!(third.events[0].mod_revision(), r3);
    assert_quiet(&mut w).await;
}

/// A watch from a past revision replays exactly the changes after it, then continues live.
pub async fn watch_replay_from_past_revision(f: &dyn StoreFactory) {
    let s = f.open().await;
    let r1 = s.put(b"p/a", b"1").await.unwrap();
    let r2 = s.put(b"p/b", b"1").await.unwrap();
    let r3 = s.delete(b"p/a").await.unwrap().unwrap();

    let mut all = s.watch(b"p/", r1 - 1).await.unwrap();
    let got: Vec<_> = [
        expect_response(&mut all).await,
        expect_response(&mut all).await,
        expect_response(&mut all).await,
    ]
    .into_iter()
    .map(|r| (r.revision, summary(&r.events)))
    .collect();
    assert_eq!(
        got,
        [
            (r1, vec![put("p/a", "1")]),
            (r2, vec![put("p/b", "1")]),
            (r3, vec![del("p/a")])
        ]
    );

    // Starting at r1 means "after r1".
    let mut later = s.watch(b"p/", r1).await.unwrap();
    assert_eq!(expect_response(&mut later).await.revision, r2);
    assert_eq!(expect_response(&mut later).await.revision, r3);

    // Both continue live.
    let r4 = s.put(b"p/c", b"1").await.unwrap();
    assert_eq!(expect_response(&mut all).await.revision, r4);
    assert_eq!(expect_response(&mut later).await.revision, r4);
}

/// All events of one transaction arrive together, with its revision, in op order.
pub async fn watch_txn_events_same_revision(f: &dyn StoreFactory) {
    let s = f.open().await;
    s.put(b"t/a", b"old").await.unwrap();
    s.put(b"t/x/1", b"1").await.unwrap();
    s.put(b"t/x/2", b"2").await.unwrap();
    let start = s.current_revision().await.unwrap();
    let mut w = s.watch(b"t/", start).await.unwrap();

    let multi = Txn::new().and_then([
        Op::put("t/c", "3"),
        Op::delete("t/a"),
        Op::put("t/b", "2"),
        Op::put("elsewhere", "x"),
    ]);
    let r1 = s.txn(multi).await.unwrap().revision;
    let r2 = s
        .txn(Txn::new().and_then([Op::delete_prefix("t/x/")]))
        .await
        .unwrap()
        .revision;

    let one = expect_response(&mut w).await;
    assert_eq!(one.revision, r1);
    assert_eq!(
        summary(&one.events),
        [put("t/c", "3"), del("t/a"), put("t/b", "2")]
    );
    assert!(one.events.iter().all(|e| e.mod_revision() == r1));
    let two = expect_response(&mut w).await;
    assert_eq!(two.revision, r2);
    assert_eq!(summary(&two.events), [del("t/x/1"), del("t/x/2")]);
    assert_quiet(&mut w).await;
}

/// A start revision older than the compacted history is reported as `Compacted` (then the
/// stream ends); a start at the compaction point still works.
pub async fn watch_compacted_start(f: &dyn StoreFactory) {
    let s = f.open().await;
    let r1 = s.put(b"c/a", b"1").await.unwrap();
    let r2 = s.put(b"c/b", b"1").await.unwrap();
    let r3 = s.put(b"c/c", b"1").await.unwrap();
    s.compact(r2).await.unwrap();
    s.compact(r2).await.unwrap(); // again: a no-op, not an error

    let mut w = s.watch(b"c/", r1).await.unwrap();
    match next_item(&mut w).await {
        Some(Err(StoreError::Compacted { requested, oldest })) => {
            assert_eq!(requested, r1);
            assert!(
                oldest >= r2,
                "oldest {oldest} below the compaction point {r2}"
            );
        }
        other => panic!("watch from compacted revision {r1} gave {other:?}"),
    }
    assert!(
        next_item(&mut w).await.is_none(),
        "the stream must end after Compacted"
    );

    let mut ok = s.watch(b"c/", r2).await.unwrap();
    let got = expect_response(&mut ok).await;
    assert_eq!(
        (got.revision, summary(&got.events)),
        (r3, vec![put("c/c", "1")])
    );

    // Values survive compaction; only history goes.
    assert_eq!(s.range(b"c/").await.unwrap().kvs.len(), 3);
    let future = s.current_revision().await.unwrap() + 1000;
    assert!(matches!(
        s.compact(future).await,
        Err(StoreError::InvalidRequest(_))
    ));
}

/// A consumer that does not read while hundreds of revisions go by still gets every one of
/// them, once, in order (the store must buffer or re-read, never drop).
pub async fn watch_slow_consumer_gets_everything(f: &dyn StoreFactory) {
    const WRITES: usize = 300;
    let s = f.open().await;
    let start = s.current_revision().await.unwrap();
    let mut w = s.watch(b"s/", start).await.unwrap();
    let mut written = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        written.push(
            s.put(format!("s/{}", i % 7).as_bytes(), i.to_string().as_bytes())
                .await
                .unwrap(),
        );
    }
    for (i, revision) in written.iter().enumerate() {
        let got = expect_response(&mut w).await;
        assert_eq!(
            got.revision, *revision,
            "response {i} out of order or missing"
        );
        assert_eq!(
            summary(&got.events),
            [put(&format!("s/{}", i % 7), &i.to_string())]
        );
    }
    assert_quiet(&mut w).await;
}

/// List + watch from the list's revision, while another task writes, reconstructs exactly the
/// final state: no change is missed or applied twice.
pub async fn watch_list_then_watch_no_gap(f: &dyn StoreFactory) {
    const WRITES: u32 = 200;
    let s = f.open().await;
    let writer = {
        let s = Arc::clone(&s);
        tokio::spawn(async move {
            let mut last = 0;
            for i in 0..WRITES {
                let key = format!("l/{}", i % 13);
                last = if i % 5 == 4 {
                    s.txn(Txn::new().and_then([Op::delete(key)]))
                        .await
                        .unwrap()
                        .revision
                } else {
                    s.put(key.as_bytes(), i.to_string().as_bytes())
                        .await
                        .unwrap()
                };
                if i % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            last
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(5)).await; // let the writer get going
    let listed = s.range(b"l/").await.unwrap();
    let mut state: BTreeMap<Vec<u8>, Vec<u8>> = listed
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    let mut w = s.watch(b"l/", listed.revision).await.unwrap();
    let last = writer.await.unwrap();

    let mut seen = listed.revision;
    while seen < last {
        let resp = expect_response(&mut w).await;
        assert!(
            resp.revision > seen,
            "revision {} after {seen}",
            resp.revision
        );
        seen = resp.revision;
        for event in resp.events {
            match event {
                Event::Put(kv) => {
                    state.insert(kv.key, kv.value);
                }
                Event::Delete { key, .. } => {
                    state.remove(&key);
                }
            }
        }
    }
    let expected: BTreeMap<_, _> = s
        .range(b"l/")
        .await
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    assert_eq!(
        state, expected,
        "list + watch did not reproduce the final state"
    );
}

/// Dropping the last handle of the store ends its watches with `Unavailable`, not a hang.
pub async fn watch_ends_when_store_dropped(f: &dyn StoreFactory) {
    let s = f.open().await;
    let start = s.current_revision().await.unwrap();
    let mut w = s.watch(b"d/", start).await.unwrap();
    let r = s.put(b"d/a", b"1").await.unwrap();
    assert_eq!(expect_response(&mut w).await.revision, r);
    drop(s);
    match next_item(&mut w).await {
        Some(Err(StoreError::Unavailable(msg))) => assert!(!msg.is_empty()),
        other => panic!("after the store was dropped the watch gave {other:?}"),
    }
    assert!(
        next_item(&mut w).await.is_none(),
        "the stream must end after Unavailable"
    );
}
