//! Conversions between domain types and the generated wire types, for use at the edge only (no
//! hot path matches on generated structs). How a refused value reaches a client (status, body)
//! is the caller's business: these return plain errors.

use edge_model::{AppPort, LProto};
use geodata::{CoordError, LatLon};

use crate::proto;

/// Validates a client location as upstream's `ValidateLocation` does (bounds inclusive), and
/// also rejects NaN and infinities, which upstream let through.
pub fn lat_lon(loc: &proto::Loc) -> Result<LatLon, CoordError> {
    LatLon::new(loc.latitude, loc.longitude)
}

pub fn loc(p: LatLon) -> proto::Loc {
    proto::Loc {
        latitude: p.lat(),
        longitude: p.lon(),
        ..Default::default()
    }
}

pub fn app_port(p: &AppPort) -> proto::AppPort {
    proto::AppPort {
        proto: lproto(p.proto) as i32,
        internal_port: p.internal_port,
        public_port: p.public_port,
        fqdn_prefix: p.fqdn_prefix.clone(),
        end_port: p.end_port,
        tls: p.tls,
        nginx: p.nginx,
        max_pkt_size: p.max_pkt_size,
    }
}

/// An app's access ports as GetAppOfficialFqdn returns them: unmapped, only protocol and internal
/// port populated (as upstream).
pub fn unmapped_port(p: &AppPort) -> proto::AppPort {
    proto::AppPort {
        proto: lproto(p.proto) as i32,
        internal_port: p.internal_port,
        ..Default::default()
    }
}

fn lproto(p: LProto) -> proto::LProto {
    match p {
        LProto::Unknown => proto::LProto::Unknown,
        LProto::Tcp => proto::LProto::Tcp,
        LProto::Udp => proto::LProto::Udp,
        LProto::Http => proto::LProto::Http,
    }
}
