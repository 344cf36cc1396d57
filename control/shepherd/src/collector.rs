//! One collection round, with its I/O: scrape the root LB and the DMEs (concurrently, each
//! with a deadline), read the instances' processes (on a blocking thread), and turn it all into
//! points with the pure collectors of [`crate::collect`]. A source that fails is logged (at most
//! once a minute per source) and counted; the round goes on with the others.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use edge_api::subscriber::Replica;
use edge_model::{AppInst, CloudletKey};

use crate::collect::process::{CpuTracker, ProcStat, ProcessSource};
use crate::collect::{cloudlet, dme, edge_events, process, rootlb};
use crate::http::{HttpClient, HttpError};
use crate::line::Point;
use crate::promtext::{self, Page};
use crate::throttle::Throttle;

/// What to collect from.
#[derive(Clone, Default)]
pub struct Sources {
    /// The root LB's Prometheus endpoint, `http://host:port/metrics`.
    pub rootlb_metrics: Option<String>,
    /// DMEs' Prometheus endpoints.
    pub dme_metrics: Vec<String>,
    /// Where the instances' processes are (the CRM `local` platform's state directory).
    pub processes: Option<Arc<dyn ProcessSource>>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("rootlb_metrics", &self.rootlb_metrics)
            .field("dme_metrics", &self.dme_metrics)
            .field("processes", &self.processes.is_some())
            .finish()
    }
}

/// Counters of the collection, readable while it runs.
#[derive(Debug, Default)]
pub struct CollectStats {
    pub rounds: AtomicU64,
    pub points: AtomicU64,
    /// Scrapes that got no page (no answer, not 200).
    pub scrape_errors: AtomicU64,
    /// Scraped lines that did not parse.
    pub bad_lines: AtomicU64,
    /// Process readings that failed (unreadable pid file or /proc entry).
    pub process_errors: AtomicU64,
}

/// Why a scrape got no page.
#[derive(Debug, thiserror::Error)]
enum ScrapeError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("status {0}")]
    Status(http::StatusCode),
    #[error("the scrape task ended early")]
    Lost,
}

/// The collection state that lasts between rounds (CPU readings, log throttles).
#[derive(Debug)]
pub struct Collector {
    cloudlet: CloudletKey,
    sources: Sources,
    http: HttpClient,
    cpu: CpuTracker,
    throttles: HashMap<String, Throttle>,
    stats: Arc<CollectStats>,
}

/// Largest page accepted from a scrape target.
const MAX_PAGE: usize = 32 << 20;

impl Collector {
    /// Scrapes get `scrape_timeout` each.
    pub fn new(cloudlet: CloudletKey, sources: Sources, scrape_timeout: Duration) -> Self {
        Self {
            cloudlet,
            sources,
            http: HttpClient::new(scrape_timeout, MAX_PAGE),
            cpu: CpuTracker::default(),
            throttles: HashMap::new(),
            stats: Arc::default(),
        }
    }

    pub fn stats(&self) -> Arc<CollectStats> {
        self.stats.clone()
    }

    /// One round: every source, read at `now_ms`, against the objects in `objects`.
    pub async fn collect(&mut self, objects: &Replica, now_ms: i64) -> Vec<Point> {
        let insts: Vec<AppInst> = objects
            .app_insts()
            .filter(|i| i.cloudlet == self.cloudlet)
            .cloned()
            .collect();
        let rootlb_url = self.sources.rootlb_metrics.clone();
        let dme_urls = self.sources.dme_metrics.clone();
        let (rootlb_page, dme_pages, (procs, proc_errors)) = tokio::join!(
            async {
                match &rootlb_url {
                    Some(url) => Some(scrape(&self.http, url).await),
                    None => None,
                }
            },
            scrape_all(&self.http, &dme_urls),
            read_processes(self.sources.processes.clone(), insts.clone()),
        );
        let mut points = Vec::new();
        if let (Some(url), Some(r)) = (&rootlb_url, rootlb_page)
            && let Some(page) = self.page(url, r)
        {
            let out = rootlb::points(&page, objects, &self.cloudlet, now_ms);
            if !out.unknown.is_empty() {
                tracing::debug!(apps = ?out.unknown, "root LB series of unknown instances skipped");
            }
            points.extend(out.points);
        }
        for (url, r) in dme_urls.iter().zip(dme_pages) {
            if let Some(page) = self.page(url, r) {
                points.extend(dme::points(&page, &dme_id(url), &self.cloudlet, now_ms));
                points.extend(edge_events::points(&page, &dme_id(url), now_ms));
            }
        }
        self.stats
            .process_errors
            .fetch_add(proc_errors.len() as u64, Relaxed);
        for e in proc_errors {
            self.warn("processes", &e);
        }
        points.extend(self.process_points(&insts, procs, now_ms));
        if let Some(info) = objects.cloudlet_info(&self.cloudlet) {
            points.extend(cloudlet::utilization(info, now_ms));
        }
        self.stats.rounds.fetch_add(1, Relaxed);
        self.stats.points.fetch_add(points.len() as u64, Relaxed);
        points
    }

    /// The page of a scrape, counting (and logging, throttled) failures and bad lines.
    fn page(&mut self, url: &str, r: Result<String, ScrapeError>) -> Option<Page> {
        match r {
            Ok(text) => {
                let page = promtext::parse(&text);
                if page.bad_lines > 0 {
                    self.stats
                        .bad_lines
                        .fetch_add(page.bad_lines as u64, Relaxed);
                    let msg = format!("{} line(s) of {url} did not parse", page.bad_lines);
                    self.warn(url, &msg);
                }
                Some(page)
            }
            Err(e) => {
                self.stats.scrape_errors.fetch_add(1, Relaxed);
                self.warn(url, &format!("scraping {url}: {e}"));
                None
            }
        }
    }

    fn process_points(
        &mut self,
        insts: &[AppInst],
        procs: Vec<Option<Vec<(u32, ProcStat)>>>,
        now_ms: i64,
    ) -> Vec<Point> {
        let mut points = Vec::new();
        for (inst, procs) in insts.iter().zip(procs) {
            let Some(procs) = procs else {
                continue;
            };
            let cpu = self.cpu.update(&inst.key, now_ms, &procs);
            points.extend(process::points(inst, &procs, cpu, now_ms));
        }
        self.cpu.retain(|k| insts.iter().any(|i| i.key == *k));
        points
    }

    /// Logs a failure of `source`, at most once a minute per source.
    fn warn(&mut self, source: &str, msg: &str) {
        let t = self.throttles.entry(source.to_owned()).or_default();
        if let Some(held_back) = t.allow(Instant::now()) {
            tracing::warn!(held_back, "collection: {msg}");
        }
    }
}

/// Every URL's scrape, concurrently, in the order of `urls`.
async fn scrape_all(http: &HttpClient, urls: &[String]) -> Vec<Result<String, ScrapeError>> {
    let mut set = tokio::task::JoinSet::new();
    for (i, url) in urls.iter().enumerate() {
        let (http, url) = (http.clone(), url.clone());
        set.spawn(async move { (i, scrape(&http, &url).await) });
    }
    let mut results: Vec<Result<String, ScrapeError>> =
        urls.iter().map(|_| Err(ScrapeError::Lost)).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined {
            results[i] = r;
        }
    }
    results
}

async fn scrape(http: &HttpClient, url: &str) -> Result<String, ScrapeError> {
    let r = http.get(url).await?;
    if r.status != http::StatusCode::OK {
        return Err(ScrapeError::Status(r.status));
    }
    Ok(String::from_utf8_lossy(&r.body).into_owned())
}

/// `host:port` of a DME metrics URL (the `dmeId` tag), or the URL itself.
fn dme_id(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| url.to_owned())
}

/// Each instance's processes (`None`: not run here), read on a blocking thread, and the
/// readings that failed for a reason other than the process having exited.
async fn read_processes(
    source: Option<Arc<dyn ProcessSource>>,
    insts: Vec<AppInst>,
) -> (Vec<Option<Vec<(u32, ProcStat)>>>, Vec<String>) {
    let Some(source) = source else {
        return (vec![None; insts.len()], Vec::new());
    };
    let n = insts.len();
    let read = move || {
        let mut errors = Vec::new();
        let out = insts
            .iter()
            .map(|inst| read_instance(source.as_ref(), inst, &mut errors))
            .collect();
        (out, errors)
    };
    tokio::task::spawn_blocking(read)
        .await
        .unwrap_or_else(|e| (vec![None; n], vec![format!("process reader: {e}")]))
}

fn read_instance(
    source: &dyn ProcessSource,
    inst: &AppInst,
    errors: &mut Vec<String>,
) -> Option<Vec<(u32, ProcStat)>> {
    let pids = match source.pids(&inst.key) {
        Ok(p) => p?,
        Err(e) => {
            errors.push(format!("pids of {}: {e}", inst.key));
            return None;
        }
    };
    let mut procs = Vec::with_capacity(pids.len());
    for pid in pids {
        match source.stat(pid) {
            Ok(Some(s)) => procs.push((pid, s)),
            Ok(None) => {}
            Err(e) => errors.push(format!("process {pid} of {}: {e}", inst.key)),
        }
    }
    Some(procs)
}
