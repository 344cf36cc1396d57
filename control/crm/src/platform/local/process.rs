//! An app instance's process on this host: started from its command line, checked until it
//! listens, watched, restarted with backoff when it exits, stopped with its process group.
//! A process left by an earlier CRM is adopted (watched through /proc, identified by its start
//! time so a reused pid is never mistaken for it) rather than started twice.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use edge_model::{AppPort, HealthCheck, LProto};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::watch;

use super::PlatformError;

/// How to run one instance.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    /// Program and arguments (`{addr}` already replaced).
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub netns: Option<String>,
    pub address: IpAddr,
    pub ports: Vec<AppPort>,
    /// The instance's directory: output log, pid files.
    pub dir: PathBuf,
}

/// A running process: our child, or one adopted from an earlier CRM.
pub struct Running {
    pub pid: u32,
    start_time: u64,
    child: Option<tokio::process::Child>,
}

/// Restart delays: 1 s doubling to 30 s (long enough for matching to move clients elsewhere
/// while a crashed instance is down); a process that ran 30 s starts over.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// Splits a command line on blanks, keeping "double" or 'single' quoted parts together.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(ch);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err(format!("unterminated quote in command {line:?}"));
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    if out.is_empty() {
        return Err("the command (App.image_path) is empty".into());
    }
    Ok(out)
}

/// Whether `program` can be run: a path that exists, or a name found on PATH.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// Fails with a clear error if a port the instance needs is taken on its address.
pub fn check_ports_free(address: IpAddr, ports: &[AppPort]) -> Result<(), PlatformError> {
    for p in ports {
        let last = if p.end_port == 0 {
            p.internal_port
        } else {
            p.end_port
        };
        for port in p.internal_port..=last {
            let Ok(port) = u16::try_from(port) else {
                continue;
            };
            let addr = SocketAddr::new(address, port);
            let taken = match p.proto {
                LProto::Udp => std::net::UdpSocket::bind(addr).err(),
                _ => std::net::TcpListener::bind(addr).err(),
            };
            if let Some(e) = taken {
                return Err(PlatformError::Invalid(format!(
                    "port {}:{port} on {address} is not available: {e}",
                    p.proto
                )));
            }
        }
    }
    Ok(())
}

/// Starts the process (in its own process group, output appended to `output.log`).
pub fn spawn(spec: &RunSpec) -> Result<Running, PlatformError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(spec.dir.join("output.log"))
        .map_err(|source| PlatformError::Io {
            what: format!("opening {}", spec.dir.join("output.log").display()),
            source,
        })?;
    let err_log = log.try_clone().map_err(|source| PlatformError::Io {
        what: "duplicating the log file".into(),
        source,
    })?;
    let mut cmd = match &spec.netns {
        Some(ns) => {
            let mut c = tokio::process::Command::new("ip");
            c.args(["netns", "exec", ns]).args(&spec.argv);
            c
        }
        None => {
            let mut c = tokio::process::Command::new(&spec.argv[0]);
            c.args(&spec.argv[1..]);
            c
        }
    };
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .process_group(0)
        .kill_on_drop(false);
    let child = cmd
        .spawn()
        .map_err(|e| PlatformError::Workload(format!("cannot start {:?}: {e}", spec.argv[0])))?;
    let pid = child.id().unwrap_or(0);
    let start_time = start_time(pid).unwrap_or(0);
    write_pids(&spec.dir, pid, start_time);
    Ok(Running {
        pid,
        start_time,
        child: Some(child),
    })
}

/// The process recorded in `dir` by an earlier CRM, if it still runs.
pub fn adopt(dir: &Path) -> Option<Running> {
    let text = std::fs::read_to_string(dir.join("proc")).ok()?;
    let mut it = text.split_whitespace();
    let pid: u32 = it.next()?.parse().ok()?;
    let recorded: u64 = it.next()?.parse().ok()?;
    (start_time(pid) == Some(recorded)).then_some(Running {
        pid,
        start_time: recorded,
        child: None,
    })
}

/// Field 22 of /proc/PID/stat: when the process started (clock ticks since boot).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn write_pids(dir: &Path, pid: u32, start_time: u64) {
    // `pids` is read by Shepherd (one pid per line); `proc` identifies the process for adoption.
    let _ = std::fs::write(dir.join("pids"), format!("{pid}\n"));
    let _ = std::fs::write(dir.join("proc"), format!("{pid} {start_time}\n"));
}

impl Running {
    /// Resolves when the process has exited.
    pub async fn exited(&mut self) -> String {
        if let Some(child) = &mut self.child {
            return match child.wait().await {
                Ok(status) => status.to_string(),
                Err(e) => format!("wait failed: {e}"),
            };
        }
        while start_time(self.pid) == Some(self.start_time) {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        "exited".into()
    }

    /// Terminates the process group: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        let pg = Pid::from_raw(self.pid as i32);
        if self.pid == 0 || start_time(self.pid) != Some(self.start_time) {
            return;
        }
        let _ = killpg(pg, Signal::SIGTERM);
        if tokio::time::timeout(grace, self.exited()).await.is_err() {
            let _ = killpg(pg, Signal::SIGKILL);
            let _ = tokio::time::timeout(Duration::from_secs(2), self.exited()).await;
        }
    }
}

/// Waits until every TCP port accepts connections at the address (UDP ports cannot be probed
/// without the app's protocol). Fails if the process exits first or `timeout` passes.
pub async fn wait_listening(
    spec: &RunSpec,
    running: &mut Running,
    timeout: Duration,
) -> Result<(), PlatformError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let tcp: Vec<u16> = spec
        .ports
        .iter()
        .filter(|p| p.proto != LProto::Udp)
        .filter_map(|p| u16::try_from(p.internal_port).ok())
        .collect();
    let tcp_probed = tcp.len();
    for port in tcp {
        let addr = SocketAddr::new(spec.address, port);
        loop {
            if connect_ok(addr, spec.netns.as_deref()).await {
                break;
            }
            if let Some(status) = exited_now(running) {
                return Err(PlatformError::Workload(format!(
                    "the process exited ({status}) before listening on tcp:{port}{}",
                    log_tail(&spec.dir)
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(PlatformError::Workload(format!(
                    "the process does not listen on tcp:{port} at {} after {} s{}",
                    spec.address,
                    timeout.as_secs(),
                    log_tail(&spec.dir)
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Without a TCP port to prove it serves, a process that dies at once (bad arguments) is
    // caught by giving it a moment.
    if tcp_probed == 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match exited_now(running) {
        Some(status) => Err(PlatformError::Workload(format!(
            "the process exited ({status}) right after starting{}",
            log_tail(&spec.dir)
        ))),
        None => Ok(()),
    }
}

async fn connect_ok(addr: SocketAddr, _netns: Option<&str>) -> bool {
    // A namespace's address is reachable from the host through its veth pair.
    matches!(
        tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr)
        )
        .await,
        Ok(Ok(_))
    )
}

fn exited_now(running: &mut Running) -> Option<String> {
    match &mut running.child {
        Some(c) => c.try_wait().ok().flatten().map(|s| s.to_string()),
        None => (start_time(running.pid) != Some(running.start_time)).then(|| "exited".into()),
    }
}

/// The last lines the process printed, for error messages.
fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("output.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail: Vec<&str> = lines.into_iter().rev().collect();
    format!("; its last output: {}", tail.join(" | "))
}

/// The live state of a supervised instance.
pub struct Supervised {
    pub health: watch::Receiver<HealthCheck>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervised {
    /// Stops watching and terminates the process.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Watches `running`; when it exits, reports `ServerFail` and restarts it with backoff, and
/// reports `Ok` again once it listens. `changed` is called on every health change.
pub fn supervise(
    spec: RunSpec,
    running: Running,
    ready_timeout: Duration,
    changed: Arc<dyn Fn() + Send + Sync>,
) -> Supervised {
    let (health_tx, health) = watch::channel(HealthCheck::Ok);
    let (stop, mut stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut running = running;
        let mut delay = BACKOFF_MIN;
        loop {
            let started = tokio::time::Instant::now();
            let exited = tokio::select! {
                status = running.exited() => Some(status),
                stopped = async { stop_rx.wait_for(|s| *s).await.is_ok() } => {
                    // Stopped: end the process. The platform dropped without stopping (its
                    // CRM ends): leave the process to the next CRM, which adopts it.
                    if stopped {
                        running.stop(Duration::from_secs(3)).await;
                        let _ = std::fs::remove_file(spec.dir.join("pids"));
                    }
                    None
                }
            };
            let Some(status) = exited else {
                return;
            };
            tracing::warn!(dir = %spec.dir.display(), %status, "instance process exited; restarting");
            health_tx.send_replace(HealthCheck::ServerFail);
            changed();
            if started.elapsed() > STABLE_AFTER {
                delay = BACKOFF_MIN;
            }
            running = loop {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop_rx.wait_for(|s| *s) => return,
                }
                delay = (delay * 2).min(BACKOFF_MAX);
                match spawn(&spec) {
                    Ok(mut r) => match wait_listening(&spec, &mut r, ready_timeout).await {
                        Ok(()) => break r,
                        Err(e) => {
                            tracing::warn!(dir = %spec.dir.display(), error = %e, "restart failed");
                            r.stop(Duration::from_secs(1)).await;
                        }
                    },
                    Err(e) => {
                        tracing::warn!(dir = %spec.dir.display(), error = %e, "restart failed")
                    }
                }
            };
            health_tx.send_replace(HealthCheck::Ok);
            changed();
        }
    });
    Supervised { health, stop, task }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_on_blanks_and_keep_quotes() {
        assert_eq!(
            split_command(r#"echo-app --bind {addr} --greeting "hello there" 'x y'"#).unwrap(),
            [
                "echo-app",
                "--bind",
                "{addr}",
                "--greeting",
                "hello there",
                "x y"
            ]
        );
        assert_eq!(split_command(r#"prog """#).unwrap(), ["prog", ""]);
        assert!(split_command("   ").unwrap_err().contains("empty"));
        assert!(
            split_command("prog \"open")
                .unwrap_err()
                .contains("unterminated")
        );
    }

    #[test]
    fn the_start_time_identifies_this_process() {
        let me = std::process::id();
        assert!(start_time(me).is_some());
        assert_eq!(start_time(u32::MAX), None);
    }
}
