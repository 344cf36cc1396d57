//! The access-ports grammar (stub; being written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(i32)]
pub enum LProto {
    #[default]
    Unknown = 0,
    Tcp = 1,
    Udp = 2,
    Http = 3,
}
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AppPort {
    pub proto: LProto,
    pub internal_port: i32,
    pub public_port: i32,
    pub fqdn_prefix: String,
    pub end_port: i32,
    pub tls: bool,
    pub nginx: bool,
    pub max_pkt_size: i64,
}
#[derive(Debug, thiserror::Error)]
#[error("ports")]
pub struct PortsError;
