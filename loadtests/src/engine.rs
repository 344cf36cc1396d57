//! The load engine: a fixed set of callers (one per in-flight request), each looping until the
//! deadline or the request budget, timing every request into its own HDR histogram (µs), then
//! merged. Requests started during the warm-up are not counted; throughput is the requests that
//! started and finished inside the measured window, divided by the window.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// One in-flight request slot: issues a request and says whether it succeeded (an error label,
/// such as `grpc Unavailable` or `http 429`, otherwise).
pub trait Caller: Send + 'static {
    fn call(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// How long and how much.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub warmup: Duration,
    pub duration: Duration,
    /// Stop after this many requests in total (warm-up included); 0 = no limit.
    pub max_requests: u64,
    /// A request still unanswered after this counts as a `timeout` error.
    pub timeout: Duration,
}

/// What one run measured.
pub struct Report {
    /// Successful requests inside the measured window.
    pub ok: u64,
    /// Length of the measured window.
    pub window: Duration,
    /// Latency of the successful requests in the window, µs.
    pub hist: Histogram<u64>,
    /// Failed requests by label (warm-up included).
    pub errors: BTreeMap<String, u64>,
}

impl Report {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// A latency quantile in µs.
    pub fn q(&self, quantile: f64) -> u64 {
        self.hist.value_at_quantile(quantile)
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 100 s, 3 significant digits; the bounds are constant and valid.
    Histogram::new_with_bounds(1, 100_000_000, 3).unwrap_or_else(|_| unreachable!())
}

struct TaskReport {
    ok: u64,
    last_done: Option<Instant>,
    hist: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

/// Runs `callers` concurrently (one task each, on the current runtime) under `plan`.
pub async fn run<C: Caller>(callers: Vec<C>, plan: Plan) -> Report {
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let issued = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = callers
        .into_iter()
        .map(|mut caller| {
            let issued = issued.clone();
            tokio::spawn(async move {
                let mut r = TaskReport {
                    ok: 0,
                    last_done: None,
                    hist: histogram(),
                    errors: BTreeMap::new(),
                };
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    if plan.max_requests > 0
                        && issued.fetch_add(1, Ordering::Relaxed) >= plan.max_requests
                    {
                        break;
                    }
                    let outcome = tokio::time::timeout(plan.timeout, caller.call()).await;
                    let t1 = Instant::now();
                    match outcome {
                        Ok(Ok(())) => {
                            if t0 >= measure_from && t1 <= end {
                                r.ok += 1;
                                r.last_done = Some(t1);
                                let us = u64::try_from((t1 - t0).as_micros()).unwrap_or(u64::MAX);
                                r.hist.saturating_record(us.max(1));
                            }
                        }
                        Ok(Err(label)) => *r.errors.entry(label).or_default() += 1,
                        Err(_) => *r.errors.entry("timeout".into()).or_default() += 1,
                    }
                }
                r
            })
        })
        .collect();
    let mut report = Report {
        ok: 0,
        window: plan.duration,
        hist: histogram(),
        errors: BTreeMap::new(),
    };
    let mut last_done = None::<Instant>;
    for t in tasks {
        match t.await {
            Ok(r) => {
                report.ok += r.ok;
                let _ = report.hist.add(&r.hist);
                for (k, v) in r.errors {
                    *report.errors.entry(k).or_default() += v;
                }
                last_done = last_done.max(r.last_done);
            }
            Err(e) => *report.errors.entry(format!("task: {e}")).or_default() += 1,
        }
    }
    // Stopped early by the request budget: the window ends with the last answer.
    if plan.max_requests > 0
        && let Some(last) = last_done
        && last < end
    {
        report.window = last.saturating_duration_since(measure_from);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sleepy(u32);

    impl Caller for Sleepy {
        async fn call(&mut self) -> Result<(), String> {
            self.0 += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
            if self.0.is_multiple_of(5) {
                Err("every fifth".into())
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn stops_by_budget_and_counts_errors() {
        let plan = Plan {
            warmup: Duration::ZERO,
            duration: Duration::from_secs(30),
            max_requests: 40,
            timeout: Duration::from_secs(1),
        };
        let started = std::time::Instant::now();
        let r = run((0..4).map(|_| Sleepy(0)).collect(), plan).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(r.ok + r.error_count(), 40);
        assert_eq!(r.errors.get("every fifth"), Some(&8));
        assert!(r.rps() > 0.0 && r.q(0.5) >= 1000);
    }
}
