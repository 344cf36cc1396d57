//! Plain reads and writes: get/put/delete, prefix ranges, revisions, delete-by-prefix.

use super::{StoreFactory, pairs};
use crate::{Op, StoreError, Txn};

/// Put creates then overwrites with the right bookkeeping; delete removes; empty keys fail.
pub async fn get_put_delete(f: &dyn StoreFactory) {
    let s = f.open().await;
    assert_eq!(s.get(b"k").await.unwrap(), None);

    let r1 = s.put(b"k", b"v1").await.unwrap();
    let kv = s.get(b"k").await.unwrap().expect("k after first put");
    assert_eq!(
        (kv.key.as_slice(), kv.value.as_slice()),
        (&b"k"[..], &b"v1"[..])
    );
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r1, r1, 1)
    );

    let r2 = s.put(b"k", b"v2").await.unwrap();
    assert!(r2 > r1, "second put got revision {r2}, not above {r1}");
    let kv = s.get(b"k").await.unwrap().expect("k after overwrite");
    assert_eq!(kv.value, b"v2");
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r1, r2, 2)
    );

    let r3 = s
        .delete(b"k")
        .await
        .unwrap()
        .expect("delete of an existing key reports a revision");
    assert!(r3 > r2);
    assert_eq!(s.get(b"k").await.unwrap(), None);
    assert_eq!(
        s.delete(b"k").await.unwrap(),
        None,
        "deleting a missing key reports None"
    );
    if f.exclusive() {
        assert_eq!(
            s.current_revision().await.unwrap(),
            r3,
            "a no-op delete made a revision"
        );
    }

    // Re-creation starts a new life: new create revision, version back to 1.
    let r4 = s.put(b"k", b"v3").await.unwrap();
    let kv = s.get(b"k").await.unwrap().expect("k after re-create");
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r4, r4, 1)
    );

    // Empty values are values; empty keys are errors.
    s.put(b"empty", b"").await.unwrap();
    assert_eq!(
        s.get(b"empty").await.unwrap().expect("empty value").value,
        b""
    );
    assert!(matches!(
        s.get(b"").await,
        Err(StoreError::InvalidRequest(_))
    ));
    assert!(matches!(
        s.put(b"", b"x").await,
        Err(StoreError::InvalidRequest(_))
    ));
}

/// A prefix range returns exactly the keys under the prefix, in bytewise order.
pub async fn range_prefix_isolation(f: &dyn StoreFactory) {
    let s = f.open().await;
    for key in [
        "app/2",
        "app/10",
        "app/1",
        "apple",
        "ap",
        "cloudlet/1",
        "app0",
    ] {
        s.put(key.as_bytes(), format!("v-{key}").as_bytes())
            .await
            .unwrap();
    }
    let last = s.put(b"\xff\xfe", b"high").await.unwrap();

    let keys = |r: crate::RangeResponse| {
        pairs(&r.kvs)
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(s.range(b"app/").await.unwrap()),
        ["app/1", "app/10", "app/2"]
    );
    assert_eq!(
        keys(s.range(b"app").await.unwrap()),
        ["app/1", "app/10", "app/2", "app0", "apple"]
    );
    assert_eq!(keys(s.range(b"cloudlet/").await.unwrap()), ["cloudlet/1"]);
    assert!(s.range(b"zzz").await.unwrap().kvs.is_empty());
    // A prefix of 0xff bytes has no finite upper bound: it must still find its keys.
    assert_eq!(s.range(b"\xff").await.unwrap().kvs.len(), 1);

    let all = s.range(b"").await.unwrap();
    assert_eq!(all.kvs.len(), 8);
    assert!(
        all.kvs.windows(2).all(|w| w[0].key < w[1].key),
        "range is not in key order"
    );
    assert_eq!(all.kvs[0].value, b"v-ap");
    assert!(
        all.revision >= last,
        "snapshot revision {} below the last write {last}",
        all.revision
    );
    if f.exclusive() {
        assert_eq!(all.revision, last);
    }
}

/// One counter for all keys; every write moves it up; no-op writes do not.
pub async fn revisions_monotonic_and_shared(f: &dyn StoreFactory) {
    let s = f.open().await;
    let start = s.current_revision().await.unwrap();
    let r1 = s.put(b"a", b"1").await.unwrap();
    let r2 = s.put(b"b", b"1").await.unwrap();
    let r3 = s.put(b"a", b"2").await.unwrap();
    let r4 = s
        .txn(Txn::new().and_then([Op::put("c", "1"), Op::put("d", "1")]))
        .await
        .unwrap();
    assert!(
        start < r1 && r1 < r2 && r2 < r3 && r3 < r4.revision,
        "{start} {r1} {r2} {r3} {r4:?}"
    );
    assert!(s.current_revision().await.unwrap() >= r4.revision);

    let get = |k: &'static [u8]| {
        let s = s.clone();
        async move { s.get(k).await.unwrap().expect("key exists") }
    };
    let (a, b, c, d) = (
        get(b"a").await,
        get(b"b").await,
        get(b"c").await,
        get(b"d").await,
    );
    assert_eq!((a.create_revision, a.mod_revision), (r1, r3));
    assert_eq!((b.create_revision, b.mod_revision), (r2, r2));
    assert_eq!(
        c.mod_revision, r4.revision,
        "keys of one txn share its revision"
    );
    assert_eq!(d.mod_revision, r4.revision);

    if f.exclusive() {
        assert_eq!(s.current_revision().await.unwrap(), r4.revision);
        // Writes that change nothing make no revision.
        let empty = s.txn(Txn::new()).await.unwrap();
        assert_eq!(empty.revision, r4.revision);
        let missing = s
            .txn(Txn::new().and_then([Op::delete("nope")]))
            .await
            .unwrap();
        assert_eq!(missing.revision, r4.revision);
        assert_eq!(s.current_revision().await.unwrap(), r4.revision);
    }
}

/// Delete-by-prefix removes exactly the keys under the prefix, in one revision.
pub async fn delete_prefix(f: &dyn StoreFactory) {
    let s = f.open().await;
    for key in ["a/1", "a/2", "a/3/x", "ab", "b"] {
        s.put(key.as_bytes(), b"v").await.unwrap();
    }
    let resp = s
        .txn(Txn::new().and_then([Op::delete_prefix("a/")]))
        .await
        .unwrap();
    assert!(resp.succeeded);
    let left = s.range(b"").await.unwrap();
    assert_eq!(
        pairs(&left.kvs),
        [("ab".into(), "v".into()), ("b".into(), "v".into())]
    );

    if f.exclusive() {
        // Nothing left under the prefix: no change, no revision.
        let again = s
            .txn(Txn::new().and_then([Op::delete_prefix("a/")]))
            .await
            .unwrap();
        assert_eq!(again.revision, resp.revision);
    }

    // The empty prefix is "everything".
    s.txn(Txn::new().and_then([Op::delete_prefix("")]))
        .await
        .unwrap();
    assert!(s.range(b"").await.unwrap().kvs.is_empty());
}
