//! The `local` platform: each app instance runs as real processes on this host. The app's
//! `image_path` is the command line (`{addr}` is replaced by the address to listen on,
//! `{edgeplane}` by the path of the running binary; the
//! environment also carries `EDGE_APP_ADDR`, `EDGE_APP_PORTS`, `EDGE_APP_INST`), and its access
//! ports are the ports it must listen on. Dead processes are restarted with backoff
//! ([`process`]); each cluster gets a network namespace or a loopback address of its own
//! ([`net`]).
//!
//! Everything is recorded under the state directory, so a restarted CRM adopts what runs:
//! - `clusters/<org>/<name>/`: `address`, `netns` (if any);
//! - `instances/<org>/<name>/`: `argv` (one argument per line), `cluster`, `address`, `netns`,
//!   `ports`, `proc` (pid and start time), `pids` (live pids, one per line: Shepherd reads
//!   it), `output.log`.

pub mod net;
pub mod process;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edge_model::{AppInstKey, AppPort, CloudletKey, ClusterKey, LProto};
use tokio::sync::broadcast;

use self::net::{ClusterNet, Isolation};
use self::process::{RunSpec, Supervised};
use super::{
    ClusterSpec, ClusterStatus, InstSpec, Inventory, Platform, PlatformError, PlatformInfo,
    ProgressSink,
};

/// How the local platform runs.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// Where this cloudlet's clusters and instances are recorded.
    pub state_dir: PathBuf,
    pub isolation: Isolation,
    pub cloudlet: CloudletKey,
    /// How long a started process may take to listen on its TCP ports.
    pub ready_timeout: Duration,
}

struct Inst {
    cluster: Option<ClusterKey>,
    address: IpAddr,
    ports: Vec<AppPort>,
    sup: Supervised,
}

#[derive(Default)]
struct Inner {
    clusters: HashMap<ClusterKey, ClusterNet>,
    insts: HashMap<AppInstKey, Inst>,
}

pub struct LocalPlatform {
    opts: LocalOptions,
    netns: bool,
    inner: Mutex<Inner>,
    changes: broadcast::Sender<AppInstKey>,
}

impl LocalPlatform {
    pub fn new(opts: LocalOptions) -> Result<Self, PlatformError> {
        for d in ["clusters", "instances"] {
            let p = opts.state_dir.join(d);
            std::fs::create_dir_all(&p).map_err(|source| PlatformError::Io {
                what: format!("creating {}", p.display()),
                source,
            })?;
        }
        Ok(Self {
            netns: opts.isolation.uses_netns(),
            opts,
            inner: Mutex::default(),
            changes: broadcast::Sender::new(256),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cluster_dir(&self, k: &ClusterKey) -> PathBuf {
        self.opts
            .state_dir
            .join("clusters")
            .join(part(&k.organization))
            .join(part(&k.name))
    }

    fn inst_dir(&self, k: &AppInstKey) -> PathBuf {
        self.opts
            .state_dir
            .join("instances")
            .join(part(&k.organization))
            .join(part(&k.name))
    }

    /// A network for a new cluster: a namespace where possible, else a loopback address.
    async fn new_net(&self, progress: &dyn ProgressSink) -> Result<ClusterNet, PlatformError> {
        let seed = std::collections::hash_map::RandomState::new()
            .hash_one(std::time::SystemTime::now()) as u32;
        if self.netns {
            let made = tokio::task::spawn_blocking(move || net::create_netns(seed))
                .await
                .map_err(|e| PlatformError::Invalid(format!("creating a namespace: {e}")))?;
            match made {
                Ok(n) => return Ok(n),
                Err(e) if self.opts.isolation == Isolation::Auto => {
                    progress.line(format!(
                        "no network namespace ({e}); using a loopback address"
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        let inner = self.inner();
        let taken = |a: IpAddr| {
            inner.clusters.values().any(|c| c.address == a)
                || inner.insts.values().any(|i| i.address == a)
        };
        Ok(ClusterNet {
            address: net::loopback_address(seed, taken),
            netns: None,
        })
    }

    fn notify(&self) -> Arc<dyn Fn(AppInstKey) + Send + Sync> {
        let tx = self.changes.clone();
        Arc::new(move |k| {
            let _ = tx.send(k);
        })
    }

    fn start_supervised(
        &self,
        key: &AppInstKey,
        spec: RunSpec,
        running: process::Running,
    ) -> Supervised {
        let (notify, k) = (self.notify(), key.clone());
        process::supervise(
            spec,
            running,
            self.opts.ready_timeout,
            Arc::new(move || notify(k.clone())),
        )
    }

    /// What it takes to run `spec`, checked: the command, the address, free ports.
    fn run_spec(&self, spec: &InstSpec) -> Result<(RunSpec, Option<ClusterKey>), PlatformError> {
        let app = &spec.app.key;
        let mut argv = process::split_command(&spec.app.image_path)
            .map_err(|e| PlatformError::Invalid(format!("app {app}: {e}")))?;
        // `{edgeplane}`: this very binary (apps shipped with Edgeplane, such as its echo app).
        if let Ok(me) = std::env::current_exe() {
            for a in &mut argv {
                *a = a.replace("{edgeplane}", &me.display().to_string());
            }
        }
        if process::find_program(&argv[0]).is_none() {
            return Err(PlatformError::Invalid(format!(
                "app {app}: command {:?} not found: the local platform runs the app's image_path, \
                 which must name a program on this host (a path, or a name on PATH)",
                argv[0]
            )));
        }
        let inner = self.inner();
        let (address, netns) = match &spec.cluster {
            Some(c) => {
                let n = inner.clusters.get(c).ok_or_else(|| {
                    PlatformError::Missing(format!(
                        "cluster {}/{} does not exist on cloudlet {}",
                        c.organization, c.name, self.opts.cloudlet
                    ))
                })?;
                (n.address, n.netns.clone())
            }
            None => {
                return Err(PlatformError::Invalid(format!(
                    "app instance {}/{}: the local platform runs instances in a cluster",
                    spec.key.organization, spec.key.name
                )));
            }
        };
        for (other, i) in &inner.insts {
            if other != &spec.key && i.address == address && overlaps(&i.ports, &spec.ports) {
                return Err(PlatformError::Invalid(format!(
                    "app instance {}/{} already listens on a port of {} in this cluster",
                    other.organization,
                    other.name,
                    ports_text(&spec.ports)
                )));
            }
        }
        drop(inner);
        if netns.is_none() {
            process::check_ports_free(address, &spec.ports)?;
        }
        for a in &mut argv {
            *a = a.replace("{addr}", &address.to_string());
        }
        let env = vec![
            ("EDGE_APP_ADDR".into(), address.to_string()),
            ("EDGE_APP_PORTS".into(), ports_text(&spec.ports)),
            (
                "EDGE_APP_INST".into(),
                format!("{}/{}", spec.key.organization, spec.key.name),
            ),
        ];
        Ok((
            RunSpec {
                argv,
                env,
                netns,
                address,
                ports: spec.ports.clone(),
                dir: self.inst_dir(&spec.key),
            },
            spec.cluster.clone(),
        ))
    }
}

/// A key part as a file name: letters, digits, `.`, `_` and `-` kept, the rest %-escaped.
fn part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' => out.push(b as char),
            b'.' if !out.is_empty() => out.push('.'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn ports_text(ports: &[AppPort]) -> String {
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn overlaps(a: &[AppPort], b: &[AppPort]) -> bool {
    let range = |p: &AppPort| (p.internal_port, p.end_port.max(p.internal_port));
    a.iter().any(|x| {
        b.iter().any(|y| {
            let (same_proto, (x0, x1), (y0, y1)) = (
                (x.proto == LProto::Udp) == (y.proto == LProto::Udp),
                range(x),
                range(y),
            );
            same_proto && x0 <= y1 && y0 <= x1
        })
    })
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), PlatformError> {
    std::fs::write(dir.join(name), text).map_err(|source| PlatformError::Io {
        what: format!("writing {}", dir.join(name).display()),
        source,
    })
}

fn read(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_string())
}

mod adopt;
mod driver;
