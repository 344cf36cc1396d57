//! Watch streams over etcd: revision grouping, namespace stripping, compaction and shutdown.

use std::collections::VecDeque;

use etcd_client::EventType;
use futures::StreamExt;
use tokio::sync::watch as signal;

use super::{map_error, to_revision};
use crate::{Event, KeyValue, Revision, StoreError, WatchResponse, WatchStream};

/// Wraps an etcd watch that was asked to start at `start_revision` (inclusive; see the parent
/// module) into our stream type.
pub(super) fn stream(
    stream: etcd_client::WatchStream,
    namespace: Vec<u8>,
    start_revision: Revision,
    alive: signal::Receiver<()>,
) -> WatchStream {
    let state = EtcdWatch {
        stream,
        namespace,
        last: start_revision,
        alive,
        pending: VecDeque::new(),
        done: false,
    };
    WatchStream::new(futures::stream::unfold(state, |mut w| async move {
        let item = w.next().await?;
        Some((item, w))
    }))
}

/// The state of one etcd watch stream.
struct EtcdWatch {
    stream: etcd_client::WatchStream,
    namespace: Vec<u8>,
    /// Every revision `<= last` has been delivered or skipped.
    last: Revision,
    alive: signal::Receiver<()>,
    pending: VecDeque<WatchResponse>,
    done: bool,
}

impl EtcdWatch {
    async fn next(&mut self) -> Option<Result<WatchResponse, StoreError>> {
        if self.done {
            return None;
        }
        let item = self.next_response().await;
        self.done = item.is_err();
        Some(item)
    }

    async fn next_response(&mut self) -> Result<WatchResponse, StoreError> {
        loop {
            if let Some(response) = self.pending.pop_front() {
                return Ok(response);
            }
            let message = tokio::select! {
                // Err: the last store handle is gone.
                _ = self.alive.changed() => {
                    return Err(StoreError::Unavailable("the etcd store was closed (last handle dropped)".into()));
                }
                message = self.stream.next() => message,
            };
            let resp = match message {
                Some(Ok(resp)) => resp,
                Some(Err(e)) => return Err(map_error("watch", e)),
                None => {
                    return Err(StoreError::Unavailable(
                        "etcd ended the watch stream".into(),
                    ));
                }
            };
            if resp.compact_revision() > 0 {
                return Err(StoreError::Compacted {
                    requested: self.last,
                    oldest: to_revision(resp.compact_revision())?,
                });
            }
            if resp.canceled() {
                return Err(StoreError::Backend(format!(
                    "etcd cancelled the watch: {}",
                    resp.cancel_reason()
                )));
            }
            self.push_events(resp.events())?;
        }
    }

    /// Groups events by revision (etcd sends whole revisions per response) and queues those
    /// after `last`.
    fn push_events(&mut self, events: &[etcd_client::Event]) -> Result<(), StoreError> {
        for event in events {
            let Some(kv) = event.kv() else { continue };
            let revision = to_revision(kv.mod_revision())?;
            if revision <= self.last {
                continue; // the start revision itself, see the module doc
            }
            let key = kv
                .key()
                .strip_prefix(self.namespace.as_slice())
                .ok_or_else(|| {
                    StoreError::Backend(format!(
                        "etcd watch returned key {:?} outside the namespace",
                        String::from_utf8_lossy(kv.key())
                    ))
                })?;
            let event = match event.event_type() {
                EventType::Put => Event::Put(KeyValue {
                    key: key.to_vec(),
                    value: kv.value().to_vec(),
                    create_revision: to_revision(kv.create_revision())?,
                    mod_revision: revision,
                    version: to_revision(kv.version())?,
                }),
                EventType::Delete => Event::Delete {
                    key: key.to_vec(),
                    mod_revision: revision,
                },
            };
            match self.pending.back_mut() {
                Some(group) if group.revision == revision => group.events.push(event),
                _ => self.pending.push_back(WatchResponse {
                    revision,
                    events: vec![event],
                }),
            }
        }
        if let Some(group) = self.pending.back() {
            self.last = group.revision;
        }
        Ok(())
    }
}
