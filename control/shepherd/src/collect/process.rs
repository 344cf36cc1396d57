//! Processes of app instances → `appinst-cpu {cpu}` (percent of one core, so a busy
//! instance on 4 cores reads up to 400, as `docker stats` did upstream) and `appinst-mem {mem}`
//! (resident bytes), summed over each instance's processes.
//!
//! Where the processes are comes from a [`ProcessSource`]. [`StateDirSource`] reads what the
//! CRM's `local` platform keeps: `<state_dir>/instances/<organization>/<name>/pids`, the
//! instance's live pids one per line, then `/proc/<pid>/stat` (utime + stime, in clock ticks)
//! and `/proc/<pid>/status` (`VmRSS`). CPU is the difference between two collections, so an
//! instance's first collection reports memory only; [`CpuTracker`] keeps the previous readings.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use edge_model::{AppInst, AppInstKey};

use super::{inst_tags, measurement};
use crate::line::Point;

/// Clock ticks per second of `/proc/<pid>/stat` times: the kernel reports them in USER_HZ,
/// which is 100 on every Linux architecture we run on (sysconf would need `unsafe` here).
pub const USER_HZ: f64 = 100.0;

/// One reading of one process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcStat {
    /// Start time (ticks after boot): tells a reused pid from the process it replaced.
    pub start: u64,
    /// utime + stime, in ticks.
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
}

/// Where an instance's processes are, and what they use.
pub trait ProcessSource: Send + Sync {
    /// The live pids of `inst`; `Ok(None)` when this host runs nothing for it.
    fn pids(&self, inst: &AppInstKey) -> io::Result<Option<Vec<u32>>>;

    /// The reading of process `pid`; `Ok(None)` when it has exited.
    fn stat(&self, pid: u32) -> io::Result<Option<ProcStat>>;
}

/// The CRM `local` platform's state directory, and /proc.
#[derive(Clone, Debug)]
pub struct StateDirSource {
    state_dir: PathBuf,
    proc_root: PathBuf,
}

impl StateDirSource {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self::with_proc_root(state_dir, "/proc")
    }

    /// Reads processes under `proc_root` instead of `/proc` (tests).
    pub fn with_proc_root(state_dir: impl Into<PathBuf>, proc_root: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            proc_root: proc_root.into(),
        }
    }
}

/// A name usable as one path component (not empty, `.`, `..`, nor containing `/` or NUL).
fn component(s: &str) -> Option<&Path> {
    let ok = !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0']);
    ok.then(|| Path::new(s))
}

/// `Ok(None)` for a file that does not exist.
fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // ESRCH: the process exited while its files were being read.
        Err(e) if e.raw_os_error() == Some(3) => Ok(None),
        Err(e) => Err(e),
    }
}

impl ProcessSource for StateDirSource {
    fn pids(&self, inst: &AppInstKey) -> io::Result<Option<Vec<u32>>> {
        let (Some(org), Some(name)) = (component(&inst.organization), component(&inst.name)) else {
            return Ok(None);
        };
        let path = self
            .state_dir
            .join("instances")
            .join(org)
            .join(name)
            .join("pids");
        Ok(read_optional(&path)?.map(|text| parse_pids(&text)))
    }

    fn stat(&self, pid: u32) -> io::Result<Option<ProcStat>> {
        let dir = self.proc_root.join(pid.to_string());
        let Some(stat) = read_optional(&dir.join("stat"))? else {
            return Ok(None);
        };
        let Some(status) = read_optional(&dir.join("status"))? else {
            return Ok(None);
        };
        let Some((start, cpu_ticks)) = parse_stat(&stat) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unreadable {}", dir.join("stat").display()),
            ));
        };
        Ok(Some(ProcStat {
            start,
            cpu_ticks,
            rss_bytes: parse_rss(&status),
        }))
    }
}

/// The pids of a pids file; lines that are not a pid (a file caught mid-rewrite) are skipped.
pub fn parse_pids(text: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = text
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|&p| p > 0)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// `(starttime, utime + stime)` of a `/proc/<pid>/stat` line. The command name (field 2) is
/// in parentheses and may itself contain spaces and parentheses, so fields are counted from
/// the last `)`.
pub fn parse_stat(text: &str) -> Option<(u64, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // After the name: field 3 (state) is index 0, so utime (14) is 11, stime (15) 12 and
    // starttime (22) 19.
    let num = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((num(19)?, num(11)?.saturating_add(num(12)?)))
}

/// `VmRSS` of a `/proc/<pid>/status`, in bytes; 0 when absent (kernel threads, zombies).
pub fn parse_rss(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map_or(0, |kb| kb.saturating_mul(1024))
}

/// CPU ticks of each process of an instance, by (pid, start time).
type Ticks = HashMap<(u32, u64), u64>;

/// The previous readings of each instance's processes.
#[derive(Debug, Default)]
pub struct CpuTracker {
    /// Instance → (when read, in ms; ticks).
    prev: HashMap<AppInstKey, (i64, Ticks)>,
}

impl CpuTracker {
    /// Records `procs` of `inst` read at `now_ms`; returns the CPU percent since the previous
    /// reading, counting only processes seen both times (a new or restarted process has no
    /// previous reading yet).
    pub fn update(
        &mut self,
        inst: &AppInstKey,
        now_ms: i64,
        procs: &[(u32, ProcStat)],
    ) -> Option<f64> {
        let current: Ticks = procs
            .iter()
            .map(|(pid, s)| ((*pid, s.start), s.cpu_ticks))
            .collect();
        let prev = self.prev.insert(inst.clone(), (now_ms, current));
        let (then, before) = prev?;
        let (_, now) = self.prev.get(inst)?;
        let elapsed_s = (now_ms - then) as f64 / 1000.0;
        if elapsed_s <= 0.0 {
            return None;
        }
        let ticks: u64 = now
            .iter()
            .filter_map(|(id, t)| Some(t.saturating_sub(*before.get(id)?)))
            .sum();
        Some(ticks as f64 / USER_HZ / elapsed_s * 100.0)
    }

    /// Forgets the instances `keep` says no.
    pub fn retain(&mut self, keep: impl Fn(&AppInstKey) -> bool) {
        self.prev.retain(|k, _| keep(k));
    }
}

/// The points of one instance: memory always, CPU when `cpu` is known.
pub fn points(
    inst: &AppInst,
    procs: &[(u32, ProcStat)],
    cpu: Option<f64>,
    now_ms: i64,
) -> Vec<Point> {
    let tags = inst_tags(inst);
    let rss: u64 = procs.iter().map(|(_, s)| s.rss_bytes).sum();
    let mut mem = Point::new(measurement::APPINST_MEM, now_ms).field("mem", rss);
    mem.tags = tags.clone();
    let mut out = vec![mem];
    if let Some(cpu) = cpu {
        let mut p = Point::new(measurement::APPINST_CPU, now_ms).field("cpu", cpu);
        p.tags = tags;
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests;
