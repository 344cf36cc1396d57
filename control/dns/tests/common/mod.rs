//! Shared set-up of the integration tests: asking a server with the real `dig` (Debian package
//! `dnsutils`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::Command;

/// `dig @127.0.0.1 -p PORT ARGS...`, one try of 2 s; its standard output with each line's runs
/// of blanks (tabs or spaces, depending on dig's version) made one space.
pub async fn dig(addr: SocketAddr, args: &[&str]) -> Result<String> {
    let port = addr.port().to_string();
    let mut cmd = Command::new("dig");
    cmd.args(["@127.0.0.1", "-p", &port, "+time=2", "+tries=1"])
        .args(args)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(10), cmd.output())
        .await
        .context("dig did not finish within 10 s")?
        .context("running dig (Debian package dnsutils)")?;
    let stdout: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    if !out.status.success() {
        bail!("dig {args:?} failed ({}): {stdout}", out.status);
    }
    Ok(stdout)
}

/// The answer lines of `dig +short`.
pub async fn short(addr: SocketAddr, args: &[&str]) -> Result<Vec<String>> {
    let mut all = args.to_vec();
    all.push("+short");
    let out = dig(addr, &all).await?;
    Ok(out.lines().map(str::to_owned).collect())
}
