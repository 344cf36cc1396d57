//! The echo app the `local` platform's examples and tests run: it serves every access port it
//! is given, echoing TCP bytes and UDP datagrams back, on the address the platform gives it.
//! Run as `edgeplane echo` (the example region's app) or the `edge-echo` binary (this crate's
//! tests). Ports and address come from the platform's environment (`EDGE_APP_PORTS`,
//! `EDGE_APP_ADDR`) unless given as flags.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result};
use edge_model::LProto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Flags of the echo app.
#[derive(clap::Args, Debug, Clone)]
pub struct EchoArgs {
    /// Address to listen on (default: `EDGE_APP_ADDR`, else 127.0.0.1).
    #[arg(long)]
    pub listen: Option<IpAddr>,
    /// Ports in the access-ports grammar, e.g. `tcp:7000,udp:7001` (default: `EDGE_APP_PORTS`).
    #[arg(long)]
    pub ports: Option<String>,
    /// Text prepended to every TCP reply line's echo (tells instances apart in tests).
    #[arg(long, default_value = "")]
    pub tag: String,
}

/// Serves until the process is killed.
pub async fn run(args: EchoArgs) -> Result<()> {
    let addr = match args.listen {
        Some(a) => a,
        None => std::env::var("EDGE_APP_ADDR")
            .unwrap_or_else(|_| "127.0.0.1".into())
            .parse()
            .context("EDGE_APP_ADDR is not an IP address")?,
    };
    let text = match args.ports {
        Some(p) => p,
        None => std::env::var("EDGE_APP_PORTS").context("no --ports and no EDGE_APP_PORTS")?,
    };
    let ports = edge_model::parse_access_ports(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tasks = Vec::new();
    for p in ports {
        let last = if p.end_port == 0 {
            p.internal_port
        } else {
            p.end_port
        };
        for port in p.internal_port..=last {
            let sa = SocketAddr::new(addr, u16::try_from(port).context("port out of range")?);
            if p.proto == LProto::Udp {
                let s = tokio::net::UdpSocket::bind(sa)
                    .await
                    .with_context(|| format!("binding udp {sa}"))?;
                tasks.push(tokio::spawn(udp(s)));
            } else {
                let l = tokio::net::TcpListener::bind(sa)
                    .await
                    .with_context(|| format!("binding tcp {sa}"))?;
                tasks.push(tokio::spawn(tcp(l, args.tag.clone())));
            }
        }
    }
    println!("echo serving {text} on {addr}");
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

async fn tcp(l: tokio::net::TcpListener, tag: String) {
    loop {
        let Ok((mut s, _)) = l.accept().await else {
            continue;
        };
        let tag = tag.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            if !tag.is_empty() && s.write_all(tag.as_bytes()).await.is_err() {
                return;
            }
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

async fn udp(s: tokio::net::UdpSocket) {
    let mut buf = vec![0u8; 65536];
    loop {
        if let Ok((n, from)) = s.recv_from(&mut buf).await {
            let _ = s.send_to(&buf[..n], from).await;
        }
    }
}
