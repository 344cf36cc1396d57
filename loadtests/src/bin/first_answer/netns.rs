//! The lab: two network namespaces joined by the user-space link emulator (`linkem.py`, run as
//! `python3 -c`), the DME serving in one of them. Dropping the [`Lab`] removes everything it
//! made, in reverse order: the DME, the emulator (and with it the TUN devices), the namespaces.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use loadtests::stacks::ChildServer;

/// The emulator, embedded so the binary runs from anywhere.
const LINKEM: &str = include_str!("../../../linkem.py");

pub const CLI_IP: &str = "10.239.0.1";
pub const SRV_IP: &str = "10.239.0.2";
const CLI_DEV: &str = "epc0";
const SRV_DEV: &str = "eps0";

pub struct Lab {
    pub cli: String,
    pub srv: String,
    /// Namespaces created so far (removed on drop).
    made: Vec<String>,
    emulator: Option<Emulator>,
    server: Option<ChildServer>,
}

struct Emulator {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (iproute2)")?;
    anyhow::ensure!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

impl Lab {
    /// Creates the namespaces, the link and the DME (`exe --serve` in the server namespace).
    pub fn create(
        python: &str,
        delay_ms: f64,
        seed: u64,
        exe: &Path,
        instances: usize,
    ) -> anyhow::Result<Lab> {
        let pid = std::process::id();
        let mut lab = Lab {
            cli: format!("ep-cli-{pid}"),
            srv: format!("ep-srv-{pid}"),
            made: Vec::new(),
            emulator: None,
            server: None,
        };
        for ns in [lab.cli.clone(), lab.srv.clone()] {
            ip(&["netns", "add", &ns]).with_context(|| {
                format!(
                    "cannot create network namespace {ns} (this needs root / CAP_SYS_ADMIN and \
                     iproute2); nothing measured"
                )
            })?;
            lab.made.push(ns);
        }
        let mut child = Command::new(python)
            .arg("-c")
            .arg(LINKEM)
            .args(["--ns-a", &lab.cli, "--dev-a", CLI_DEV])
            .args(["--ns-b", &lab.srv, "--dev-b", SRV_DEV])
            .args(["--delay-ms", &delay_ms.to_string()])
            .args(["--seed", &seed.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the link emulator with {python}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("emulator stdout")?;
        lab.emulator = Some(Emulator {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        });
        let first = lab.emulator_line()?;
        anyhow::ensure!(
            first == "ready",
            "the link emulator did not start (said {first:?}; see its error above)"
        );
        for (ns, dev, me, peer) in [
            (&lab.cli, CLI_DEV, CLI_IP, SRV_IP),
            (&lab.srv, SRV_DEV, SRV_IP, CLI_IP),
        ] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{me}/32"),
                "peer",
                &format!("{peer}/32"),
                "dev",
                dev,
            ])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &lab.srv])
            .arg(exe)
            .args(["--serve", "--bind", SRV_IP])
            .args(["--instances", &instances.to_string()]);
        lab.server = Some(ChildServer::spawn(cmd, Duration::from_secs(120))?);
        Ok(lab)
    }

    pub fn server(&self) -> &ChildServer {
        self.server
            .as_ref()
            .unwrap_or_else(|| unreachable!("created with a server"))
    }

    pub fn emulator_pid(&self) -> u32 {
        self.emulator.as_ref().map_or(0, |e| e.child.id())
    }

    /// Moves the calling thread (and threads it starts later) into the client namespace.
    pub fn enter_client(&self) -> anyhow::Result<()> {
        let f = std::fs::File::open(format!("/run/netns/{}", self.cli))?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
            .context("entering the client namespace")?;
        Ok(())
    }

    fn emulator_line(&mut self) -> anyhow::Result<String> {
        let e = self.emulator.as_mut().context("no emulator")?;
        let mut line = String::new();
        let n = e.stdout.read_line(&mut line)?;
        anyhow::ensure!(n > 0, "the link emulator exited");
        Ok(line.trim().to_string())
    }

    fn emulator_cmd(&mut self, cmd: &str) -> anyhow::Result<String> {
        let e = self.emulator.as_mut().context("no emulator")?;
        let stdin = e.stdin.as_mut().context("emulator stdin")?;
        writeln!(stdin, "{cmd}")?;
        stdin.flush()?;
        self.emulator_line()
    }

    /// Sets the loss probability of both directions (reseeded, counters zeroed).
    pub fn set_loss(&mut self, p: f64, seed: u64) -> anyhow::Result<()> {
        let answer = self.emulator_cmd(&format!("loss {p} {seed}"))?;
        anyhow::ensure!(answer.starts_with("ok"), "emulator: {answer}");
        Ok(())
    }

    /// Packets (forwarded, dropped) over both directions since the last `set_loss`.
    pub fn link_stats(&mut self) -> anyhow::Result<(u64, u64)> {
        let v: serde_json::Value = serde_json::from_str(&self.emulator_cmd("stats")?)?;
        let sum = |k: &str| {
            ["a_to_b", "b_to_a"]
                .iter()
                .map(|d| v[d][k].as_u64().unwrap_or(0))
                .sum::<u64>()
        };
        Ok((sum("forwarded"), sum("dropped")))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The DME first (it is in a namespace about to go), then the link, then the namespaces.
        drop(self.server.take());
        if let Some(mut e) = self.emulator.take() {
            drop(e.stdin.take());
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while std::time::Instant::now() < deadline && matches!(e.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = e.child.kill();
            let _ = e.child.wait();
        }
        for ns in self.made.drain(..).rev() {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                eprintln!("warning: removing namespace {ns}: {e:#}");
            }
        }
    }
}
