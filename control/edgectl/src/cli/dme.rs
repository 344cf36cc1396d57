//! `edgectl dme register|find|list`: the calls a client app makes, over the DME's gRPC API, so a
//! person can see what a phone would be told.

use anyhow::{Context, Result, bail};
use dme_api::proto::{self, match_engine_api_client::MatchEngineApiClient};
use geodata::LatLon;
use tonic::transport::Channel;

use super::{channel, status};

/// Flags of `edgectl dme`.
#[derive(clap::Args, Debug)]
pub struct DmeArgs {
    /// DME gRPC address.
    #[arg(
        long,
        global = true,
        env = "EDGECTL_DME_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    dme_addr: String,
    #[command(subcommand)]
    call: Call,
}

#[derive(clap::Subcommand, Debug)]
enum Call {
    /// RegisterClient: prints the session cookie.
    Register {
        #[command(flatten)]
        app: AppArg,
    },
    /// RegisterClient then FindCloudlet: the instance a phone at (lat, lon) on CARRIER gets.
    Find {
        #[command(flatten)]
        app: AppArg,
        /// Carrier name (MCC+MNC, e.g. 26201) or operator organization.
        #[arg(long)]
        carrier: String,
        #[command(flatten)]
        at: Position,
    },
    /// RegisterClient then GetAppInstList: the instances near (lat, lon), nearest first.
    List {
        #[command(flatten)]
        app: AppArg,
        /// Carrier name; empty: any.
        #[arg(long, default_value = "")]
        carrier: String,
        #[command(flatten)]
        at: Position,
        /// At most this many cloudlets (0: the DME's default).
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
}

#[derive(clap::Args, Debug)]
struct AppArg {
    /// The app: ORGANIZATION/NAME/VERSION, e.g. NimbusGames/arena-shooter/2.3.
    #[arg(long)]
    app: String,
}

#[derive(clap::Args, Debug)]
struct Position {
    /// Latitude of the device, degrees.
    #[arg(long, allow_hyphen_values = true)]
    lat: f64,
    /// Longitude of the device, degrees.
    #[arg(long, allow_hyphen_values = true)]
    lon: f64,
}

impl Position {
    fn checked(&self) -> Result<LatLon> {
        LatLon::new(self.lat, self.lon).context("--lat/--lon")
    }
    fn loc(&self) -> proto::Loc {
        proto::Loc {
            latitude: self.lat,
            longitude: self.lon,
            ..Default::default()
        }
    }
}

pub async fn run(args: &DmeArgs) -> Result<()> {
    let mut client = MatchEngineApiClient::new(channel(&args.dme_addr, "DME").await?);
    match &args.call {
        Call::Register { app } => {
            let cookie = register(&mut client, &app.app).await?;
            println!("session_cookie: {cookie}");
        }
        Call::Find { app, carrier, at } => find(&mut client, &app.app, carrier, at).await?,
        Call::List {
            app,
            carrier,
            at,
            limit,
        } => list(&mut client, &app.app, carrier, at, *limit).await?,
    }
    Ok(())
}

async fn register(client: &mut MatchEngineApiClient<Channel>, app: &str) -> Result<String> {
    let parts: Vec<&str> = app.split('/').collect();
    let [org, name, version] = parts[..] else {
        bail!(
            "--app `{app}`: expected ORGANIZATION/NAME/VERSION, e.g. NimbusGames/arena-shooter/2.3"
        );
    };
    let reply = client
        .register_client(proto::RegisterClientRequest {
            org_name: org.into(),
            app_name: name.into(),
            app_vers: version.into(),
            ..Default::default()
        })
        .await
        .map_err(|s| status(&s))
        .with_context(|| format!("register {app}"))?
        .into_inner();
    Ok(reply.session_cookie)
}

/// `tcp:443->443 tls` for a DME AppPort.
fn port(p: &proto::AppPort) -> String {
    let name = proto::LProto::try_from(p.proto).map_or("?", |l| l.as_str_name());
    let proto_name = name.trim_start_matches("L_PROTO_").to_ascii_lowercase();
    let mut s = format!("{proto_name}:{}->{}", p.internal_port, p.public_port);
    if p.tls {
        s.push_str(" tls");
    }
    s
}

fn ports(ps: &[proto::AppPort]) -> String {
    ps.iter().map(port).collect::<Vec<_>>().join(", ")
}

async fn find(
    client: &mut MatchEngineApiClient<Channel>,
    app: &str,
    carrier: &str,
    at: &Position,
) -> Result<()> {
    let me = at.checked()?;
    let session_cookie = register(client, app).await?;
    let r = client
        .find_cloudlet(proto::FindCloudletRequest {
            session_cookie,
            carrier_name: carrier.into(),
            gps_location: Some(at.loc()),
            ..Default::default()
        })
        .await
        .map_err(|s| status(&s))
        .context("find")?
        .into_inner();
    if r.status != proto::find_cloudlet_reply::FindStatus::FindFound as i32 {
        println!("not found: no usable instance of {app} for carrier {carrier} near {me}");
        return Ok(());
    }
    let loc = r.cloudlet_location.unwrap_or_default();
    println!("fqdn: {}", r.fqdn);
    println!("ports: {}", ports(&r.ports));
    println!("cloudlet location: {},{}", loc.latitude, loc.longitude);
    if let Ok(there) = LatLon::new(loc.latitude, loc.longitude) {
        println!("distance: {:.1} km", geodata::haversine_km(me, there));
    }
    Ok(())
}

async fn list(
    client: &mut MatchEngineApiClient<Channel>,
    app: &str,
    carrier: &str,
    at: &Position,
    limit: u32,
) -> Result<()> {
    at.checked()?;
    let session_cookie = register(client, app).await?;
    let r = client
        .get_app_inst_list(proto::AppInstListRequest {
            session_cookie,
            carrier_name: carrier.into(),
            gps_location: Some(at.loc()),
            limit,
            ..Default::default()
        })
        .await
        .map_err(|s| status(&s))
        .context("list")?
        .into_inner();
    if r.cloudlets.is_empty() {
        println!("no instances of {app} near {},{}", at.lat, at.lon);
    }
    for c in &r.cloudlets {
        let loc = c.gps_location.unwrap_or_default();
        println!(
            "{} ({}) at {},{}: {:.1} km",
            c.cloudlet_name, c.carrier_name, loc.latitude, loc.longitude, c.distance
        );
        for i in &c.appinstances {
            println!("  {}  {}", i.fqdn, ports(&i.ports));
        }
    }
    Ok(())
}
