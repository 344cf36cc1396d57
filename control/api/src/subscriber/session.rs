//! The subscriber's side of one notify stream, without I/O: it is fed the notices of a
//! connection and says, after each batch, whether the subscriber should publish what it now
//! holds and acknowledge the version, only acknowledge it, or wait (a snapshot is still coming).
//!
//! Rules it keeps, whatever the subscriber:
//! - On (re)connect the controller re-sends everything the subscriber wants, then SNAPSHOT_END.
//!   Until then nothing is published (a half snapshot would serve a region with holes). At
//!   SNAPSHOT_END whatever the snapshot did not contain is removed (deletes made while away),
//!   and the subscriber always publishes, so even an empty region's version is acknowledged.
//! - A reconnect in the middle of a snapshot starts the tracking over: only the last, complete
//!   snapshot decides what is pruned.
//! - A batch that changed nothing (values re-sent as they were) is acknowledged without a build.
//! - Versions are store revisions, ordered on one connection. The acknowledged version never
//!   goes back on a connection (an older notice is applied, the controller's order on the
//!   stream being the truth, but does not lower the ack) and a version already answered is not
//!   answered again. A new connection starts over: another controller may be at any revision.

use std::collections::HashSet;

use edge_model::{Object, ObjectKey};

use crate::notify::Notice;

/// What a subscriber keeps of the region, changed object by object by its session.
pub trait Apply {
    /// Stores `object` (created or changed); returns whether anything changed.
    fn upsert(&mut self, object: Object) -> bool;
    /// Removes the object under `key`; returns whether anything changed.
    fn remove(&mut self, key: &ObjectKey) -> bool;
    /// Every key held, so that a snapshot can prune what it did not re-send.
    fn keys(&self) -> Vec<ObjectKey>;
}

/// What to do after a batch of notices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to answer yet: a snapshot is incomplete, or nothing new arrived.
    Wait,
    /// What the subscriber holds changed: build from it, publish, then acknowledge `version`.
    Publish { version: u64 },
    /// Nothing changed: acknowledge `version` without a build.
    Ack { version: u64 },
}

/// One subscriber's notify state across connections (the objects live in its [`Apply`]).
#[derive(Debug, Default)]
pub struct Session {
    /// Keys sent on this connection, until its snapshot ends.
    snapshot: Option<HashSet<ObjectKey>>,
    /// Whether the subscriber's objects changed since the last publish.
    dirty: bool,
    /// The highest version applied on this connection.
    version: Option<u64>,
    /// The version last answered (published or acknowledged) on this connection.
    answered: Option<u64>,
}

impl Session {
    pub fn new() -> Self {
        Self::default()
    }

    /// A connection began: its snapshot is coming.
    pub fn connected(&mut self) {
        self.snapshot = Some(HashSet::new());
        self.version = None;
        self.answered = None;
    }

    /// Whether the current connection's snapshot is still incomplete (or none began).
    pub fn in_snapshot(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Applies one notice to `target`.
    pub fn notice(&mut self, notice: Notice, target: &mut impl Apply) {
        // Requests are not part of the versioned stream: the driver hands them over directly.
        if let Notice::Request(_) = notice {
            return;
        }
        let version = notice.version();
        self.version = Some(self.version.map_or(version, |v| v.max(version)));
        match notice {
            Notice::Update { object, .. } => {
                if let Some(seen) = &mut self.snapshot {
                    seen.insert(object.key());
                }
                self.dirty |= target.upsert(object);
            }
            Notice::Delete { key, .. } => {
                if let Some(seen) = &mut self.snapshot {
                    seen.remove(&key);
                }
                self.dirty |= target.remove(&key);
            }
            Notice::Request(_) => {}
            Notice::SnapshotEnd { .. } => {
                if let Some(seen) = self.snapshot.take() {
                    for key in target.keys() {
                        if !seen.contains(&key) {
                            target.remove(&key);
                        }
                    }
                }
                // Publish after every snapshot, even one that changed nothing.
                self.dirty = true;
            }
        }
    }

    /// After a batch of notices: what the subscriber should do now. `Publish` and `Ack` count
    /// as answered: the driver sends the acknowledgement.
    pub fn step(&mut self) -> Step {
        let Some(version) = self.version else {
            return Step::Wait;
        };
        if self.snapshot.is_some() {
            return Step::Wait;
        }
        let step = if self.dirty {
            Step::Publish { version }
        } else if self.answered.is_none_or(|a| version > a) {
            Step::Ack { version }
        } else {
            return Step::Wait;
        };
        self.dirty = false;
        self.answered = Some(version);
        step
    }
}
