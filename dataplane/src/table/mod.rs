//! The route table: a plain, validated value (no I/O, no clock, no sockets).
//!
//! A table maps a public listener ([`ListenerKey`]: protocol + port) to one [`Route`]: the app
//! instance behind that port and its backends. Tables are built off the hot path from a
//! [`RoutesFile`] (the YAML routes file today; the controller's notify stream later feeds the same
//! [`RoutesFile`]-shaped value or builds [`Route`]s directly) and are either valid as a whole or
//! rejected as a whole with every problem listed.

mod quic;
pub mod spec;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use quic::QuicMode;
pub use spec::RoutesFile;
use spec::{HealthSpec, ListenerDefaults, ListenerSpec, UdpSpec};

/// Transport protocol of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        })
    }
}

/// Identity of a public listener: one per protocol and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerKey {
    pub proto: Proto,
    pub port: u16,
}

impl fmt::Display for ListenerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.proto, self.port)
    }
}

/// Certificate files for TLS termination (read by the runtime, not here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Active health check parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes that bring a down backend up.
    pub rise: u32,
    /// Consecutive failures that take an up backend down.
    pub fall: u32,
    /// How UDP listeners probe their backends (TCP listeners connect).
    pub udp: UdpProbe,
}

/// A UDP backend check: send `send` on a fresh connected socket, then wait `timeout`. A port
/// unreachable (ICMP) fails it. With `expect`, only a reply containing it passes; without,
/// silence passes too (a UDP service need not answer an unknown datagram).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UdpProbe {
    pub send: Arc<[u8]>,
    pub expect: Option<Arc<[u8]>>,
}

impl UdpProbe {
    /// Largest probe payload or expected reply part.
    pub const MAX_LEN: usize = 512;
}

/// UDP flow table parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSettings {
    pub idle_timeout: Duration,
    pub max_flows: u32,
}

/// Everything the proxy needs to serve one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub key: ListenerKey,
    /// App instance label (metrics, health events).
    pub name: Arc<str>,
    pub bind: IpAddr,
    pub backends: Vec<SocketAddr>,
    pub tls: Option<TlsFiles>,
    pub proxy_protocol_v2: bool,
    pub connect_timeout: Duration,
    /// 0 = unlimited.
    pub max_conns_per_backend: u32,
    pub health_check: Option<HealthCheck>,
    pub eject_for: Duration,
    pub udp: UdpSettings,
    /// UDP only: route datagrams by the server id in their QUIC destination connection id
    /// (`None`: by client address alone).
    pub quic: Option<QuicMode>,
}

impl Route {
    /// Address the listener binds.
    pub fn bind_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.key.port)
    }
}

/// A validated route table. Cheap to clone (routes are shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    pub drain_grace: Duration,
    routes: BTreeMap<ListenerKey, Arc<Route>>,
}

/// Defaults applied when neither the listener nor the file's `defaults` say otherwise.
pub mod default {
    use std::time::Duration;
    pub const DRAIN_GRACE: Duration = Duration::from_secs(30);
    pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
    pub const MAX_CONNS_PER_BACKEND: u32 = 1024;
    pub const EJECT_FOR: Duration = Duration::from_secs(5);
    pub const HC_INTERVAL: Duration = Duration::from_secs(5);
    pub const HC_TIMEOUT: Duration = Duration::from_secs(1);
    pub const HC_RISE: u32 = 3;
    pub const HC_FALL: u32 = 3;
    pub const UDP_IDLE: Duration = Duration::from_secs(60);
    pub const UDP_MAX_FLOWS: u32 = 65_536;
}

/// Why a table was rejected. Every problem found is listed; nothing of the table is applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TableError {
    /// The text is not YAML of the routes-file shape (unknown field, wrong type, syntax).
    #[error("routes file is not valid YAML of the expected shape: {0}")]
    Syntax(String),
    /// The file parsed but some entries are invalid.
    #[error("routes table rejected ({} problem(s)): {}", .0.len(), .0.join("; "))]
    Invalid(Vec<String>),
}

impl RouteTable {
    /// An empty table (no listeners).
    pub fn empty() -> Self {
        Self {
            drain_grace: default::DRAIN_GRACE,
            routes: BTreeMap::new(),
        }
    }

    /// Parse and validate a YAML routes file.
    pub fn from_yaml(text: &str) -> Result<Self, TableError> {
        let file: RoutesFile =
            serde_saphyr::from_str(text).map_err(|e| TableError::Syntax(e.to_string()))?;
        Self::build(&file)
    }

    /// Validate a parsed routes file into a table.
    pub fn build(file: &RoutesFile) -> Result<Self, TableError> {
        let mut errs = Vec::new();
        let drain_grace = opt_duration(file.drain_grace.as_deref(), "drain_grace", &mut errs)
            .unwrap_or(default::DRAIN_GRACE);
        let mut routes = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, l) in file.listeners.iter().enumerate() {
            let mut lerrs = Vec::new();
            if let Some(route) = build_route(l, &file.defaults, &mut lerrs) {
                if !seen.insert(route.key) {
                    lerrs.push(format!("duplicate listener {}", route.key));
                } else if lerrs.is_empty() {
                    routes.insert(route.key, Arc::new(route));
                }
            }
            let what = match u16::try_from(l.port) {
                Ok(p) => format!("listeners[{i}] ({}:{p})", l.proto),
                Err(_) => format!("listeners[{i}]"),
            };
            errs.extend(lerrs.into_iter().map(|e| format!("{what}: {e}")));
        }
        if errs.is_empty() {
            Ok(Self {
                drain_grace,
                routes,
            })
        } else {
            Err(TableError::Invalid(errs))
        }
    }

    /// Build from already-typed routes (the future notify subscriber's path).
    pub fn from_routes(
        drain_grace: Duration,
        routes: impl IntoIterator<Item = Route>,
    ) -> Result<Self, TableError> {
        let mut map = BTreeMap::new();
        let mut errs = Vec::new();
        for r in routes {
            if r.backends.is_empty() {
                errs.push(format!("{}: no backends", r.key));
            }
            if r.key.port == 0 {
                errs.push(format!("{}: port 0", r.key));
            }
            if let Some(q) = &r.quic
                && (r.key.proto != Proto::Udp || q.servers().any(|(_, b)| b >= r.backends.len()))
            {
                errs.push(format!(
                    "{}: quic mode on tcp or for a missing backend",
                    r.key
                ));
            }
            if map.insert(r.key, Arc::new(r.clone())).is_some() {
                errs.push(format!("duplicate listener {}", r.key));
            }
        }
        if errs.is_empty() {
            Ok(Self {
                drain_grace,
                routes: map,
            })
        } else {
            Err(TableError::Invalid(errs))
        }
    }

    pub fn get(&self, key: &ListenerKey) -> Option<&Arc<Route>> {
        self.routes.get(key)
    }

    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes.values()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// What changes when going from `self` to `next`.
    pub fn diff<'a>(&'a self, next: &'a Self) -> TableDiff<'a> {
        let mut d = TableDiff::default();
        for (k, r) in &self.routes {
            match next.routes.get(k) {
                None => d.removed.push(r),
                Some(n) if n == r => d.unchanged.push(n),
                Some(n) => d.changed.push((r, n)),
            }
        }
        for (k, n) in &next.routes {
            if !self.routes.contains_key(k) {
                d.added.push(n);
            }
        }
        d
    }
}

/// The result of [`RouteTable::diff`].
#[derive(Debug, Default)]
pub struct TableDiff<'a> {
    pub added: Vec<&'a Arc<Route>>,
    pub removed: Vec<&'a Arc<Route>>,
    /// `(old, new)` pairs for listeners kept with different settings.
    pub changed: Vec<(&'a Arc<Route>, &'a Arc<Route>)>,
    pub unchanged: Vec<&'a Arc<Route>>,
}

fn build_route(l: &ListenerSpec, d: &ListenerDefaults, errs: &mut Vec<String>) -> Option<Route> {
    let proto = match l.proto.as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => {
            errs.push(format!("proto must be tcp or udp, got {other:?}"));
            return None;
        }
    };
    let port = match u16::try_from(l.port) {
        Ok(p) if p != 0 => p,
        _ => {
            errs.push(format!("port must be 1..=65535, got {}", l.port));
            return None;
        }
    };
    let key = ListenerKey { proto, port };
    let bind = match l.bind.as_ref().or(d.bind.as_ref()) {
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(s) => s.parse().unwrap_or_else(|_| {
            errs.push(format!("bind is not an IP address: {s:?}"));
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        }),
    };
    let mut backends = Vec::with_capacity(l.backends.len());
    for b in &l.backends {
        match b.parse::<SocketAddr>() {
            Ok(a) if a.port() == 0 => errs.push(format!("backend {b:?} has port 0")),
            Ok(a) if backends.contains(&a) => errs.push(format!("backend {b} listed twice")),
            Ok(a) => backends.push(a),
            Err(_) => errs.push(format!("backend is not ip:port: {b:?}")),
        }
    }
    if l.backends.is_empty() {
        errs.push("no backends".into());
    }
    let tls = l.tls.as_ref().map(|t| TlsFiles {
        cert: t.cert.clone().into(),
        key: t.key.clone().into(),
    });
    if tls.is_some() && proto != Proto::Tcp {
        errs.push("tls is only allowed on tcp listeners".into());
    }
    if let Some(t) = &l.tls
        && (t.cert.is_empty() || t.key.is_empty())
    {
        errs.push("tls needs both cert and key paths".into());
    }
    let proxy_protocol_v2 = match l.proxy_protocol.as_deref() {
        None | Some("none") => false,
        Some("v2") if proto == Proto::Tcp => true,
        Some("v2") => {
            errs.push("proxy_protocol is only supported on tcp listeners".into());
            false
        }
        Some(o) => {
            errs.push(format!("proxy_protocol must be v2 or none, got {o:?}"));
            false
        }
    };
    let connect_timeout = opt_duration(
        l.connect_timeout
            .as_ref()
            .or(d.connect_timeout.as_ref())
            .map(String::as_str),
        "connect_timeout",
        errs,
    )
    .unwrap_or(default::CONNECT_TIMEOUT);
    if connect_timeout.is_zero() {
        errs.push("connect_timeout must be > 0".into());
    }
    let eject_for = opt_duration(
        l.eject_for
            .as_ref()
            .or(d.eject_for.as_ref())
            .map(String::as_str),
        "eject_for",
        errs,
    )
    .unwrap_or(default::EJECT_FOR);
    let max_conns_per_backend = l
        .max_conns_per_backend
        .or(d.max_conns_per_backend)
        .unwrap_or(default::MAX_CONNS_PER_BACKEND);
    if proto == Proto::Tcp
        && let Some(h) = &l.health_check
        && (h.send.is_some() || h.expect.is_some())
    {
        errs.push("health_check send/expect apply to udp listeners only".into());
    }
    let health_check = build_health(l.health_check.as_ref().or(d.health_check.as_ref()), errs);
    let udp = build_udp(l.udp.as_ref(), d.udp.as_ref(), errs);
    if l.udp.is_some() && proto != Proto::Udp {
        errs.push("udp settings on a tcp listener".into());
    }
    let quic = match &l.quic {
        Some(_) if proto != Proto::Udp => {
            errs.push("quic is only allowed on udp listeners".into());
            None
        }
        Some(q) => quic::build(q, &backends, errs),
        None => None,
    };
    let name: Arc<str> = match &l.name {
        Some(n) if n.is_empty() || n.chars().any(|c| c.is_control() || c == '"' || c == '\\') => {
            errs.push(format!(
                "name must be non-empty without quotes or control chars: {n:?}"
            ));
            key.to_string().into()
        }
        Some(n) => n.as_str().into(),
        None => key.to_string().into(),
    };
    Some(Route {
        key,
        name,
        bind,
        backends,
        tls,
        proxy_protocol_v2,
        connect_timeout,
        max_conns_per_backend,
        health_check,
        eject_for,
        udp,
        quic,
    })
}

fn build_health(h: Option<&HealthSpec>, errs: &mut Vec<String>) -> Option<HealthCheck> {
    let h = h?;
    if h.enabled == Some(false) {
        return None;
    }
    let interval = opt_duration(h.interval.as_deref(), "health_check.interval", errs)
        .unwrap_or(default::HC_INTERVAL);
    let timeout = opt_duration(h.timeout.as_deref(), "health_check.timeout", errs)
        .unwrap_or(default::HC_TIMEOUT);
    let rise = h.rise.unwrap_or(default::HC_RISE);
    let fall = h.fall.unwrap_or(default::HC_FALL);
    if interval.is_zero() || timeout.is_zero() {
        errs.push("health_check interval and timeout must be > 0".into());
    }
    if timeout > interval {
        errs.push("health_check timeout must not exceed interval".into());
    }
    if rise == 0 || fall == 0 {
        errs.push("health_check rise and fall must be >= 1".into());
    }
    let send = h.send.as_deref().unwrap_or_default().as_bytes();
    let expect = h.expect.as_deref().map(str::as_bytes);
    if send.len() > UdpProbe::MAX_LEN || expect.is_some_and(|e| e.len() > UdpProbe::MAX_LEN) {
        errs.push(format!(
            "health_check send and expect must be at most {} bytes",
            UdpProbe::MAX_LEN
        ));
    }
    if expect.is_some_and(<[u8]>::is_empty) {
        errs.push("health_check expect must not be empty (leave it out to accept silence)".into());
    }
    Some(HealthCheck {
        interval,
        timeout,
        rise,
        fall,
        udp: UdpProbe {
            send: send.into(),
            expect: expect.map(Into::into),
        },
    })
}

fn build_udp(l: Option<&UdpSpec>, d: Option<&UdpSpec>, errs: &mut Vec<String>) -> UdpSettings {
    let idle = l
        .and_then(|u| u.idle_timeout.as_deref())
        .or(d.and_then(|u| u.idle_timeout.as_deref()));
    let idle_timeout = opt_duration(idle, "udp.idle_timeout", errs).unwrap_or(default::UDP_IDLE);
    let max_flows = l
        .and_then(|u| u.max_flows)
        .or(d.and_then(|u| u.max_flows))
        .unwrap_or(default::UDP_MAX_FLOWS);
    if idle_timeout.is_zero() || max_flows == 0 {
        errs.push("udp idle_timeout and max_flows must be > 0".into());
    }
    UdpSettings {
        idle_timeout,
        max_flows,
    }
}

fn opt_duration(s: Option<&str>, field: &str, errs: &mut Vec<String>) -> Option<Duration> {
    let s = s?;
    match parse_duration(s) {
        Some(d) => Some(d),
        None => {
            errs.push(format!(
                "{field}: not a duration (use e.g. 250ms, 5s, 2m): {s:?}"
            ));
            None
        }
    }
}

/// Parse `250ms`, `5s`, `2m`, `1h` (a whole number and a unit).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
