//! Transactions: compares, then puts and deletes, applied atomically.

use std::fmt;

use crate::{Revision, StoreError, check_key};

/// At most this many compares, and this many ops per branch: etcd's default `--max-txn-ops`.
/// The embedded store enforces the same limit so that code tested on it also runs on etcd.
pub const MAX_TXN_OPS: usize = 128;

/// One condition of a transaction, evaluated against the state before the transaction.
///
/// A missing key behaves as in etcd: it has `mod_revision` 0 (so `ModRevision(k, 0)` means
/// "absent"), and a `Value` compare on it is always false.
#[derive(Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key does not exist.
    Absent(Vec<u8>),
    /// The key exists.
    Present(Vec<u8>),
    /// The key was last modified at exactly this revision.
    ModRevision(Vec<u8>, Revision),
    /// The key exists and holds exactly this value.
    Value(Vec<u8>, Vec<u8>),
}

impl Compare {
    /// `key` does not exist.
    pub fn absent(key: impl Into<Vec<u8>>) -> Self {
        Self::Absent(key.into())
    }

    /// `key` exists.
    pub fn present(key: impl Into<Vec<u8>>) -> Self {
        Self::Present(key.into())
    }

    /// `key` was last modified at `revision` (0: does not exist).
    pub fn mod_revision(key: impl Into<Vec<u8>>, revision: Revision) -> Self {
        Self::ModRevision(key.into(), revision)
    }

    /// `key` exists and holds `value`.
    pub fn value(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self::Value(key.into(), value.into())
    }

    /// The key this compare reads.
    pub fn key(&self) -> &[u8] {
        match self {
            Self::Absent(k) | Self::Present(k) | Self::ModRevision(k, _) | Self::Value(k, _) => k,
        }
    }
}

impl fmt::Debug for Compare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = String::from_utf8_lossy(self.key());
        match self {
            Self::Absent(_) => write!(f, "Absent({key:?})"),
            Self::Present(_) => write!(f, "Present({key:?})"),
            Self::ModRevision(_, r) => write!(f, "ModRevision({key:?}, {r})"),
            Self::Value(_, v) => write!(f, "Value({key:?}, <{} bytes>)", v.len()),
        }
    }
}

/// One write of a transaction.
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or overwrite a key.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// Delete a key if it exists (no event and no new revision if it does not).
    Delete(Vec<u8>),
    /// Delete every key starting with the prefix (an empty prefix: every key).
    DeletePrefix(Vec<u8>),
}

impl Op {
    /// Put `value` at `key`.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Delete `key`.
    pub fn delete(key: impl Into<Vec<u8>>) -> Self {
        Self::Delete(key.into())
    }

    /// Delete every key under `prefix`.
    pub fn delete_prefix(prefix: impl Into<Vec<u8>>) -> Self {
        Self::DeletePrefix(prefix.into())
    }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Put { key, value } => {
                write!(
                    f,
                    "Put({:?}, <{} bytes>)",
                    String::from_utf8_lossy(key),
                    value.len()
                )
            }
            Self::Delete(k) => write!(f, "Delete({:?})", String::from_utf8_lossy(k)),
            Self::DeletePrefix(p) => write!(f, "DeletePrefix({:?})", String::from_utf8_lossy(p)),
        }
    }
}

/// An atomic transaction: if all `compares` hold, `success` runs, otherwise `failure`.
///
/// All writes of the branch that runs share one new revision. If the branch changes nothing
/// (no ops, or only deletes of missing keys) no revision is created. Within a branch no key may
/// be put twice, and no put may fall under a delete of the same branch: etcd rejects both, so
/// the embedded store does too ([`StoreError::InvalidRequest`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    /// Conditions, all of which must hold for `success` to run.
    pub compares: Vec<Compare>,
    /// Writes applied when every compare holds.
    pub success: Vec<Op>,
    /// Writes applied otherwise (often empty: then a failed txn writes nothing).
    pub failure: Vec<Op>,
}

impl Txn {
    /// An empty transaction (no compares: `success` always runs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds compares.
    #[must_use]
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.compares.extend(compares);
        self
    }

    /// Adds ops to the success branch.
    #[must_use]
    pub fn and_then(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.success.extend(ops);
        self
    }

    /// Adds ops to the failure branch.
    #[must_use]
    pub fn or_else(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.failure.extend(ops);
        self
    }

    /// Checks the rules every backend enforces, before anything touches storage.
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        for (what, len) in [
            ("compares", self.compares.len()),
            ("success ops", self.success.len()),
            ("failure ops", self.failure.len()),
        ] {
            if len > MAX_TXN_OPS {
                return Err(StoreError::InvalidRequest(format!(
                    "transaction has {len} {what}, more than the limit of {MAX_TXN_OPS}"
                )));
            }
        }
        for c in &self.compares {
            check_key(c.key())?;
        }
        validate_branch(&self.success)?;
        validate_branch(&self.failure)
    }
}

fn validate_branch(ops: &[Op]) -> Result<(), StoreError> {
    let mut puts: Vec<&[u8]> = Vec::new();
    let mut deletes: Vec<(&[u8], bool)> = Vec::new();
    for op in ops {
        match op {
            Op::Put { key, .. } => {
                check_key(key)?;
                puts.push(key);
            }
            Op::Delete(key) => {
                check_key(key)?;
                deletes.push((key, false));
            }
            Op::DeletePrefix(prefix) => deletes.push((prefix, true)),
        }
    }
    puts.sort_unstable();
    if let Some(w) = puts.windows(2).find(|w| w[0] == w[1]) {
        return Err(StoreError::InvalidRequest(format!(
            "transaction puts key {:?} twice",
            String::from_utf8_lossy(w[0])
        )));
    }
    for key in &puts {
        let covered = deletes.iter().any(|(d, prefix)| {
            if *prefix {
                key.starts_with(d)
            } else {
                key == d
            }
        });
        if covered {
            return Err(StoreError::InvalidRequest(format!(
                "transaction both puts and deletes key {:?}",
                String::from_utf8_lossy(key)
            )));
        }
    }
    Ok(())
}

/// The outcome of a [`Txn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether every compare held (so `success` ran rather than `failure`).
    pub succeeded: bool,
    /// The store revision after the transaction: the new revision if it wrote anything.
    pub revision: Revision,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_double_put_and_put_under_delete() {
        let twice = Txn::new().and_then([Op::put("a", "1"), Op::put("a", "2")]);
        assert!(matches!(
            twice.validate(),
            Err(StoreError::InvalidRequest(_))
        ));
        let covered = Txn::new().or_else([Op::delete_prefix("a/"), Op::put("a/b", "1")]);
        assert!(matches!(
            covered.validate(),
            Err(StoreError::InvalidRequest(_))
        ));
        let fine = Txn::new().when([Compare::absent("a")]).and_then([
            Op::put("a", "1"),
            Op::delete("b"),
            Op::delete_prefix("c/"),
        ]);
        assert_eq!(fine.validate(), Ok(()));
    }

    #[test]
    fn rejects_empty_keys_and_too_many_ops() {
        let empty = Txn::new().and_then([Op::put("", "1")]);
        assert!(matches!(
            empty.validate(),
            Err(StoreError::InvalidRequest(_))
        ));
        let many = Txn::new().and_then((0..=MAX_TXN_OPS).map(|i| Op::put(format!("k{i}"), "")));
        assert!(matches!(
            many.validate(),
            Err(StoreError::InvalidRequest(_))
        ));
    }
}
