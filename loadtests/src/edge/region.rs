//! The region `edge-load` runs against: a controller on the embedded store in this process (with
//! the CRM of the `fake` platform, as `edgeplane controller` runs it), one app with one instance
//! on each cloudlet of a grid of one operator, and the DME as a child process (so that its memory
//! and CPU can be read from `/proc/PID`; [`ServerProcess`] also runs the transport floor).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use dme_api::proto::find_cloudlet_reply::FindStatus;
use dme_api::proto::match_engine_api_client::MatchEngineApiClient;
use dme_api::proto::{FindCloudletRequest, Loc, RegisterClientRequest};
use edge_api::pb::{self, controller_client::ControllerClient};
use edge_model::{Cloudlet, CloudletKey, CloudletState, MaintenanceState, Object};
use geodata::LatLon;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tonic::transport::Channel;

/// The operator of every cloudlet, and the carrier code that maps to it.
pub const OPERATOR: &str = "edgeop";
pub const OPERATOR_CODE: &str = "00101";
pub const APP_ORG: &str = "loadorg";
pub const APP_NAME: &str = "edge-game";
pub const APP_VERSION: &str = "1";

/// Cloudlets on a grid of `cols` columns, about 11 km apart in both directions (0.1° of latitude,
/// 0.15° of longitude at 48° N), so that a client within 30 % of the spacing of a site is nearest
/// to it.
#[derive(Clone, Debug)]
pub struct Grid {
    pub n: usize,
    pub cols: usize,
}

const ORIGIN: (f64, f64) = (48.0, 11.0);
const DLAT: f64 = 0.1;
const DLON: f64 = 0.15;

impl Grid {
    pub fn new(n: usize) -> Self {
        let cols = (n as f64).sqrt().ceil().max(1.0) as usize;
        Self { n, cols }
    }

    pub fn name(i: usize) -> String {
        format!("cl-{i:03}")
    }

    /// Site `i`: (latitude, longitude).
    pub fn site(&self, i: usize) -> (f64, f64) {
        (
            ORIGIN.0 + (i / self.cols) as f64 * DLAT,
            ORIGIN.1 + (i % self.cols) as f64 * DLON,
        )
    }

    /// A point in site `i`'s cell: `fx`, `fy` in [-1, 1] scale 30 % of the spacing.
    pub fn point(&self, i: usize, fx: f64, fy: f64) -> (f64, f64) {
        let (lat, lon) = self.site(i);
        (lat + 0.3 * DLAT * fx, lon + 0.3 * DLON * fy)
    }

    /// A site next to `i` (the one to the right, else left, else below, else above).
    pub fn neighbour(&self, i: usize) -> usize {
        let col = i % self.cols;
        if col + 1 < self.cols && i + 1 < self.n {
            i + 1
        } else if col > 0 {
            i - 1
        } else if i + self.cols < self.n {
            i + self.cols
        } else {
            i.saturating_sub(self.cols)
        }
    }

    /// The site nearest to a point (planar, longitude scaled by cos(latitude): exact enough for
    /// telling which grid site a location names).
    pub fn nearest(&self, lat: f64, lon: f64) -> usize {
        let k = ORIGIN.0.to_radians().cos();
        (0..self.n)
            .min_by(|&a, &b| {
                let d = |i: usize| {
                    let (la, lo) = self.site(i);
                    (la - lat).powi(2) + ((lo - lon) * k).powi(2)
                };
                d(a).total_cmp(&d(b))
            })
            .unwrap_or(0)
    }

    /// The deployment document: settings (deterministic nearest-wins), the operator code, the
    /// cloudlets (`fake` platform), the app and one instance per cloudlet.
    pub fn document(&self) -> String {
        let mut doc = format!(
            r#"version: 1
region: edge-load
settings:
  very_close_km: 0
  randomize_very_close: false
operator_codes:
  - {{code: "{OPERATOR_CODE}", organization: {OPERATOR}}}
apps:
  - key: {{organization: {APP_ORG}, name: {APP_NAME}, version: "{APP_VERSION}"}}
    deployment: docker
    image_path: registry.example.net/{APP_ORG}/{APP_NAME}:{APP_VERSION}
    access_ports: "tcp:443"
cloudlets:
"#
        );
        for i in 0..self.n {
            let (lat, lon) = self.site(i);
            doc.push_str(&format!(
                "  - key: {{organization: {OPERATOR}, name: {}}}\n    location: {{latitude: \
                 {lat}, longitude: {lon}}}\n    platform_type: fake\n",
                Self::name(i)
            ));
        }
        doc.push_str("app_insts:\n");
        for i in 0..self.n {
            doc.push_str(&format!(
                "  - key: {{organization: {APP_ORG}, name: game-{0}}}\n    app: {{organization: \
                 {APP_ORG}, name: {APP_NAME}, version: \"{APP_VERSION}\"}}\n    cloudlet: \
                 {{organization: {OPERATOR}, name: {0}}}\n",
                Self::name(i)
            ));
        }
        doc
    }

    /// Cloudlet `i` as the controller holds it, with `maintenance` (for an update of that field).
    pub fn cloudlet(&self, i: usize, maintenance: MaintenanceState) -> Result<Cloudlet> {
        let (lat, lon) = self.site(i);
        Ok(Cloudlet {
            key: CloudletKey {
                organization: OPERATOR.into(),
                name: Self::name(i),
            },
            location: LatLon::new(lat, lon)?,
            platform_type: "fake".into(),
            alliance_orgs: Vec::new(),
            maintenance_state: maintenance,
            state: CloudletState::Ready,
        })
    }
}

pub fn loc((latitude, longitude): (f64, f64)) -> Loc {
    Loc {
        latitude,
        longitude,
        ..Default::default()
    }
}

pub fn register_request() -> RegisterClientRequest {
    RegisterClientRequest {
        org_name: APP_ORG.into(),
        app_name: APP_NAME.into(),
        app_vers: APP_VERSION.into(),
        ..Default::default()
    }
}

pub fn find_request(cookie: String, carrier: &str, at: (f64, f64)) -> FindCloudletRequest {
    FindCloudletRequest {
        session_cookie: cookie,
        carrier_name: carrier.into(),
        gps_location: Some(loc(at)),
        ..Default::default()
    }
}

/// The controller in this process: its API client, notify address, and the sender that stops
/// it (and the fake CRM).
pub struct Controller {
    pub api: ControllerClient<Channel>,
    pub notify: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Controller {
    /// Starts a controller on the embedded store in `dir`, on OS-chosen ports, with the CRM of
    /// the `fake` platform.
    pub async fn start(dir: &Path) -> Result<Self> {
        let store = edge_store::RedbStore::open(&dir.join("store")).await?;
        let handle = controller::server::start(Arc::new(store), "edge-load").await?;
        let (api_l, notify_l) = (
            TcpListener::bind("127.0.0.1:0").await?,
            TcpListener::bind("127.0.0.1:0").await?,
        );
        let (api, notify) = (api_l.local_addr()?, notify_l.local_addr()?);
        let (stop, stopped) = watch::channel(false);
        let mut rx = stopped.clone();
        tokio::spawn(controller::server::run(
            api_l,
            notify_l,
            handle,
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        ));
        crm::cli::spawn_fake(
            vec![notify.to_string()],
            None,
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            stopped,
        );
        let api = ControllerClient::connect(format!("http://{api}")).await?;
        Ok(Self { api, notify, stop })
    }

    /// Creates or updates the grid's region (instances waited for until READY).
    pub async fn apply(&mut self, grid: &Grid) -> Result<()> {
        let doc = edge_model::document::parse(&grid.document())?;
        edgectl::apply(&mut self.api, &doc).await?;
        Ok(())
    }

    /// Sets cloudlet `i`'s maintenance state; returns once the controller has stored it.
    pub async fn set_maintenance(
        &mut self,
        grid: &Grid,
        i: usize,
        state: MaintenanceState,
    ) -> Result<()> {
        let req = pb::UpdateRequest {
            object: Some(pb::Object::from(&Object::Cloudlet(
                grid.cloudlet(i, state)?,
            ))),
            fields: vec!["maintenance_state".into()],
        };
        edgectl::finish(self.api.update(req).await).await?;
        Ok(())
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Resident memory of a process, bytes: all of it (VmRSS), and its anonymous part (RssAnon: the
/// heap and stacks, without the binary's pages that were read in).
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub rss: u64,
    pub anon: u64,
}

/// A server child process: the DME, or `edge-load`'s own transport floor.
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub grpc: SocketAddr,
    /// The REST listener (the DME's).
    pub http: Option<SocketAddr>,
}

impl ServerProcess {
    /// Starts `edgeplane dme` subscribed to `notify`, its stderr to `log`; returns once it
    /// printed its listeners ("DME serving N apps: gRPC on ADDR, REST on ADDR").
    pub async fn dme(edgeplane: &Path, notify: SocketAddr, log: &Path) -> Result<Self> {
        let mut cmd = Command::new(edgeplane);
        cmd.args(["dme", "--controller", &notify.to_string()])
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .stdin(Stdio::null());
        Self::spawn(cmd, log).await
    }

    /// Starts `exe --serve-floor` (this binary's transport floor), which serves until its
    /// stdin closes, i.e. until this process ends.
    pub async fn floor(exe: &Path, log: &Path) -> Result<Self> {
        let mut cmd = Command::new(exe);
        cmd.arg("--serve-floor").stdin(Stdio::piped());
        Self::spawn(cmd, log).await
    }

    async fn spawn(mut cmd: Command, log: &Path) -> Result<Self> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(log)?))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.as_std()))?;
        let pid = child.id().context("the server exited at once")?;
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let parse = |line: &str, tag: &str| -> Option<SocketAddr> {
            let rest = &line[line.find(tag)? + tag.len()..];
            rest.split([',', ' ']).next()?.trim().parse().ok()
        };
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(grpc) = parse(&line, "gRPC on ") {
                    return anyhow::Ok(Some((grpc, parse(&line, "REST on "))));
                }
            }
            Ok(None)
        })
        .await;
        let (grpc, http) = match found {
            Ok(Ok(Some(addrs))) => addrs,
            Ok(Ok(None)) => bail!("the server exited before serving (log: {})", log.display()),
            Ok(Err(e)) => return Err(e),
            Err(_) => bail!(
                "the server did not serve within 30 s (log: {})",
                log.display()
            ),
        };
        // Keep its stdout drained.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            pid,
            grpc,
            http,
        })
    }

    /// Its resident memory now.
    pub fn memory(&self) -> Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let field = |name: &str| -> Result<u64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("no {name} in /proc/PID/status"))?;
            let kb: u64 = line.split_whitespace().nth(1).context("value")?.parse()?;
            Ok(kb * 1024)
        };
        Ok(Memory {
            rss: field("VmRSS:")?,
            anon: field("RssAnon:")?,
        })
    }

    /// utime + stime, seconds.
    pub fn cpu_secs(&self) -> Result<f64> {
        cpu_secs(&format!("/proc/{}/stat", self.pid))
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// utime + stime of a `/proc/.../stat` file, seconds (clock ticks of USER_HZ = 100, which is
/// what Linux reports there on every architecture this runs on).
pub fn cpu_secs(stat_path: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(stat_path)?;
    // Fields after "(comm)": state is the 3rd field of the line, utime the 14th, stime the 15th.
    let after = &stat[stat.rfind(')').context("stat")? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let (u, s): (u64, u64) = (
        f.get(11).context("utime")?.parse()?,
        f.get(12).context("stime")?.parse()?,
    );
    Ok((u + s) as f64 / 100.0)
}

/// Waits until the DME answers FindCloudlet at every site with that site's instance.
pub async fn wait_found(dme: SocketAddr, grid: &Grid, carrier: &str) -> Result<Duration> {
    let t = Instant::now();
    let deadline = t + Duration::from_secs(60);
    let mut c = MatchEngineApiClient::new(crate::callers::channel(dme).await?);
    for i in 0..grid.n {
        loop {
            let attempt = async {
                let cookie = c
                    .register_client(register_request())
                    .await?
                    .into_inner()
                    .session_cookie;
                let r = c
                    .find_cloudlet(find_request(cookie, carrier, grid.site(i)))
                    .await?
                    .into_inner();
                anyhow::Ok((r.status, r.cloudlet_location))
            };
            let last = match attempt.await {
                Ok((s, Some(l)))
                    if s == FindStatus::FindFound as i32
                        && grid.nearest(l.latitude, l.longitude) == i =>
                {
                    break;
                }
                Ok((s, l)) => format!("status {s}, location {l:?}"),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                bail!(
                    "the DME did not find cloudlet {} within 60 s (last: {last})",
                    Grid::name(i)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(t.elapsed())
}

/// The DME's edge-events counters from `GET /metrics` on its REST listener: the lines of
/// `dme_edge_streams_*`, `dme_edge_events_sent_total` and `dme_edge_pushes_total`.
pub async fn edge_counters(http: SocketAddr) -> Result<Vec<String>> {
    use http_body_util::{BodyExt, Empty};
    let tcp = tokio::net::TcpStream::connect(http).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let req = http::Request::get("/metrics")
        .header(http::header::HOST, http.to_string())
        .body(Empty::<bytes::Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "GET /metrics: {}",
        resp.status()
    );
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| {
            l.starts_with("dme_edge_streams_")
                || l.starts_with("dme_edge_events_sent_total")
                || l.starts_with("dme_edge_pushes_total")
        })
        .map(String::from)
        .collect())
}
