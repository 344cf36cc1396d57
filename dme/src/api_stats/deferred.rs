//! Counting requests that arrived in QUIC 0-RTT only once their handshake is confirmed: a
//! replayed early flight must not count twice (`crate::h3::policy`). The HTTP/3 front end runs
//! such a request inside [`deferring`]; [`count`] then keeps the request's records aside instead
//! of adding them, and the front end [`Deferred::commit`]s them when the handshake completes, or
//! drops them if it never does.
//!
//! Outside [`deferring`] (every TCP request) [`count`] costs one task-local lookup more than
//! [`AppStats::record`].

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use smallvec::SmallVec;

use super::{AppStats, Method, Outcome};

tokio::task_local! {
    static DEFERRED: RefCell<Records>;
}

type Records = SmallVec<[Record; 2]>;

struct Record {
    stats: Arc<AppStats>,
    method: Method,
    outcome: Outcome,
    elapsed: Duration,
}

/// Counts one request of `method`, now or, inside [`deferring`], once the caller commits.
pub fn count(stats: &Arc<AppStats>, method: Method, outcome: Outcome, elapsed: Duration) {
    let kept = DEFERRED.try_with(|d| {
        d.borrow_mut().push(Record {
            stats: stats.clone(),
            method,
            outcome,
            elapsed,
        });
    });
    if kept.is_err() {
        stats.record(method, outcome, elapsed);
    }
}

/// Records a request made while it ran that have not been counted yet.
#[must_use = "deferred records are lost unless committed"]
pub struct Deferred(Records);

impl Deferred {
    /// Counts them.
    pub fn commit(self) {
        for r in self.0 {
            r.stats.record(r.method, r.outcome, r.elapsed);
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Runs `f` with its counts kept aside; returns its output and the records to commit.
pub async fn deferring<F: Future>(f: F) -> (F::Output, Deferred) {
    DEFERRED
        .scope(RefCell::new(Records::new()), async move {
            let out = f.await;
            let records = DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut()));
            (out, Deferred(records))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(stats: &AppStats) -> u64 {
        Method::ALL
            .iter()
            .map(|m| stats.totals(*m).requests())
            .sum()
    }

    #[tokio::test]
    async fn counts_wait_for_commit_inside_deferring_only() {
        let stats = Arc::new(AppStats::default());
        count(&stats, Method::FindCloudlet, Outcome::Found, Duration::ZERO);
        assert_eq!(total(&stats), 1, "outside deferring counts at once");
        let ((), deferred) = deferring(async {
            count(&stats, Method::FindCloudlet, Outcome::Found, Duration::ZERO);
            count(&stats, Method::RegisterClient, Outcome::Ok, Duration::ZERO);
        })
        .await;
        assert_eq!(total(&stats), 1, "nothing counted before commit");
        assert_eq!(deferred.len(), 2);
        deferred.commit();
        assert_eq!(total(&stats), 3);
        let ((), dropped) = deferring(async {
            count(&stats, Method::FindCloudlet, Outcome::Found, Duration::ZERO);
        })
        .await;
        drop(dropped);
        assert_eq!(
            total(&stats),
            3,
            "a handshake that never completes counts nothing"
        );
    }
}
