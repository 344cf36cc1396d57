//! The write path: transactions and compaction, each one redb write transaction.

use std::sync::{Arc, PoisonError};

use redb::{ReadableTable, Table, WriteTransaction};

use super::{
    Commit, Inner, KV, LOG, META, META_COMPACTED, META_REVISION, backend, codec, meta_u64,
};
use crate::{Compare, Event, KeyValue, Op, Revision, StoreError, Txn, TxnResponse};

impl Inner {
    /// Evaluates and applies `txn`, appends its change-log entry, trims old history, commits,
    /// then publishes the commit to live watchers.
    pub(super) fn apply(&self, txn: &Txn) -> Result<TxnResponse, StoreError> {
        // A poisoned lock only means another writer panicked; redb rolled its transaction back,
        // so the data is consistent and we can carry on.
        let _serial = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let wtx = self.db.begin_write().map_err(backend("txn"))?;
        let (current, succeeded, events) = {
            let mut kv = wtx.open_table(KV).map_err(backend("txn"))?;
            let meta = wtx.open_table(META).map_err(backend("txn"))?;
            let current = meta_u64(&meta, META_REVISION)?;
            let succeeded = evaluate(&kv, &txn.compares)?;
            let ops = if succeeded {
                &txn.success
            } else {
                &txn.failure
            };
            let mut events = Vec::new();
            for op in ops {
                apply_op(&mut kv, op, current + 1, &mut events)?;
            }
            (current, succeeded, events)
        };
        if events.is_empty() {
            // Nothing changed (failed compare, or deletes of missing keys): like etcd, no new
            // revision. Aborting also skips an fsync.
            wtx.abort().map_err(backend("txn"))?;
            return Ok(TxnResponse {
                succeeded,
                revision: current,
            });
        }
        let revision = current + 1;
        record(&wtx, revision, &events, self.options.history)?;
        wtx.commit().map_err(backend("txn commit"))?;
        // Sending fails only when no watcher is listening; that is fine. Watchers that missed
        // this (lagged) re-read it from the change-log.
        let _ = self.commits.send(Arc::new(Commit { revision, events }));
        Ok(TxnResponse {
            succeeded,
            revision,
        })
    }

    /// Drops change-log entries up to `revision` and raises the compaction floor to it.
    pub(super) fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let _serial = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let wtx = self.db.begin_write().map_err(backend("compact"))?;
        {
            let mut meta = wtx.open_table(META).map_err(backend("compact"))?;
            let current = meta_u64(&meta, META_REVISION)?;
            if revision > current {
                return Err(StoreError::InvalidRequest(format!(
                    "cannot compact to revision {revision}: the current revision is {current}"
                )));
            }
            let mut log = wtx.open_table(LOG).map_err(backend("compact"))?;
            trim(&mut log, &mut meta, revision)?;
        }
        wtx.commit().map_err(backend("compact commit"))
    }
}

/// True when every compare holds against the pre-transaction state.
fn evaluate(
    kv: &impl ReadableTable<&'static [u8], &'static [u8]>,
    compares: &[Compare],
) -> Result<bool, StoreError> {
    for compare in compares {
        let found = kv.get(compare.key()).map_err(backend("txn compare"))?;
        let holds = match (compare, found) {
            (Compare::Absent(_), found) => found.is_none(),
            (Compare::Present(_), found) => found.is_some(),
            // A missing key has mod_revision 0, as in etcd.
            (Compare::ModRevision(_, want), None) => *want == 0,
            (Compare::ModRevision(_, want), Some(raw)) => {
                codec::decode_header(raw.value())?.1 == *want
            }
            // etcd: a value compare on a missing key is always false.
            (Compare::Value(_, _), None) => false,
            (Compare::Value(_, want), Some(raw)) => {
                codec::entry_value(raw.value()) == want.as_slice()
            }
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Applies one op at `revision`, appending the events it causes.
fn apply_op(
    kv: &mut Table<'_, &'static [u8], &'static [u8]>,
    op: &Op,
    revision: Revision,
    events: &mut Vec<Event>,
) -> Result<(), StoreError> {
    match op {
        Op::Put { key, value } => {
            let previous = kv
                .get(key.as_slice())
                .map_err(backend("txn put"))?
                .map(|raw| codec::decode_header(raw.value()))
                .transpose()?;
            let (create_revision, version) = match previous {
                Some((create, _, version)) => (create, version + 1),
                None => (revision, 1),
            };
            let entry = codec::encode_entry(create_revision, revision, version, value);
            kv.insert(key.as_slice(), entry.as_slice())
                .map_err(backend("txn put"))?;
            events.push(Event::Put(KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision,
                mod_revision: revision,
                version,
            }));
        }
        Op::Delete(key) => {
            if kv
                .remove(key.as_slice())
                .map_err(backend("txn delete"))?
                .is_some()
            {
                events.push(Event::Delete {
                    key: key.clone(),
                    mod_revision: revision,
                });
            }
        }
        Op::DeletePrefix(prefix) => {
            let end = crate::prefix_end(prefix);
            let keys = {
                let iter = match &end {
                    Some(end) => kv.range::<&[u8]>(prefix.as_slice()..end.as_slice()),
                    None => kv.range::<&[u8]>(prefix.as_slice()..),
                }
                .map_err(backend("txn delete prefix"))?;
                let mut keys = Vec::new();
                for item in iter {
                    keys.push(
                        item.map_err(backend("txn delete prefix"))?
                            .0
                            .value()
                            .to_vec(),
                    );
                }
                keys
            };
            for key in keys {
                kv.remove(key.as_slice())
                    .map_err(backend("txn delete prefix"))?;
                events.push(Event::Delete {
                    key,
                    mod_revision: revision,
                });
            }
        }
    }
    Ok(())
}

/// Stores the new revision and its change-log entry, and trims history beyond `history`.
fn record(
    wtx: &WriteTransaction,
    revision: Revision,
    events: &[Event],
    history: u64,
) -> Result<(), StoreError> {
    let mut meta = wtx.open_table(META).map_err(backend("txn"))?;
    meta.insert(META_REVISION, revision)
        .map_err(backend("txn"))?;
    let mut log = wtx.open_table(LOG).map_err(backend("txn"))?;
    log.insert(revision, codec::encode_events(events)?.as_slice())
        .map_err(backend("txn"))?;
    trim(&mut log, &mut meta, revision.saturating_sub(history))
}

/// Raises the compaction floor to `floor` (never lowers it) and drops log entries `<= floor`.
fn trim(
    log: &mut Table<'_, u64, &'static [u8]>,
    meta: &mut Table<'_, &'static str, u64>,
    floor: Revision,
) -> Result<(), StoreError> {
    if floor <= meta_u64(meta, META_COMPACTED)? {
        return Ok(());
    }
    meta.insert(META_COMPACTED, floor)
        .map_err(backend("trim history"))?;
    // Entries are removed oldest first; usually there is exactly one (the revision that just
    // fell out of the window), after an explicit compact possibly many.
    loop {
        let oldest = log
            .first()
            .map_err(backend("trim history"))?
            .map(|(k, _)| k.value());
        match oldest {
            Some(rev) if rev <= floor => {
                log.remove(rev).map_err(backend("trim history"))?;
            }
            _ => return Ok(()),
        }
    }
}
