//! The loop closed on one machine, over real sockets: a `local` echo app on two cloudlets, each
//! with its own CRM (the local platform: real processes, a namespace or loopback address per
//! cluster) and shared root LB, the region DNS and a DME, all fed by one controller.
//! FindCloudlet answers a name that resolves (through `dig`) to the LB that serves it, bytes
//! come back from the app, a killed process takes the instance out of matching and its restart
//! brings it back, and a delete removes processes, listener and name.

mod common;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use common::*;
use dme::proto::{self, find_cloudlet_reply::FindStatus};
use edge_api::pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const BERLIN: (f64, f64) = (52.52, 13.405);
const MUNICH: (f64, f64) = (48.1374, 11.5755);
const NEAR_BERLIN: (f64, f64) = (52.3906, 13.0645);

#[derive(Parser)]
struct RootLbCli {
    #[command(flatten)]
    args: dataplane::RootLbArgs,
}

/// The region; the clusters only once the CRMs run (a create waits for the CRM to finish).
fn document(with_clusters: bool) -> String {
    let echo = env!("CARGO_BIN_EXE_edgeplane");
    let clusters = if with_clusters {
        r#"cluster_insts:
  - key: {organization: NimbusGames, name: echo-berlin}
    cloudlet: {organization: telekom, name: berlin-local}
  - key: {organization: NimbusGames, name: echo-munich}
    cloudlet: {organization: telekom, name: munich-local}
"#
    } else {
        ""
    };
    format!(
        r#"version: 1
region: eu
operator_codes:
  - {{code: "26201", organization: telekom}}
cloudlets:
  - key: {{organization: telekom, name: berlin-local}}
    location: {{latitude: {}, longitude: {}}}
    platform_type: local
  - key: {{organization: telekom, name: munich-local}}
    location: {{latitude: {}, longitude: {}}}
    platform_type: local
apps:
  - key: {{organization: NimbusGames, name: echo, version: "1"}}
    deployment: process
    image_path: "{echo} echo"
    access_ports: "tcp:7000"
{clusters}"#,
        BERLIN.0, BERLIN.1, MUNICH.0, MUNICH.1
    )
}

fn inst(name: &str, cloudlet: &str) -> edge_model::AppInst {
    edge_model::AppInst {
        key: edge_model::AppInstKey {
            organization: "NimbusGames".into(),
            name: name.into(),
        },
        app: edge_model::AppKey {
            organization: "NimbusGames".into(),
            name: "echo".into(),
            version: "1".into(),
        },
        cloudlet: edge_model::CloudletKey {
            organization: "telekom".into(),
            name: cloudlet.into(),
        },
        cluster: Some(name.into()),
        uri: String::new(),
        mapped_ports: Vec::new(),
        state: edge_model::TrackedState::CreateRequested,
        health: edge_model::HealthCheck::Unknown,
        platform_health: edge_model::HealthCheck::Unknown,
    }
}

/// Kills what a failed run could leave: the instances' processes and the namespaces.
struct Leftovers(PathBuf);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for pids in glob(&self.0, "pids") {
            for pid in std::fs::read_to_string(&pids).unwrap_or_default().lines() {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        for ns in glob(&self.0, "netns") {
            if let Ok(ns) = std::fs::read_to_string(ns)
                && !ns.trim().is_empty()
            {
                let _ = std::process::Command::new("ip")
                    .args(["netns", "del", ns.trim()])
                    .output();
            }
        }
    }
}

/// Files named `name` anywhere under `dir`.
fn glob(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == name) {
                out.push(p);
            }
        }
    }
    out
}

/// FindCloudlet near `at`: (fqdn, first public port, cloudlet location), or None.
async fn find(dme: &Dme, at: (f64, f64)) -> Option<(String, u16, (f64, f64))> {
    let mut c = dme.client().await;
    let reg = c
        .register_client(proto::RegisterClientRequest {
            org_name: "NimbusGames".into(),
            app_name: "echo".into(),
            app_vers: "1".into(),
            ..Default::default()
        })
        .await
        .ok()?
        .into_inner();
    let r = c
        .find_cloudlet(proto::FindCloudletRequest {
            session_cookie: reg.session_cookie,
            carrier_name: "26201".into(),
            gps_location: Some(proto::Loc {
                latitude: at.0,
                longitude: at.1,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .ok()?
        .into_inner();
    if r.status != FindStatus::FindFound as i32 {
        return None;
    }
    let loc = r.cloudlet_location?;
    let port = u16::try_from(r.ports.first()?.public_port).ok()?;
    Some((r.fqdn, port, (loc.latitude, loc.longitude)))
}

/// `dig @127.0.0.1 -p PORT name A`: the addresses, or the status (e.g. "NXDOMAIN").
fn dig(dns: SocketAddr, name: &str) -> Result<Vec<IpAddr>, String> {
    let out = std::process::Command::new("dig")
        .args([
            &format!("@{}", dns.ip()),
            "-p",
            &dns.port().to_string(),
            name,
            "A",
            "+tries=1",
            "+time=2",
        ])
        .output()
        .expect("dig runs (Debian package dnsutils)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("no answer")
        .to_string();
    if status != "NOERROR" {
        return Err(status);
    }
    let answers = text
        .split(";; ANSWER SECTION:")
        .nth(1)
        .unwrap_or("")
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect();
    Ok(answers)
}

/// The test command's InfluxDB (scripts/test.sh starts one).
fn influx_url() -> String {
    match std::env::var("EDGEPLANE_INFLUX_URL") {
        Ok(u) if !u.trim().is_empty() => u.trim().trim_end_matches('/').to_owned(),
        _ => panic!(
            "EDGEPLANE_INFLUX_URL is not set: start an InfluxDB with \
             `export EDGEPLANE_INFLUX_URL=$(control/shepherd/scripts/influx-test-server.sh start)` \
             (scripts/test.sh does)"
        ),
    }
}

/// The first value of the first series `q` returns (an InfluxQL query over HTTP/1.0).
async fn influx_value(url: &str, db: &str, q: &str) -> Option<f64> {
    let host = url.strip_prefix("http://")?;
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let mut s = tokio::net::TcpStream::connect(host).await.ok()?;
    let req = format!(
        "GET /query?db={}&q={} HTTP/1.0\r\nHost: {host}\r\n\r\n",
        enc(db),
        enc(q)
    );
    s.write_all(req.as_bytes()).await.ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).await.ok()?;
    let json: serde_json::Value = serde_json::from_str(body.split_once("\r\n\r\n")?.1).ok()?;
    json["results"][0]["series"][0]["values"][0][1].as_f64()
}

async fn echo(addr: SocketAddr, text: &str) -> Result<String, String> {
    let step = |what: &'static str| move |e: std::io::Error| format!("{what}: {e}");
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(step("connect"))?;
    s.write_all(text.as_bytes()).await.map_err(step("send"))?;
    let mut buf = vec![0u8; text.len()];
    tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
        .await
        .map_err(|_| "no reply".to_string())?
        .map_err(step("read"))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

async fn until<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_instances_resolve_carry_traffic_fail_over_and_go_away() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("crm");
    let _leftovers = Leftovers(state.clone());
    let ctl = start_controller(redb(&dir.path().join("store")).await, None).await;
    let dme = start_dme(&[ctl.notify]).await;
    let (stop_tx, stop) = watch::channel(false);
    let until_stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    // The document first: a CRM for a cloudlet the region lacks stops at once (tested below).
    let doc = edge_model::document::parse(&document(false)).unwrap();
    let mut client = ctl.client().await;
    edgectl::apply(&mut client, &doc).await.expect("apply");
    // Per cloudlet: a CRM (local platform) and a root LB on a loopback address of its own.
    let seed = std::process::id();
    let mut lbs = Vec::new();
    let mut lb_metrics = Vec::new();
    for (i, name) in ["berlin-local", "munich-local"].into_iter().enumerate() {
        let lb_ip = IpAddr::from([127, 60 + (seed % 60) as u8, (seed >> 8) as u8, 10 + i as u8]);
        lbs.push(lb_ip);
        let opts = crm::cli::PlatformOptions {
            state_dir: state.clone(),
            ready_timeout: Duration::from_secs(10),
            ..Default::default()
        };
        let config = crm::CrmConfig {
            addrs: vec![ctl.notify.to_string()],
            tls: None,
            name: format!("crm-{name}"),
            scope: crm::Scope::Cloudlet(edge_model::CloudletKey {
                organization: "telekom".into(),
                name: name.into(),
            }),
            platforms: Box::new(move |c| crm::cli::make_platform(&opts, c)),
            rootlb_address: Some(lb_ip),
        };
        let rx = stop.clone();
        tokio::spawn(async move { crm::run(config, rx).await.expect("CRM runs") });
        let metrics = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let lb = RootLbCli::parse_from([
            "rootlb",
            "--controller",
            &ctl.notify.to_string(),
            "--cloudlet",
            &format!("telekom/{name}"),
            "--listen-ip",
            &lb_ip.to_string(),
            "--metrics-addr",
            &metrics.to_string(),
        ])
        .args;
        tokio::spawn(dataplane::run_rootlb_until(lb, until_stop(stop.clone())));
        lb_metrics.push(metrics);
    }
    // Berlin's Shepherd, writing to the test command's InfluxDB.
    let influx = influx_url();
    let db = format!("e2e_{}", std::process::id());
    let berlin_key = edge_model::CloudletKey {
        organization: "telekom".into(),
        name: "berlin-local".into(),
    };
    let mut shepherd = shepherd::ShepherdConfig::new(vec![ctl.notify.to_string()], berlin_key);
    shepherd.interval = Duration::from_secs(1);
    shepherd.sources = shepherd::Sources {
        rootlb_metrics: Some(format!("http://{}/metrics", lb_metrics[0])),
        dme_metrics: Vec::new(),
        processes: Some(std::sync::Arc::new(shepherd::StateDirSource::new(
            state.join("telekom-berlin-local"),
        ))),
    };
    shepherd.influx = Some(shepherd::InfluxConfig::new(influx.clone(), db.clone()));
    tokio::spawn(shepherd::run(shepherd, until_stop(stop.clone())));
    let (udp, tcp) = edge_dns::cli::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dns = udp.local_addr().unwrap();
    tokio::spawn(edge_dns::cli::run(
        edge_dns::cli::DnsConfig::new(vec![ctl.notify.to_string()], "eu"),
        udp,
        tcp,
        until_stop(stop.clone()),
    ));

    // The instances one by one, each create streaming the CRM's progress.
    let doc = edge_model::document::parse(&document(true)).unwrap();
    let report = edgectl::apply(&mut client, &doc)
        .await
        .expect("apply the clusters");
    assert_eq!(report.created, 2, "{report:?}");
    for (name, cloudlet) in [
        ("echo-berlin", "berlin-local"),
        ("echo-munich", "munich-local"),
    ] {
        let mut stream = client
            .create(pb::CreateRequest {
                object: Some(pb::Object::from(&edge_model::Object::AppInst(inst(
                    name, cloudlet,
                )))),
            })
            .await
            .expect("create")
            .into_inner();
        let mut lines = Vec::new();
        while let Some(p) = stream.message().await.expect("progress") {
            lines.push(p.message);
        }
        assert!(
            lines.iter().any(|l| l.contains("Listening on tcp:7000")),
            "the CRM's progress reaches the caller: {lines:?}"
        );
        assert!(lines.last().unwrap().ends_with("done"), "{lines:?}");
    }

    // FindCloudlet from near Berlin: berlin's name, which the region DNS resolves to its LB,
    // and bytes sent there come back from the app.
    let (fqdn, port, loc) = until("FindCloudlet finds berlin", 20, || async {
        find(&dme, NEAR_BERLIN).await.filter(|f| f.2 == BERLIN)
    })
    .await;
    assert_eq!(loc, BERLIN);
    assert!(fqdn.contains("berlin-local-telekom"), "{fqdn}");
    let resolved = until("the region DNS resolves the name", 10, || async {
        dig(dns, &fqdn).ok().filter(|a| !a.is_empty())
    })
    .await;
    assert_eq!(resolved, vec![lbs[0]]);
    let front = SocketAddr::new(resolved[0], port);
    let reply = until("echo through berlin's root LB", 10, || async {
        echo(front, "hello\n").await.ok()
    })
    .await;
    assert_eq!(reply, "hello\n");
    // The same through edgectl: FindCloudlet, resolve through the region DNS, connect.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgectl"))
        .args(["dme", "--dme-addr", &dme.grpc.to_string(), "find"])
        .args(["--app", "NimbusGames/echo/1", "--carrier", "26201"])
        .args([
            "--lat",
            &NEAR_BERLIN.0.to_string(),
            "--lon",
            &NEAR_BERLIN.1.to_string(),
        ])
        .args([
            "--connect",
            "--dns",
            &dns.to_string(),
            "--send",
            "edgectl\\n",
        ])
        .output()
        .expect("edgectl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("-> {}", lbs[0])), "{stdout}");
    assert!(stdout.contains("edgectl"), "{stdout}");

    // Shepherd's measurements reach InfluxDB: the connection through berlin's LB, the echo
    // process's CPU and memory, the cloudlet's utilisation.
    for (measurement, field) in [
        ("appinst-connections", "accepts"),
        ("appinst-mem", "mem"),
        ("appinst-cpu", "cpu"),
        ("cloudlet-utilization", "vCpuMax"),
    ] {
        let q = format!(
            "SELECT last(\"{field}\") FROM \"{measurement}\" WHERE \"cloudlet\"='berlin-local'"
        );
        let value = until(&format!("{measurement} in InfluxDB"), 20, || async {
            influx_value(&influx, &db, &q)
                .await
                .filter(|v| *v > 0.0 || field == "cpu")
        })
        .await;
        assert!(value >= 0.0, "{measurement}.{field} = {value}");
    }

    // Kill the app's process on berlin: matching moves to munich within 5 s, and back once the
    // process is restarted.
    let pids = glob(&state, "pids")
        .into_iter()
        .find(|p| p.to_string_lossy().contains("echo-berlin"))
        .expect("berlin's pid file");
    let pid: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let killed = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    until("FindCloudlet returns munich", 5, || async {
        find(&dme, NEAR_BERLIN).await.filter(|f| f.2 == MUNICH)
    })
    .await;
    eprintln!("failed over in {:?}", killed.elapsed());
    until("berlin again after the restart", 20, || async {
        find(&dme, NEAR_BERLIN).await.filter(|f| f.2 == BERLIN)
    })
    .await;
    let restarted: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(restarted, pid);

    // Delete berlin's instance: its process, the LB's listener and the name go.
    let key = edge_model::ObjectKey::AppInst(inst("echo-berlin", "berlin-local").key);
    edgectl::delete_object(&mut client, &key)
        .await
        .expect("delete");
    until("berlin's process is gone", 10, || async {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(restarted), None)
            .is_err()
            .then_some(())
    })
    .await;
    until("berlin's LB listener is closed", 10, || async {
        tokio::net::TcpStream::connect(front)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    let status = until("the name answers NXDOMAIN", 10, || async {
        dig(dns, &fqdn).err()
    })
    .await;
    assert_eq!(status, "NXDOMAIN");
    assert_eq!(find(&dme, NEAR_BERLIN).await.map(|f| f.2), Some(MUNICH));

    // Leave nothing behind: munich's instance and both clusters, through the controller.
    let munich = edge_model::ObjectKey::AppInst(inst("echo-munich", "munich-local").key);
    let mut keys = vec![munich];
    for c in ["echo-berlin", "echo-munich"] {
        keys.push(edge_model::ObjectKey::ClusterInst(edge_model::ClusterKey {
            organization: "NimbusGames".into(),
            name: c.into(),
        }));
    }
    for k in keys {
        edgectl::delete_object(&mut client, &k)
            .await
            .expect("delete");
    }
    assert!(glob(&state, "pids").is_empty(), "no instance left");
    let _ = stop_tx.send(true);
}
