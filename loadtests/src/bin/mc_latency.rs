//! `mc-latency`: what the MC adds to an authorised region call. One process, everything on
//! 127.0.0.1 with OS-chosen ports: a region PKI in a temp dir, a controller (embedded store,
//! its API over mutual TLS) holding one app, and an MC (embedded store, HTTPS on its `mc`
//! certificate, dialling the controller with it) where user `dev` manages organisation
//! `devA`. The same `ShowApp` of that one app is timed, one call at a time on one kept-alive
//! connection per path, `--count` times per path after `--warmup` calls, in rounds whose order
//! rotates:
//!
//! - `direct`: gRPC Show straight at the controller with the MC's certificate (the floor);
//! - `mc-grpc`: gRPC Show at the MC's gRPC face with a bearer token (edgectl's path);
//! - `mc-rest`: `POST /api/v1/auth/ctrl/ShowApp` over HTTP/1.1+TLS with a bearer token.
//!
//! Prints p50/p99/mean per path (HDR histogram, µs) and each MC path's added latency (its
//! percentile minus the direct one). Bounded by `--count` and `--max-secs`; stops by itself.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use edge_api::pb::{self, controller_client::ControllerClient};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

#[derive(Parser, Debug)]
#[command(
    name = "mc-latency",
    about = "Added latency of an authorised ctrl call through the MC"
)]
struct Args {
    /// Timed calls per path.
    #[arg(long, default_value_t = 3000)]
    count: u64,
    /// Untimed calls per path first (connections, caches).
    #[arg(long, default_value_t = 300)]
    warmup: u64,
    /// Rounds the count is split into (the path order rotates each round).
    #[arg(long, default_value_t = 6)]
    rounds: u64,
    /// Stop after this long whatever the count.
    #[arg(long, default_value_t = 120)]
    max_secs: u64,
}

const PATHS: [&str; 3] = ["direct", "mc-grpc", "mc-rest"];

fn main() -> Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// One way of calling the same ShowApp.
enum Caller {
    Grpc(ControllerClient<tonic::transport::Channel>),
    Mc(edgectl::transport::Client),
    Rest(hyper::client::conn::http1::SendRequest<Full<Bytes>>, String),
}

fn show_req() -> pb::ShowRequest {
    pb::ShowRequest {
        kind: pb::ObjectKind::App as i32,
        key: None,
        organization: "devA".into(),
    }
}

impl Caller {
    async fn call(&mut self) -> Result<()> {
        match self {
            Caller::Grpc(c) => drain(c.show(show_req()).await?.into_inner()).await,
            Caller::Mc(c) => drain(c.show(show_req()).await?.into_inner()).await,
            Caller::Rest(send, token) => {
                let body = r#"{"region":"eu","app":{"key":{"organization":"devA"}}}"#;
                let req = hyper::Request::post("/api/v1/auth/ctrl/ShowApp")
                    .header("host", "127.0.0.1")
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(body.as_bytes())))?;
                // The connection is ready again once the last response was read to its end.
                send.ready().await?;
                let resp = send.send_request(req).await?;
                let status = resp.status();
                let bytes = resp.into_body().collect().await?.to_bytes();
                anyhow::ensure!(status == 200 && bytes.starts_with(b"[{"), "REST: {status}");
                Ok(())
            }
        }
    }
}

async fn drain(mut s: tonic::Streaming<pb::Object>) -> Result<()> {
    let mut n = 0;
    while s.message().await?.is_some() {
        n += 1;
    }
    anyhow::ensure!(n == 1, "expected the one app, got {n}");
    Ok(())
}

async fn run(args: Args) -> Result<()> {
    let setup = setup::Setup::start().await?;
    let mut callers = vec![
        Caller::Grpc(setup.direct().await?),
        Caller::Mc(setup.mc_grpc().await?),
        Caller::Rest(setup.mc_rest().await?, setup.token.clone()),
    ];
    for c in &mut callers {
        for _ in 0..args.warmup {
            c.call().await?;
        }
    }
    let mut hist: Vec<Histogram<u64>> = (0..3)
        .map(|_| Histogram::new_with_bounds(1, 10_000_000, 3))
        .collect::<Result<_, _>>()?;
    let deadline = Instant::now() + Duration::from_secs(args.max_secs);
    let per_round = args.count.div_ceil(args.rounds.max(1));
    'rounds: for round in 0..args.rounds.max(1) {
        for i in 0..3 {
            let p = (i + round as usize) % 3;
            for _ in 0..per_round {
                if Instant::now() > deadline {
                    eprintln!("--max-secs reached: stopping early");
                    break 'rounds;
                }
                let t = Instant::now();
                callers[p].call().await?;
                hist[p].record(t.elapsed().as_micros().max(1) as u64)?;
            }
        }
    }
    report(&hist);
    Ok(())
}

fn report(hist: &[Histogram<u64>]) {
    println!("ShowApp of one app, one call at a time (µs)");
    println!(
        "{:<9} {:>7} {:>7} {:>7} {:>8} {:>13} {:>13}",
        "path", "calls", "p50", "p99", "mean", "added p50", "added p99"
    );
    let (d50, d99) = (
        hist[0].value_at_quantile(0.5),
        hist[0].value_at_quantile(0.99),
    );
    for (name, h) in PATHS.iter().zip(hist) {
        let (p50, p99) = (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
        let added = |v: u64, d: u64| v as i64 - d as i64;
        println!(
            "{name:<9} {:>7} {p50:>7} {p99:>7} {:>8.0} {:>13} {:>13}",
            h.len(),
            h.mean(),
            added(p50, d50),
            added(p99, d99)
        );
    }
}

mod setup {
    //! The PKI, the controller and the MC, in this process.

    use super::*;
    use edge_tls::{PeerPolicy, Role};
    use mc::model::{Controller, Grant, Org, OrgType, User};
    use mc::server::region::Regions;
    use mc::server::state::{McConfig, McState};
    use mc::store::McStore;

    pub struct Setup {
        _dir: tempfile::TempDir,
        pub ca: std::path::PathBuf,
        pub api: std::net::SocketAddr,
        pub mc: std::net::SocketAddr,
        pub token: String,
        mc_mtls: edge_tls::cli::Mtls,
    }

    impl Setup {
        pub async fn start() -> Result<Setup> {
            let dir = tempfile::tempdir()?;
            let pki = dir.path().join("pki");
            edge_tls::pki::init(&pki, "eu", false)?;
            for role in [Role::Controller, Role::Mc] {
                edge_tls::pki::issue(&pki, &edge_tls::LeafRequest::new(role, "t"))?;
            }
            let load = |role| {
                edge_tls::cli::MtlsArgs::from_pki_dir(&pki, role, "t")
                    .load()?
                    .context("mtls files")
            };
            let (ctl_mtls, mc_mtls) = (load(Role::Controller)?, load(Role::Mc)?);
            let api = start_controller(dir.path(), &ctl_mtls).await?;
            let mut s = Setup {
                ca: pki.join("ca.pem"),
                api,
                mc: api,
                token: String::new(),
                mc_mtls,
                _dir: dir,
            };
            s.create_app().await?;
            s.start_mc().await?;
            Ok(s)
        }

        fn mc_client(&self) -> Result<edge_tls::MtlsClient> {
            Ok(self
                .mc_mtls
                .client(PeerPolicy::roles(&[Role::Controller]), &[b"h2"])?)
        }

        pub async fn direct(&self) -> Result<ControllerClient<tonic::transport::Channel>> {
            let ep = edge_tls::grpc::endpoint(&self.api.to_string(), Duration::from_secs(5))?;
            let ch = edge_tls::grpc::channel(ep, Some(&self.mc_client()?)).await?;
            Ok(ControllerClient::new(ch))
        }

        async fn create_app(&self) -> Result<()> {
            let app = pb::App {
                key: Some(pb::AppKey {
                    organization: "devA".into(),
                    name: "app".into(),
                    version: "1".into(),
                }),
                deployment: pb::DeploymentKind::Docker as i32,
                image_path: "nginx".into(),
                access_ports: "tcp:80".into(),
                ..Default::default()
            };
            let req = pb::CreateRequest {
                object: Some(pb::Object {
                    obj: Some(pb::object::Obj::App(app)),
                }),
            };
            edgectl::finish(self.direct().await?.create(req).await).await?;
            Ok(())
        }

        async fn start_mc(&mut self) -> Result<()> {
            let store: Arc<dyn McStore> =
                Arc::new(mc::store::RedbStore::open(self._dir.path().join("mc")).await?);
            seed(store.as_ref(), self.api).await?;
            let keys = mc::auth::SigningKeys::generate()?;
            let regions = Regions::new(store.clone(), Some(self.mc_client()?));
            let state = McState::new(store, regions, keys, McConfig::default())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let claims =
                mc::auth::token::Claims::user("dev", McState::now_secs(), &state.config.tokens);
            self.token = state.keys.sign(&claims);
            let tls = edge_tls::server_config(self.mc_mtls.cert.clone(), &[b"h2", b"http/1.1"])?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            self.mc = listener.local_addr()?;
            tokio::spawn(mc::server::run(
                listener,
                Some(tls),
                state,
                std::future::pending(),
            ));
            Ok(())
        }

        pub async fn mc_grpc(&self) -> Result<edgectl::transport::Client> {
            let url = format!("https://{}", self.mc);
            let ch = edgectl::transport::mc_channel(&url, Some(&self.ca))
                .await
                .map_err(anyhow::Error::msg)?;
            let auth = edgectl::transport::Auth::new(Some(&self.token), Some("eu"))
                .map_err(anyhow::Error::msg)?;
            Ok(ControllerClient::with_interceptor(ch, auth))
        }

        pub async fn mc_rest(
            &self,
        ) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
            let config = edgectl::transport::tls_config(&self.ca, &[b"http/1.1"])
                .map_err(anyhow::Error::msg)?;
            let io = edgectl::transport::tls_connect(config, "127.0.0.1", self.mc.port())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
            tokio::spawn(conn);
            Ok(send)
        }
    }

    /// User `dev`, DeveloperManager of `devA`, and region `eu` at `api`.
    async fn seed(store: &dyn McStore, api: std::net::SocketAddr) -> Result<()> {
        store
            .create_user(&User {
                name: "dev".into(),
                email: "dev@example.com".into(),
                passhash: "unused: the token is signed directly".into(),
                locked: false,
                failed_logins: 0,
                last_failed_login: 0,
                created_at: 0,
            })
            .await?;
        store
            .create_org(&Org {
                name: "devA".into(),
                org_type: OrgType::Developer,
                delete_in_progress: false,
                created_at: 0,
            })
            .await?;
        store
            .add_grant(&Grant {
                subject: "dev".into(),
                org: "devA".into(),
                role: "DeveloperManager".into(),
            })
            .await?;
        store
            .create_controller(&Controller {
                region: "eu".into(),
                address: api.to_string(),
                notify_addr: String::new(),
            })
            .await?;
        Ok(())
    }

    /// A controller on the embedded store in `dir`, its API over mutual TLS.
    async fn start_controller(
        dir: &std::path::Path,
        mtls: &edge_tls::cli::Mtls,
    ) -> Result<std::net::SocketAddr> {
        let store = Arc::new(edge_store::RedbStore::open(dir.join("ctl")).await?);
        let mut handle = controller::server::start(store, "eu").await?;
        handle.tls = Some(controller::server::ControllerTls::new(mtls)?);
        let api = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let notify = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = api.local_addr()?;
        tokio::spawn(controller::server::run(
            api,
            notify,
            handle,
            std::future::pending(),
        ));
        Ok(addr)
    }
}
