//! Concurrency, size and durability.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{StoreFactory, expect_response, summary};
use crate::{Compare, Event, MAX_TXN_OPS, Op, Store, Txn};

/// Tasks racing on the same `mod_revision` compare: exactly one wins each round.
pub async fn concurrent_conflicting_txns(f: &dyn StoreFactory) {
    const ROUNDS: usize = 10;
    const RACERS: usize = 6;
    let s = f.open().await;
    s.put(b"contended", b"start").await.unwrap();
    for round in 0..ROUNDS {
        let seen = s.get(b"contended").await.unwrap().unwrap().mod_revision;
        let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|racer| {
                let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    let txn = Txn::new()
                        .when([Compare::mod_revision("contended", seen)])
                        .and_then([Op::put("contended", format!("{round}/{racer}"))]);
                    (racer, s.txn(txn).await.unwrap().succeeded)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for racer in racers {
            let (id, won) = racer.await.unwrap();
            if won {
                winners.push(id);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let value = s.get(b"contended").await.unwrap().unwrap().value;
        assert_eq!(value, format!("{round}/{}", winners[0]).into_bytes());
    }
}

/// Read-modify-write with retry on a shared counter from several tasks loses no increment.
pub async fn concurrent_increments_serialize(f: &dyn StoreFactory) {
    const TASKS: u64 = 4;
    const EACH: u64 = 25;
    let s = f.open().await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                let mut retries = 0u64;
                for _ in 0..EACH {
                    loop {
                        let (n, rev) = match s.get(b"counter").await.unwrap() {
                            Some(kv) => (parse(&kv.value), kv.mod_revision),
                            None => (0, 0),
                        };
                        let txn = Txn::new()
                            .when([Compare::mod_revision("counter", rev)])
                            .and_then([Op::put("counter", (n + 1).to_string())]);
                        if s.txn(txn).await.unwrap().succeeded {
                            break;
                        }
                        retries += 1;
                    }
                }
                retries
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let kv = s.get(b"counter").await.unwrap().unwrap();
    assert_eq!(parse(&kv.value), TASKS * EACH);
    assert_eq!(
        kv.version,
        TASKS * EACH,
        "every successful increment is one put"
    );
}

fn parse(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes).unwrap().parse().unwrap()
}

/// 1 MiB values round-trip through get, range, txn compare and watch.
pub async fn large_values(f: &dyn StoreFactory) {
    let s = f.open().await;
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let start = s.current_revision().await.unwrap();
    let mut w = s.watch(b"big/", start).await.unwrap();
    let rev = s.put(b"big/1", &big).await.unwrap();
    assert_eq!(s.get(b"big/1").await.unwrap().unwrap().value, big);
    assert_eq!(s.range(b"big/").await.unwrap().kvs[0].value, big);
    let same = Txn::new()
        .when([Compare::value("big/1", big.clone())])
        .and_then([Op::delete("big/1")]);
    assert!(s.txn(same).await.unwrap().succeeded);
    let got = expect_response(&mut w).await;
    assert_eq!(got.revision, rev);
    match &got.events[..] {
        [Event::Put(kv)] => assert!(kv.value == big, "watched value differs"),
        other => panic!("expected one put, got {other:?}"),
    }
    assert_eq!(
        summary(&expect_response(&mut w).await.events),
        [super::del("big/1")]
    );
}

/// 10 000 keys: written in full-size transactions, listed in order, watched, deleted by
/// prefix, all within a generous time bound.
pub async fn many_keys(f: &dyn StoreFactory) {
    const KEYS: usize = 10_000;
    let began = Instant::now();
    let s = f.open().await;
    let start = s.current_revision().await.unwrap();
    let mut w = s.watch(b"many/", start).await.unwrap();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("many/{i:05}")).collect();
    for chunk in keys.chunks(MAX_TXN_OPS) {
        let ops = chunk.iter().map(|k| Op::put(k.as_str(), k.as_str()));
        assert!(s.txn(Txn::new().and_then(ops)).await.unwrap().succeeded);
    }
    let listed = s.range(b"many/").await.unwrap();
    assert_eq!(listed.kvs.len(), KEYS);
    assert!(
        listed
            .kvs
            .iter()
            .zip(&keys)
            .all(|(kv, k)| kv.key == k.as_bytes() && kv.value == k.as_bytes())
    );

    let mut watched = 0;
    while watched < KEYS {
        watched += expect_response(&mut w).await.events.len();
    }
    assert_eq!(watched, KEYS);

    let gone = s
        .txn(Txn::new().and_then([Op::delete_prefix("many/")]))
        .await
        .unwrap();
    let deletes = expect_response(&mut w).await;
    assert_eq!(
        (deletes.revision, deletes.events.len()),
        (gone.revision, KEYS)
    );
    assert!(s.range(b"many/").await.unwrap().kvs.is_empty());
    let took = began.elapsed();
    assert!(took < Duration::from_secs(30), "10k keys took {took:?}");
}

/// Closing and reopening keeps data, bookkeeping, the revision and the watch history.
pub async fn durable_across_reopen(f: &dyn StoreFactory) {
    let (r1, r3, revision) = {
        let s = f.open().await;
        let r1 = s.put(b"d/a", b"1").await.unwrap();
        s.put(b"d/b", b"1").await.unwrap();
        let r3 = s.put(b"d/a", b"2").await.unwrap();
        s.delete(b"d/b").await.unwrap();
        (r1, r3, s.current_revision().await.unwrap())
    };
    let s: Arc<dyn Store> = f.open().await;
    let a = s.get(b"d/a").await.unwrap().expect("d/a survives reopen");
    assert_eq!(
        (
            a.value.as_slice(),
            a.create_revision,
            a.mod_revision,
            a.version
        ),
        (&b"2"[..], r1, r3, 2)
    );
    assert_eq!(
        s.get(b"d/b").await.unwrap(),
        None,
        "the delete survives reopen"
    );
    let now = s.current_revision().await.unwrap();
    assert!(now >= revision);
    if f.exclusive() {
        assert_eq!(now, revision, "revision changed across reopen");
    }
    // History survives too: replay from before the first write.
    let mut w = s.watch(b"d/", r1 - 1).await.unwrap();
    assert_eq!(expect_response(&mut w).await.revision, r1);
    // And revisions continue upwards, never reused.
    assert!(s.put(b"d/c", b"1").await.unwrap() > revision);
}
