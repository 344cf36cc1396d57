//! The routes file as written by people and tools: loosely typed, straight from YAML.
//!
//! Nothing here is trusted; [`super::RouteTable::build`] turns a [`RoutesFile`] into a validated
//! table or rejects it whole.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole routes file.
///
/// ```yaml
/// drain_grace: 30s
/// defaults: { bind: 0.0.0.0, connect_timeout: 250ms, max_conns_per_backend: 1024 }
/// listeners:
///   - { proto: tcp, port: 28080, backends: ["127.0.0.1:18080"] }
///   - { proto: udp, port: 25201, backends: ["127.0.0.1:15201"], udp: { idle_timeout: 60s } }
///   - proto: tcp
///     port: 28443
///     name: app1-org/cluster1
///     backends: ["10.0.0.5:443"]
///     tls: { cert: /etc/lb/app1.crt, key: /etc/lb/app1.key }
///     proxy_protocol: v2
///     health_check: { interval: 5s, timeout: 1s, rise: 3, fall: 3 }
///   - proto: udp
///     port: 443
///     backends: ["10.0.0.5:4433", "10.0.0.6:4433"]
///     quic: { config_id: 1, server_id_len: 2, nonce_len: 8,
///             server_ids: { "10.0.0.5:4433": "0a01", "10.0.0.6:4433": "0a02" } }
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesFile {
    /// How long connections of a removed route (or removed backend) may keep running.
    #[serde(default)]
    pub drain_grace: Option<String>,
    /// Settings every listener inherits unless it sets its own.
    #[serde(default)]
    pub defaults: ListenerDefaults,
    /// One entry per public port and protocol.
    #[serde(default)]
    pub listeners: Vec<ListenerSpec>,
}

/// Per-listener settings that can be given once for the whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerDefaults {
    /// Address to bind public ports on (default `0.0.0.0`).
    pub bind: Option<String>,
    /// TCP connect timeout to a backend, e.g. `250ms`.
    pub connect_timeout: Option<String>,
    /// Circuit breaker: concurrent connections per backend (0 = unlimited).
    pub max_conns_per_backend: Option<u32>,
    /// Active health check settings; `health_check: { enabled: false }` turns them off.
    pub health_check: Option<HealthSpec>,
    /// How long a backend is taken out of rotation after a failed connect.
    pub eject_for: Option<String>,
    /// UDP flow settings.
    pub udp: Option<UdpSpec>,
}

/// One public listener.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSpec {
    /// `tcp` or `udp`.
    pub proto: String,
    /// Public port, 1..=65535 (kept wide here so that 70000 is reported, not mis-parsed).
    pub port: i64,
    /// App instance label used in metrics and health events (default `<proto>:<port>`).
    pub name: Option<String>,
    /// Bind address override.
    pub bind: Option<String>,
    /// `ip:port` list.
    #[serde(default)]
    pub backends: Vec<String>,
    /// Terminate TLS with this certificate (TCP only).
    pub tls: Option<TlsSpec>,
    /// `v2` to send a PROXY protocol v2 header to backends (TCP only).
    pub proxy_protocol: Option<String>,
    pub connect_timeout: Option<String>,
    pub max_conns_per_backend: Option<u32>,
    pub health_check: Option<HealthSpec>,
    pub eject_for: Option<String>,
    pub udp: Option<UdpSpec>,
    /// UDP only: route QUIC by the server id in each packet's destination connection id.
    pub quic: Option<QuicSpec>,
}

/// A UDP listener's `quic` mode (see [`super::QuicMode`]):
///
/// ```yaml
/// quic: {config_id: 1, server_id_len: 2, nonce_len: 8,
///        server_ids: {"10.0.0.5:4433": "0a01", "10.0.0.6:4433": "0a02"}}
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuicSpec {
    /// 0..=6, the top 3 bits of every connection id's first octet (kept wide to report 300).
    pub config_id: i64,
    /// Bytes of server id in each connection id (1..=15).
    pub server_id_len: i64,
    /// Random bytes after the server id (at least 4; 8 ≤ 1 + server id + nonce ≤ 20).
    pub nonce_len: i64,
    /// Backend `ip:port` → its server id in hex; every backend needs one.
    #[serde(default)]
    pub server_ids: BTreeMap<String, String>,
}

/// Certificate chain and private key, both PEM files.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    pub cert: String,
    pub key: String,
}

/// Active health check: a TCP connect, or for UDP listeners a probe datagram (see
/// [`super::UdpProbe`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    pub enabled: Option<bool>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    /// UDP only: the probe datagram's payload (default: empty).
    pub send: Option<String>,
    /// UDP only: a reply must contain this (default: any reply or silence passes).
    pub expect: Option<String>,
}

/// UDP flow table settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpSpec {
    pub idle_timeout: Option<String>,
    pub max_flows: Option<u32>,
}
