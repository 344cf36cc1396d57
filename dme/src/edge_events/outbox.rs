//! A stream's outbox: the events its task writes, read by the transport. Bounded: an event
//! that finds `cap` events still waiting is refused, and the task closes the stream (its client
//! is not reading). The end of the stream (a status, or none for OK) is always accepted.
//!
//! A queue under a lock with the reader's waker rather than a tokio channel: a channel
//! allocates its first block of 32 slots with the channel, some 800 bytes for every open
//! stream, while the outbox is empty nearly always (the `VecDeque` allocates on first use and
//! keeps the few slots it needed).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::Stream;
use futures::task::AtomicWaker;
use tokio::sync::Notify;
use tonic::Status;

use crate::proto::ServerEdgeEvent;

enum Out {
    Event(Box<ServerEdgeEvent>),
    End(Box<Status>),
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Out>>,
    reader: AtomicWaker,
    /// The writer is gone: the reader ends after the queue.
    writer_done: AtomicBool,
    /// The reader is gone (the client left): the writer should stop.
    reader_gone: Notify,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Out>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The task's end.
pub struct Writer {
    shared: Arc<Shared>,
    cap: usize,
}

/// The transport's end: the stream's events, then its end.
pub struct Outbox(Arc<Shared>);

pub fn outbox(cap: usize) -> (Writer, Outbox) {
    let shared = Arc::new(Shared::default());
    (
        Writer {
            shared: shared.clone(),
            cap: cap.max(1),
        },
        Outbox(shared),
    )
}

impl Writer {
    /// Queues an event; false (nothing queued) when `cap` events are still waiting.
    pub fn send(&self, e: ServerEdgeEvent) -> bool {
        {
            let mut q = self.shared.queue();
            if q.len() >= self.cap {
                return false;
            }
            q.push_back(Out::Event(Box::new(e)));
        }
        self.shared.reader.wake();
        true
    }

    /// Ends the stream after what is queued: with `status`, or OK.
    pub fn end(self, status: Option<Status>) {
        if let Some(s) = status {
            self.shared.queue().push_back(Out::End(Box::new(s)));
        }
        // Drop marks the writer done and wakes the reader.
    }

    /// Resolves once the reader is gone.
    pub async fn reader_gone(&self) {
        self.shared.reader_gone.notified().await;
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shared.writer_done.store(true, Ordering::Release);
        self.shared.reader.wake();
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        // A permit is kept if the writer is not waiting right now.
        self.0.reader_gone.notify_one();
    }
}

impl Stream for Outbox {
    type Item = Result<ServerEdgeEvent, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let shared = &self.0;
        shared.reader.register(cx.waker());
        // Read before the queue: whatever the writer queued before it was done is then seen.
        let done = shared.writer_done.load(Ordering::Acquire);
        match shared.queue().pop_front() {
            Some(Out::Event(e)) => Poll::Ready(Some(Ok(*e))),
            Some(Out::End(s)) => Poll::Ready(Some(Err(*s))),
            None if done => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn ev(t: i32) -> ServerEdgeEvent {
        ServerEdgeEvent {
            event_type: t,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn bounded_events_then_the_end() {
        let (w, mut r) = outbox(2);
        assert!(w.send(ev(1)) && w.send(ev(2)));
        assert!(!w.send(ev(3)), "full");
        assert_eq!(r.next().await.unwrap().unwrap().event_type, 1);
        assert!(w.send(ev(4)));
        w.end(Some(Status::resource_exhausted("x")));
        assert_eq!(r.next().await.unwrap().unwrap().event_type, 2);
        assert_eq!(r.next().await.unwrap().unwrap().event_type, 4);
        let end = r.next().await.unwrap().unwrap_err();
        assert_eq!(end.code(), tonic::Code::ResourceExhausted);
        assert!(r.next().await.is_none());
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_and_a_gone_reader_is_noticed() {
        let (w, mut r) = outbox(4);
        let reader = tokio::spawn(async move {
            let first = r.next().await.map(|e| e.unwrap().event_type);
            let rest = r.next().await;
            (first, rest.is_none())
        });
        tokio::task::yield_now().await;
        assert!(w.send(ev(7)));
        w.end(None);
        assert_eq!(reader.await.unwrap(), (Some(7), true));

        let (w, r) = outbox(1);
        drop(r);
        tokio::time::timeout(std::time::Duration::from_secs(1), w.reader_gone())
            .await
            .expect("noticed");
    }
}
