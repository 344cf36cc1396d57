//! The DME over its encrypted stacks, for `tls-load` and `first-answer`: a serve mode (a child
//! process serving gRPC over HTTP/2+TLS, REST over HTTP/2+TLS and REST/gRPC over HTTP/3 on one
//! engine, printing its addresses and certificate on one line), the parent's handle on that
//! child (its CPU time from `/proc/PID/stat`, stopped when dropped), and the clients: TLS
//! configs, a REST HTTP/2 connection over TLS, a gRPC channel over TLS, HTTP/3 connections, and
//! load-engine callers for FindCloudlet over each.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use dme::cookie::KeyRing;
use dme::h3_client::H3Client;
use dme::{Dme, DmeConfig, Tables};
use dme_api::proto::FindCloudletRequest;
use edge_model::AppKey;
use edgeplane_benches::{CARRIERS, RegionSpec, World, region};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::callers::FIND_FOUND_PREFIX;
use crate::clients::{find_request, register_request};
use crate::engine::Caller;

/// The line a serving child prints once it listens: this prefix, a space, then JSON.
pub const READY: &str = "EDGEPLANE-STACKS-READY";

/// The name the served certificate is checked against (it also holds the bind IP).
pub const SERVER_NAME: &str = "localhost";

/// Options of the serve mode (`--serve`).
#[derive(clap::Args, Debug, Clone)]
pub struct ServeOpts {
    /// Address the served listeners bind (OS-chosen ports).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Instances of the one app, at world cities.
    #[arg(long, default_value_t = 10_000)]
    pub instances: usize,
    /// Tokio worker threads of the server.
    #[arg(long, default_value_t = 1)]
    pub server_workers: usize,
    /// Pin the server's threads to these CPUs (comma-separated; empty: no pinning).
    #[arg(long, value_delimiter = ',')]
    pub pin_cpus: Vec<usize>,
}

/// Pins the calling thread (and the threads it starts afterwards) to `cpus`.
pub fn pin_current(cpus: &[usize]) {
    use nix::sched::{CpuSet, sched_setaffinity};
    if cpus.is_empty() {
        return;
    }
    let mut set = CpuSet::new();
    for &c in cpus {
        let _ = set.set(c);
    }
    if let Err(e) = sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
        eprintln!("warning: cannot pin a thread to CPUs {cpus:?}: {e}");
    }
}

/// The serve mode: a synthetic region (one app with `instances` instances at world cities),
/// served over gRPC+TLS, REST+TLS (TCP) and HTTP/3 (UDP) with a fresh self-signed certificate
/// until stdin closes (the parent went away or asked to stop) or SIGINT/SIGTERM.
pub fn serve(opts: &ServeOpts) -> anyhow::Result<()> {
    pin_current(&opts.pin_cpus);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.server_workers.max(1))
        .thread_name("srv")
        .enable_all()
        .build()?;
    let world = World::load()?;
    let tables = Tables::from_deployment(&region(&world, &RegionSpec::one_app(opts.instances)), 1)?;
    let dme = Arc::new(Dme::new(
        tables,
        KeyRing::random(),
        DmeConfig::default(),
        None,
    ));
    let bind = opts.bind.to_string();
    let (cert, dev) = edge_tls::ServerCert::dev_self_signed(&[SERVER_NAME, &bind])?;
    rt.block_on(async move {
        let grpc = TcpListener::bind((opts.bind, 0)).await?;
        let rest = TcpListener::bind((opts.bind, 0)).await?;
        let udp = std::net::UdpSocket::bind((opts.bind, 0))?;
        let endpoint = dme::h3::endpoint(udp, cert.clone(), None)?;
        let addrs = json!({
            "grpc": grpc.local_addr()?.to_string(),
            "rest": rest.local_addr()?.to_string(),
            "h3": endpoint.local_addr()?.to_string(),
            "cert_pem": dev.cert_pem,
            "pid": std::process::id(),
            "instances": opts.instances,
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        // The REST listener advertises HTTP/3 (Alt-Svc) as the shipped DME does.
        let listeners = dme::server::Listeners {
            grpc,
            rest,
            tls: Some(cert),
            h3: Some(endpoint),
        };
        let served = tokio::spawn(dme::server::run(listeners, dme, until(stopped)));
        println!("{READY} {addrs}");
        use std::io::Write;
        std::io::stdout().flush()?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let stdin_closed = async {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 64];
            let mut stdin = tokio::io::stdin();
            while let Ok(n) = stdin.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        };
        tokio::select! {
            () = stdin_closed => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            let _ = served.await;
        })
        .await;
        anyhow::Ok(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// What a serving child announced.
#[derive(Clone, Debug)]
pub struct Ready {
    pub grpc: SocketAddr,
    pub rest: SocketAddr,
    pub h3: SocketAddr,
    pub cert_pem: String,
    /// The serving process (itself, even when started through `ip netns exec`).
    pub pid: u32,
    pub app: AppKey,
}

impl Ready {
    fn parse(v: &Value) -> anyhow::Result<Self> {
        let addr = |k: &str| -> anyhow::Result<SocketAddr> {
            v[k].as_str()
                .with_context(|| format!("no {k} in the ready line"))?
                .parse()
                .with_context(|| format!("{k} address"))
        };
        Ok(Self {
            grpc: addr("grpc")?,
            rest: addr("rest")?,
            h3: addr("h3")?,
            cert_pem: v["cert_pem"].as_str().context("no cert_pem")?.to_string(),
            pid: u32::try_from(v["pid"].as_u64().context("no pid")?)?,
            app: dme::fixture::app_key(),
        })
    }

    /// The served certificate, as trust roots.
    pub fn roots(&self) -> anyhow::Result<Vec<CertificateDer<'static>>> {
        Ok(CertificateDer::pem_slice_iter(self.cert_pem.as_bytes()).collect::<Result<_, _>>()?)
    }
}

/// A serving child process: stopped (stdin closed, then killed after 3 s) when dropped.
pub struct ChildServer {
    child: Child,
    stdin: Option<ChildStdin>,
    pub ready: Ready,
}

impl ChildServer {
    /// Starts `cmd` (which must run a serve mode) and waits up to `timeout` for its ready line.
    /// Its stderr goes to ours; its other stdout lines are copied to our stderr.
    pub fn spawn(mut cmd: Command, timeout: Duration) -> anyhow::Result<Self> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent && line.starts_with(READY) {
                    sent = true;
                    let _ = tx.send(line);
                } else {
                    eprintln!("[server] {line}");
                }
            }
        });
        let mut guard = Self {
            child,
            stdin,
            ready: Ready {
                grpc: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                rest: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                h3: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                cert_pem: String::new(),
                pid: 0,
                app: dme::fixture::app_key(),
            },
        };
        let line = rx.recv_timeout(timeout).map_err(|_| {
            anyhow::anyhow!("the server did not say it was ready within {timeout:?}")
        })?;
        let v: Value = serde_json::from_str(line[READY.len()..].trim())?;
        guard.ready = Ready::parse(&v)?;
        Ok(guard)
    }

    /// The serving process's CPU time so far (utime + stime from `/proc/PID/stat`, every
    /// thread, in clock ticks of 10 ms), in µs.
    pub fn cpu_us(&self) -> anyhow::Result<u64> {
        proc_cpu_us(self.ready.pid)
    }

    /// Stops the child: closes its stdin, waits up to 3 s, then kills it.
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// utime + stime of process `pid` in µs (Linux's USER_HZ is 100 on every architecture it
/// exports to user space).
pub fn proc_cpu_us(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("bad /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(f.get(i).context("short /proc stat")?.parse::<u64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) * 10_000)
}

/// A rustls client config trusting `roots`, offering `alpn`; `resumption` off makes every
/// connection a full handshake (a new client).
pub fn tls_client_config(
    roots: &[CertificateDer<'static>],
    alpn: &[&[u8]],
    resumption: bool,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone())?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(edge_tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    if !resumption {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// A new TCP connection, TLS handshake (ALPN h2) and HTTP/2 connection to `addr`.
pub async fn rest_h2(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(SERVER_NAME)?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    anyhow::ensure!(
        tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        "the server did not choose h2"
    );
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// A gRPC channel over TLS (one HTTP/2 connection, connected now) trusting `cert_pem`.
pub async fn grpc_tls(addr: SocketAddr, cert_pem: &str) -> anyhow::Result<Channel> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(cert_pem))
        .domain_name(SERVER_NAME);
    Ok(Channel::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .tcp_nodelay(true)
        .connect()
        .await?)
}

/// The FindCloudlet request as REST over any HTTP version.
pub fn find_post(body: Bytes) -> http::Request<Bytes> {
    let mut req = http::Request::new(body);
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = http::Uri::from_static("https://localhost/v1/findcloudlet");
    req.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    req
}

/// Checks a REST FindCloudlet reply.
pub fn check_find(status: http::StatusCode, body: &[u8]) -> Result<(), String> {
    if !status.is_success() {
        return Err(format!("http {}", status.as_u16()));
    }
    if body.starts_with(FIND_FOUND_PREFIX) {
        Ok(())
    } else {
        Err("http 200 with unexpected body".into())
    }
}

/// One REST FindCloudlet over an HTTP/2 connection.
pub async fn find_h2(sender: &mut SendRequest<Full<Bytes>>, body: Bytes) -> Result<(), String> {
    sender
        .ready()
        .await
        .map_err(|_| "h2 connection closed".to_string())?;
    let resp = sender
        .send_request(find_post(body).map(Full::new))
        .await
        .map_err(|e| format!("h2 send: {e}"))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|_| "h2 body".to_string())?
        .to_bytes();
    check_find(status, &body)
}

/// One REST FindCloudlet over an HTTP/3 connection.
pub async fn find_h3(client: &H3Client, body: Bytes) -> Result<(), String> {
    let reply = client
        .request(find_post(body))
        .await
        .map_err(|e| format!("h3: {e}"))?;
    check_find(reply.status, &reply.body)
}

/// REST FindCloudlet over HTTP/2+TLS for virtual clients drawn at random (many callers share
/// one connection: HTTP/2 multiplexes them).
pub struct RestH2Find {
    sender: SendRequest<Full<Bytes>>,
    bodies: Arc<[Bytes]>,
    rng: SmallRng,
}

impl RestH2Find {
    pub fn new(sender: SendRequest<Full<Bytes>>, bodies: Arc<[Bytes]>, seed: u64) -> Self {
        Self {
            sender,
            bodies,
            rng: SmallRng::seed_from_u64(seed),
        }
    }
}

impl Caller for RestH2Find {
    async fn call(&mut self) -> Result<(), String> {
        let body = self.bodies[self.rng.random_range(0..self.bodies.len())].clone();
        find_h2(&mut self.sender, body).await
    }
}

/// REST FindCloudlet over HTTP/3 (many callers share one QUIC connection).
pub struct RestH3Find {
    client: H3Client,
    bodies: Arc<[Bytes]>,
    rng: SmallRng,
}

impl RestH3Find {
    pub fn new(client: H3Client, bodies: Arc<[Bytes]>, seed: u64) -> Self {
        Self {
            client,
            bodies,
            rng: SmallRng::seed_from_u64(seed),
        }
    }
}

impl Caller for RestH3Find {
    async fn call(&mut self) -> Result<(), String> {
        let body = self.bodies[self.rng.random_range(0..self.bodies.len())].clone();
        find_h3(&self.client, body).await
    }
}

/// Registers `clients` virtual clients at world cities (over gRPC+TLS, `tasks` at a time) and
/// returns their FindCloudlet requests.
pub async fn register_clients(
    ready: &Ready,
    world: &World,
    clients: usize,
    seed: u64,
) -> anyhow::Result<Vec<FindCloudletRequest>> {
    use dme_api::proto::match_engine_api_client::MatchEngineApiClient;
    let mut rng = SmallRng::seed_from_u64(seed);
    let people: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let carrier = CARRIERS[rng.random_range(0..CARRIERS.len())];
            (carrier, world.client_point(&mut rng))
        })
        .collect();
    let ch = grpc_tls(ready.grpc, &ready.cert_pem).await?;
    let reg = register_request(&ready.app);
    let mut tasks = Vec::new();
    for part in people.chunks(people.len().div_ceil(16)) {
        let part = part.to_vec();
        let (ch, reg) = (ch.clone(), reg.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = MatchEngineApiClient::new(ch);
            let mut out = Vec::with_capacity(part.len());
            for (carrier, at) in part {
                let cookie = c
                    .register_client(reg.clone())
                    .await?
                    .into_inner()
                    .session_cookie;
                anyhow::ensure!(!cookie.is_empty(), "a registration returned no cookie");
                out.push(find_request(cookie, carrier, at.lat(), at.lon()));
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::with_capacity(people.len());
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

/// JSON bodies of `reqs`, for REST.
pub fn json_bodies(reqs: &[FindCloudletRequest]) -> anyhow::Result<Arc<[Bytes]>> {
    Ok(reqs
        .iter()
        .map(|r| serde_json::to_vec(r).map(Bytes::from))
        .collect::<Result<_, _>>()?)
}

/// gRPC FindCloudlet over HTTP/3 (tonic over [`H3Client`]; many callers share one QUIC
/// connection).
pub struct GrpcH3Find {
    client: dme_api::proto::match_engine_api_client::MatchEngineApiClient<H3Client>,
    reqs: Arc<[FindCloudletRequest]>,
    rng: SmallRng,
}

impl GrpcH3Find {
    pub fn new(client: H3Client, reqs: Arc<[FindCloudletRequest]>, seed: u64) -> Self {
        Self {
            client: dme_api::proto::match_engine_api_client::MatchEngineApiClient::with_origin(
                client,
                http::Uri::from_static("https://localhost"),
            ),
            reqs,
            rng: SmallRng::seed_from_u64(seed),
        }
    }
}

impl Caller for GrpcH3Find {
    async fn call(&mut self) -> Result<(), String> {
        use dme_api::proto::find_cloudlet_reply::FindStatus;
        let req = self.reqs[self.rng.random_range(0..self.reqs.len())].clone();
        let reply = self
            .client
            .find_cloudlet(req)
            .await
            .map_err(|s| format!("grpc {:?}", s.code()))?;
        if reply.get_ref().status == FindStatus::FindFound as i32 {
            Ok(())
        } else {
            Err(format!("reply status {}", reply.get_ref().status))
        }
    }
}
