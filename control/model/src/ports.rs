//! The access-ports grammar of `App.access_ports` (control-plane reference §4.5):
//! `proto:port[-endport][:annotation[=value]]*`, entries separated by commas.
//!
//! - `proto` is `tcp`, `udp` or `http` (case-insensitive, as upstream lower-cases it).
//! - Annotations: `tls` (tcp only), `nginx` (udp only), `maxpktsize=N` (udp only, 1500–50000),
//!   and edgexr's `intvis`, `id=`, `pathprefix=`, `svcname=`, `hostprefix=`, which are accepted
//!   but not stored because [`AppPort`] (the DME wire message) has no field for them.
//! - Ports are 1–65535; a range needs end > start; at most 1000 TCP and 10000 UDP ports per app;
//!   `tcp:22`, `tcp:53`, `tcp:20800` and `udp:53` are reserved for the platform.
//! - `http` runs over TCP, so it counts as TCP for overlaps, reservations and limits.
//!
//! Parsing never panics: any input yields ports or a [`PortsError`] naming the entry.

use std::fmt;
use std::str::FromStr;

use crate::enums::ParseEnumError;

/// Layer-4 protocol of a port (DME wire `LProto`; discriminants are the wire values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(i32)]
pub enum LProto {
    #[default]
    Unknown = 0,
    Tcp = 1,
    Udp = 2,
    Http = 3,
}

/// A port of an app, and for an instance its public port (DME wire `AppPort`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct AppPort {
    pub proto: LProto,
    pub internal_port: i32,
    /// Public port; parsing sets it to `internal_port` (the standalone/DME default), and the
    /// controller overwrites it when it allocates a port on a shared root LB.
    pub public_port: i32,
    pub fqdn_prefix: String,
    /// Last port of a range (inclusive); 0 for a single port.
    pub end_port: i32,
    pub tls: bool,
    pub nginx: bool,
    pub max_pkt_size: i64,
}

/// An access-ports entry that was rejected, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("access port `{entry}`: {reason}")]
pub struct PortsError {
    /// The offending entry as written (trimmed).
    pub entry: String,
    pub reason: PortsErrorKind,
}

/// Why an access-ports entry was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortsErrorKind {
    #[error("empty entry")]
    Empty,
    #[error("expected proto:port[-endport][:annotation...]")]
    MissingPort,
    #[error("unknown protocol `{0}`; expected tcp, udp or http")]
    UnknownProto(String),
    #[error("port `{0}` is not a number in 1-65535")]
    BadPort(String),
    #[error("end port {end} must be greater than start port {start}")]
    BadRange { start: i32, end: i32 },
    #[error(
        "unknown annotation `{0}`; expected tls, nginx, maxpktsize, intvis, id, pathprefix, svcname or hostprefix"
    )]
    UnknownAnnotation(String),
    #[error("annotation `{0}` needs a value (`{0}=...`)")]
    MissingValue(String),
    #[error("annotation `{0}` takes no value")]
    UnexpectedValue(String),
    #[error("annotation `{0}` is given twice")]
    DuplicateAnnotation(String),
    #[error("annotation `{annotation}` is only valid for {allowed} ports")]
    WrongProto {
        annotation: &'static str,
        allowed: &'static str,
    },
    #[error("maxpktsize `{0}` is not a number in 1500-50000")]
    BadMaxPktSize(String),
    #[error("{proto}:{port} is reserved for the platform")]
    Reserved { proto: &'static str, port: i32 },
    #[error("overlaps `{0}`")]
    Overlap(String),
    #[error("more than {limit} {proto} ports in one app")]
    TooManyPorts { proto: &'static str, limit: u32 },
}

/// Most TCP (and HTTP) ports one app may expose (upstream limit).
pub const MAX_TCP_PORTS: u32 = 1000;
/// Most UDP ports one app may expose (upstream limit).
pub const MAX_UDP_PORTS: u32 = 10000;
/// Smallest `maxpktsize` accepted.
pub const MIN_MAX_PKT_SIZE: i64 = 1500;
/// Largest `maxpktsize` accepted.
pub const MAX_MAX_PKT_SIZE: i64 = 50000;

/// Ports the platform itself uses on a root LB (ssh, DNS, the CRM's notify listener).
const RESERVED: [(PortClass, i32); 4] = [
    (PortClass::Tcp, 22),
    (PortClass::Tcp, 20800),
    (PortClass::Udp, 53),
    (PortClass::Tcp, 53),
];

/// Transport a port occupies: HTTP shares TCP's port space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PortClass {
    Tcp,
    Udp,
}

// === impl LProto ===

impl LProto {
    /// Every value, in wire order.
    pub const ALL: &'static [Self] = &[Self::Unknown, Self::Tcp, Self::Udp, Self::Http];

    /// The lower-case form used in access ports and documents (`tcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Http => "http",
        }
    }

    /// The protobuf enum value name (`L_PROTO_TCP`).
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::Unknown => "L_PROTO_UNKNOWN",
            Self::Tcp => "L_PROTO_TCP",
            Self::Udp => "L_PROTO_UDP",
            Self::Http => "L_PROTO_HTTP",
        }
    }

    /// The value for a wire discriminant; `None` for a value this build does not know.
    pub fn from_wire(value: i32) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| *v as i32 == value)
    }

    fn class(self) -> Option<PortClass> {
        match self {
            Self::Tcp | Self::Http => Some(PortClass::Tcp),
            Self::Udp => Some(PortClass::Udp),
            Self::Unknown => None,
        }
    }
}

/// Accepts `tcp`, the wire name without prefix `TCP`, and the full wire name `L_PROTO_TCP`.
impl FromStr for LProto {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.strip_prefix("L_PROTO_").unwrap_or(s);
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s || v.as_str().to_ascii_uppercase() == upper)
            .ok_or_else(|| {
                ParseEnumError::new("LProto", s, Self::ALL.iter().map(|v| v.as_str()), "")
            })
    }
}

impl fmt::Display for LProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl AppPort ===

impl AppPort {
    /// Last port the entry covers (the port itself when it is not a range).
    pub fn last_port(&self) -> i32 {
        if self.end_port > self.internal_port {
            self.end_port
        } else {
            self.internal_port
        }
    }

    /// Number of ports the entry covers.
    pub fn count(&self) -> u32 {
        u32::try_from(self.last_port() - self.internal_port + 1).unwrap_or(0)
    }
}

/// Formats one port in access-ports syntax (without a public port, which the grammar lacks).
impl fmt::Display for AppPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.proto, self.internal_port)?;
        if self.end_port != 0 {
            write!(f, "-{}", self.end_port)?;
        }
        if self.tls {
            f.write_str(":tls")?;
        }
        if self.nginx {
            f.write_str(":nginx")?;
        }
        if self.max_pkt_size != 0 {
            write!(f, ":maxpktsize={}", self.max_pkt_size)?;
        }
        Ok(())
    }
}

// === parsing ===

/// Parses an access-ports string. An empty (or blank) string means no ports.
pub fn parse_access_ports(s: &str) -> Result<Vec<AppPort>, PortsError> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut ports = Vec::new();
    let mut entries = Vec::new();
    let (mut tcp, mut udp) = (0u32, 0u32);
    for raw in s.split(',') {
        let entry = raw.trim();
        let fail = |reason| PortsError {
            entry: entry.to_owned(),
            reason,
        };
        let port = parse_entry(entry).map_err(fail)?;
        let (count, limit, proto) = match port.proto.class() {
            Some(PortClass::Udp) => (&mut udp, MAX_UDP_PORTS, "UDP"),
            _ => (&mut tcp, MAX_TCP_PORTS, "TCP"),
        };
        *count += port.count();
        if *count > limit {
            return Err(fail(PortsErrorKind::TooManyPorts { proto, limit }));
        }
        ports.push(port);
        entries.push(entry);
    }
    check_overlaps(&ports, &entries)?;
    Ok(ports)
}

/// Formats ports in access-ports syntax; `parse_access_ports` of the result gives the ports back
/// (public ports aside, which the grammar does not carry).
pub fn format_access_ports(ports: &[AppPort]) -> String {
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_entry(entry: &str) -> Result<AppPort, PortsErrorKind> {
    if entry.is_empty() {
        return Err(PortsErrorKind::Empty);
    }
    let mut parts = entry.split(':');
    let proto_text = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let proto = match proto_text.as_str() {
        "tcp" => LProto::Tcp,
        "udp" => LProto::Udp,
        "http" => LProto::Http,
        _ => return Err(PortsErrorKind::UnknownProto(proto_text)),
    };
    let range = parts.next().ok_or(PortsErrorKind::MissingPort)?.trim();
    let (start, end) = match range.split_once('-') {
        Some((a, b)) => (parse_port(a)?, parse_port(b)?),
        None => (parse_port(range)?, 0),
    };
    if end != 0 && end <= start {
        return Err(PortsErrorKind::BadRange { start, end });
    }
    let mut port = AppPort {
        proto,
        internal_port: start,
        public_port: start,
        end_port: end,
        ..AppPort::default()
    };
    let mut seen: Vec<String> = Vec::new();
    for annotation in parts {
        let (name, value) = match annotation.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (annotation.trim().to_ascii_lowercase(), None),
        };
        if seen.contains(&name) {
            return Err(PortsErrorKind::DuplicateAnnotation(name));
        }
        apply_annotation(&mut port, &name, value)?;
        seen.push(name);
    }
    check_reserved(&port)?;
    Ok(port)
}

/// Only digits are accepted, so `+80` or ` 8 0` do not sneak through `str::parse`.
fn parse_port(text: &str) -> Result<i32, PortsErrorKind> {
    let text = text.trim();
    let bad = || PortsErrorKind::BadPort(text.to_owned());
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<i32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p),
        _ => Err(bad()),
    }
}

fn apply_annotation(
    port: &mut AppPort,
    name: &str,
    value: Option<&str>,
) -> Result<(), PortsErrorKind> {
    let flag = |value: Option<&str>| match value {
        Some(_) => Err(PortsErrorKind::UnexpectedValue(name.to_owned())),
        None => Ok(()),
    };
    let valued = |value: Option<&str>| match value {
        Some(v) if !v.is_empty() => Ok(v.to_owned()),
        _ => Err(PortsErrorKind::MissingValue(name.to_owned())),
    };
    let only = |proto: LProto, annotation: &'static str, allowed: &'static str| {
        if port.proto == proto {
            Ok(())
        } else {
            Err(PortsErrorKind::WrongProto {
                annotation,
                allowed,
            })
        }
    };
    match name {
        "tls" => {
            flag(value)?;
            only(LProto::Tcp, "tls", "tcp")?;
            port.tls = true;
        }
        "nginx" => {
            flag(value)?;
            only(LProto::Udp, "nginx", "udp")?;
            port.nginx = true;
        }
        "maxpktsize" => {
            let text = valued(value)?;
            only(LProto::Udp, "maxpktsize", "udp")?;
            port.max_pkt_size = match text.parse::<i64>() {
                Ok(n) if (MIN_MAX_PKT_SIZE..=MAX_MAX_PKT_SIZE).contains(&n) => n,
                _ => return Err(PortsErrorKind::BadMaxPktSize(text)),
            };
        }
        // edgexr annotations: validated for shape, not stored (AppPort has no field for them).
        "intvis" => flag(value)?,
        "id" | "pathprefix" | "svcname" | "hostprefix" => {
            valued(value)?;
        }
        _ => return Err(PortsErrorKind::UnknownAnnotation(name.to_owned())),
    }
    Ok(())
}

fn check_reserved(port: &AppPort) -> Result<(), PortsErrorKind> {
    let class = port.proto.class();
    for (reserved_class, reserved) in RESERVED {
        if class == Some(reserved_class)
            && (port.internal_port..=port.last_port()).contains(&reserved)
        {
            let proto = match reserved_class {
                PortClass::Tcp => "tcp",
                PortClass::Udp => "udp",
            };
            return Err(PortsErrorKind::Reserved {
                proto,
                port: reserved,
            });
        }
    }
    Ok(())
}

/// Sorting by (class, start) makes any overlap show up between neighbours, so this stays
/// O(n log n) even for hostile inputs with many entries.
fn check_overlaps(ports: &[AppPort], entries: &[&str]) -> Result<(), PortsError> {
    let mut order: Vec<usize> = (0..ports.len()).collect();
    order.sort_by_key(|&i| (ports[i].proto.class(), ports[i].internal_port, i));
    // The furthest-reaching range seen so far in the current class.
    let mut reach: Option<(Option<PortClass>, i32, usize)> = None;
    for &i in &order {
        let (class, start, last) = (
            ports[i].proto.class(),
            ports[i].internal_port,
            ports[i].last_port(),
        );
        if let Some((c, end, j)) = reach
            && c == class
            && start <= end
        {
            // Name the entry written later, pointing at the earlier one.
            let (later, earlier) = if i > j { (i, j) } else { (j, i) };
            return Err(PortsError {
                entry: entries[later].to_owned(),
                reason: PortsErrorKind::Overlap(entries[earlier].to_owned()),
            });
        }
        if reach.is_none_or(|(c, end, _)| c != class || last > end) {
            reach = Some((class, last, i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
