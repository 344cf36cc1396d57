//! `edgectl dme register|find|list`: the calls a client app makes, over the DME's gRPC API, so a
//! person can see what a phone would be told; `find --connect` then does what the phone does
//! next: resolve the FQDN, connect to the instance and exchange a line.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use dme_api::proto::{self, match_engine_api_client::MatchEngineApiClient};
use geodata::LatLon;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
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
        #[command(flatten)]
        connect: ConnectArgs,
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

/// What `find --connect` does after FindCloudlet.
#[derive(clap::Args, Debug)]
struct ConnectArgs {
    /// Then resolve the returned FQDN, connect over TCP to the instance and print its reply.
    #[arg(long)]
    connect: bool,
    /// DNS server to resolve through, IP[:PORT] (e.g. the region DNS at 127.0.0.1:5353; port
    /// 53 when omitted). Default: the system resolver.
    #[arg(long, value_name = "ADDR", requires = "connect", value_parser = parse_dns_addr)]
    dns: Option<SocketAddr>,
    /// Port to connect to. Default: the public port of the instance's first TCP port.
    #[arg(long, requires = "connect", value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// Bytes to send once connected; `\n`, `\r`, `\t`, `\\` and `\xHH` are unescaped.
    #[arg(
        long,
        value_name = "TEXT",
        requires = "connect",
        default_value = "hello\\n"
    )]
    send: String,
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
        Call::Find {
            app,
            carrier,
            at,
            connect,
        } => find(&mut client, &app.app, carrier, at, connect).await?,
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
    connect: &ConnectArgs,
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
        if connect.connect {
            bail!("--connect: FindCloudlet returned no instance to connect to");
        }
        return Ok(());
    }
    let loc = r.cloudlet_location.unwrap_or_default();
    println!("fqdn: {}", r.fqdn);
    println!("ports: {}", ports(&r.ports));
    println!("cloudlet location: {},{}", loc.latitude, loc.longitude);
    if let Ok(there) = LatLon::new(loc.latitude, loc.longitude) {
        println!("distance: {:.1} km", geodata::haversine_km(me, there));
    }
    if connect.connect {
        connect_to(&r.fqdn, &r.ports, connect).await?;
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

/// How long `--connect` waits for a TCP connection, and for a reply.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// Most reply bytes printed.
const MAX_REPLY: usize = 64 * 1024;

/// Resolves `fqdn`, connects to its first address that accepts, sends `--send`, prints the
/// reply. Each failure names its step (resolve, connect, send, no reply).
async fn connect_to(fqdn: &str, ports: &[proto::AppPort], c: &ConnectArgs) -> Result<()> {
    let payload = unescape(&c.send).map_err(|e| anyhow!("--send: {e}"))?;
    let port = match c.port {
        Some(p) => p,
        None => first_tcp_port(ports)
            .with_context(|| format!("connect: {fqdn} offers no TCP port; give --port N"))?,
    };
    let via = c
        .dns
        .map_or_else(|| "the system resolver".to_owned(), |d| d.to_string());
    let addrs = resolve(fqdn, c.dns)
        .await
        .with_context(|| format!("resolve {fqdn} through {via}"))?;
    let shown: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
    println!("resolved: {fqdn} -> {}", shown.join(", "));
    let (mut stream, target) = connect_any(&addrs, port).await?;
    println!("connected: {target}");
    stream
        .write_all(&payload)
        .await
        .with_context(|| format!("send to {target}"))?;
    let reply = read_reply(&mut stream)
        .await
        .with_context(|| format!("no reply from {target}"))?;
    println!(
        "reply: {}",
        String::from_utf8_lossy(&reply).trim_end_matches(['\r', '\n'])
    );
    Ok(())
}

/// The addresses of `fqdn`, through `dns` (that server alone) or the system resolver.
async fn resolve(fqdn: &str, dns: Option<SocketAddr>) -> Result<Vec<IpAddr>> {
    let addrs: Vec<IpAddr> = match dns {
        Some(server) => {
            use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
            let conn = |mut c: ConnectionConfig| {
                c.port = server.port();
                c
            };
            let ns = NameServerConfig::new(
                server.ip(),
                true,
                vec![conn(ConnectionConfig::udp()), conn(ConnectionConfig::tcp())],
            );
            let config = ResolverConfig::from_parts(None, Vec::new(), vec![ns]);
            let provider = hickory_resolver::net::runtime::TokioRuntimeProvider::default();
            let mut builder = hickory_resolver::Resolver::builder_with_config(config, provider);
            builder.options_mut().timeout = REPLY_TIMEOUT;
            builder.options_mut().attempts = 1;
            let resolver = builder.build().map_err(|e| anyhow!("{e}"))?;
            // Fully qualified, so no search domain is tried.
            let name = format!("{}.", fqdn.trim_end_matches('.'));
            let found = resolver.lookup_ip(name).await.map_err(|e| anyhow!("{e}"))?;
            found.iter().collect()
        }
        None => tokio::net::lookup_host((fqdn, 0))
            .await?
            .map(|a| a.ip())
            .collect(),
    };
    if addrs.is_empty() {
        bail!("no address");
    }
    Ok(addrs)
}

/// Connects to the first of `addrs` that accepts on `port` (each tried once).
async fn connect_any(addrs: &[IpAddr], port: u16) -> Result<(TcpStream, SocketAddr)> {
    let mut failures = Vec::new();
    for &ip in addrs {
        let target = SocketAddr::new(ip, port);
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
            Ok(Ok(stream)) => return Ok((stream, target)),
            Ok(Err(e)) => failures.push(format!("{target}: {e}")),
            Err(_) => failures.push(format!("{target}: timed out after {CONNECT_TIMEOUT:?}")),
        }
    }
    bail!("connect: {}", failures.join("; "))
}

/// Reads until a newline, the end of the stream, [`MAX_REPLY`] bytes or [`REPLY_TIMEOUT`];
/// fails when nothing came.
async fn read_reply(stream: &mut TcpStream) -> Result<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.contains(&b'\n') && reply.len() < MAX_REPLY {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => reply.extend_from_slice(&buf[..n]),
            Ok(Err(e)) if reply.is_empty() => return Err(e.into()),
            Ok(Err(_)) => break,
        }
    }
    if reply.is_empty() {
        bail!("nothing within {REPLY_TIMEOUT:?} (or the connection was closed)");
    }
    Ok(reply)
}

/// The public port of the first TCP port, if any is valid.
fn first_tcp_port(ports: &[proto::AppPort]) -> Option<u16> {
    ports
        .iter()
        .find(|p| p.proto == proto::LProto::Tcp as i32)
        .and_then(|p| u16::try_from(p.public_port).ok())
        .filter(|p| *p != 0)
}

/// `IP` or `IP:PORT` (`[IPv6]:PORT`) of a DNS server; port 53 when omitted.
fn parse_dns_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("expected IP or IP:PORT (e.g. 127.0.0.1:5353), got {s:?}"))
}

/// `text` with `\n`, `\r`, `\t`, `\\` and `\xHH` replaced by the bytes they stand for.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut utf8 = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let byte = (hex.len() == 2)
                    .then(|| u8::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| format!("\\x needs two hex digits, got {hex:?}"))?;
                out.push(byte);
            }
            Some(other) => return Err(format!("unknown escape \\{other}")),
            None => return Err("ends with a lone \\".into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(proto: proto::LProto, public_port: i32) -> proto::AppPort {
        proto::AppPort {
            proto: proto as i32,
            internal_port: public_port,
            public_port,
            ..Default::default()
        }
    }

    #[test]
    fn first_tcp_port_skips_udp() {
        let ports = [
            port(proto::LProto::Udp, 53),
            port(proto::LProto::Tcp, 10443),
        ];
        assert_eq!(first_tcp_port(&ports), Some(10443));
        assert_eq!(first_tcp_port(&ports[..1]), None);
        assert_eq!(first_tcp_port(&[port(proto::LProto::Tcp, 70000)]), None);
        assert_eq!(first_tcp_port(&[]), None);
    }

    #[test]
    fn dns_addresses() {
        assert_eq!(
            parse_dns_addr("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            parse_dns_addr("10.0.0.2"),
            Ok("10.0.0.2:53".parse().unwrap())
        );
        assert_eq!(parse_dns_addr("::1"), Ok("[::1]:53".parse().unwrap()));
        assert_eq!(
            parse_dns_addr("[::1]:5353"),
            Ok("[::1]:5353".parse().unwrap())
        );
        let e = parse_dns_addr("dns.example.net").unwrap_err();
        assert!(
            e.contains("IP:PORT") && e.contains("dns.example.net"),
            "{e}"
        );
    }

    fn parse(args: &[&str]) -> Result<DmeArgs, clap::Error> {
        use clap::{Args as _, FromArgMatches as _};
        let cmd = DmeArgs::augment_args(clap::Command::new("dme").no_binary_name(true));
        DmeArgs::from_arg_matches(&cmd.try_get_matches_from(args)?)
    }

    #[test]
    fn connect_flags() {
        let find = [
            "find",
            "--app",
            "O/N/1",
            "--carrier",
            "26201",
            "--lat",
            "1",
            "--lon",
            "2",
        ];
        let Call::Find { connect, .. } = parse(&find).unwrap().call else {
            panic!("not find");
        };
        assert!(!connect.connect && connect.send == "hello\\n" && connect.dns.is_none());

        let with = [
            &find[..],
            &["--connect", "--dns", "127.0.0.1:5353", "--port", "7"],
        ]
        .concat();
        let Call::Find { connect, .. } = parse(&with).unwrap().call else {
            panic!("not find");
        };
        assert_eq!(connect.dns, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(connect.port, Some(7));

        let without = [&find[..], &["--dns", "127.0.0.1"]].concat();
        assert!(parse(&without).is_err(), "--dns needs --connect");
        let bad = [&find[..], &["--connect", "--dns", "resolver"]].concat();
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains("IP:PORT"), "{e}");
    }

    #[test]
    fn send_text_is_unescaped() {
        assert_eq!(unescape("hello\\n").unwrap(), b"hello\n");
        assert_eq!(
            unescape("GET / HTTP/1.0\\r\\n\\r\\n").unwrap(),
            b"GET / HTTP/1.0\r\n\r\n"
        );
        assert_eq!(
            unescape("a\\tb\\\\c\\x00\\xff").unwrap(),
            b"a\tb\\c\x00\xff"
        );
        assert_eq!(unescape("grüß").unwrap(), "grüß".as_bytes());
        assert!(unescape("\\q").unwrap_err().contains("\\q"));
        assert!(unescape("\\x4").unwrap_err().contains("two hex digits"));
        assert!(unescape("\\xzz").unwrap_err().contains("two hex digits"));
        assert!(unescape("end\\").unwrap_err().contains("lone"));
    }
}
