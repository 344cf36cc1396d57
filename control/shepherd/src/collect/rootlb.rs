//! Root LB page → `appinst-connections` (TCP listeners) and `appinst-udp` (UDP listeners), one
//! point per app instance and port.
//!
//! The root LB labels its series with `listener="tcp:PORT"` (public port) and
//! `app="ORG/NAME"` (the AppInst key); per-backend series are summed over the instance's
//! backends. The instance's objects give the other tags and turn the public port into the
//! app's own (internal) port for the `port` tag, as upstream (envoy's `backend<port>`) did.

use std::collections::BTreeMap;

use edge_api::subscriber::Replica;
use edge_model::{AppInst, AppInstKey, CloudletKey, LProto};

use super::{count, inst_tags, measurement};
use crate::line::Point;
use crate::promtext::Page;

/// Sums of one instance's series on one listener.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Totals {
    active: f64,
    accepts: f64,
    handled: f64,
    /// Client to instance.
    bytes_in: f64,
    /// Instance to client.
    bytes_out: f64,
    packets_in: f64,
    packets_out: f64,
    drops_full: f64,
    drops_send: f64,
}

impl Totals {
    /// Adds `v` to the total `name` feeds; false for series this collector does not use.
    fn add(&mut self, name: &str, v: f64) -> bool {
        let slot = match name {
            "rootlb_listener_active" => &mut self.active,
            "rootlb_listener_accepted_total" => &mut self.accepts,
            "rootlb_backend_connections_total" => &mut self.handled,
            "rootlb_backend_bytes_in_total" => &mut self.bytes_in,
            "rootlb_backend_bytes_out_total" => &mut self.bytes_out,
            "rootlb_backend_packets_in_total" => &mut self.packets_in,
            "rootlb_backend_packets_out_total" => &mut self.packets_out,
            "rootlb_udp_drops_full_total" => &mut self.drops_full,
            "rootlb_udp_drops_send_total" => &mut self.drops_send,
            _ => return false,
        };
        if v.is_finite() {
            *slot += v;
        }
        true
    }
}

/// What one page gave.
#[derive(Debug, Default, PartialEq)]
pub struct RootLbPoints {
    pub points: Vec<Point>,
    /// `app` labels that name no instance of this cloudlet (yet): their series are skipped.
    pub unknown: Vec<String>,
}

/// `tcp:PORT` / `udp:PORT`.
fn listener(s: &str) -> Option<(bool, i32)> {
    let (proto, port) = s.split_once(':')?;
    let udp = match proto {
        "tcp" => false,
        "udp" => true,
        _ => return None,
    };
    Some((udp, port.parse().ok()?))
}

/// `ORG/NAME`.
fn inst_key(app: &str) -> Option<AppInstKey> {
    let (org, name) = app.split_once('/')?;
    Some(AppInstKey {
        organization: org.to_owned(),
        name: name.to_owned(),
    })
}

/// The app's own port behind public port `public` of `inst`, or `public` when no mapped port
/// covers it.
pub fn internal_port(inst: &AppInst, udp: bool, public: i32) -> i32 {
    for p in &inst.mapped_ports {
        let proto_matches = match p.proto {
            LProto::Udp => udp,
            LProto::Tcp | LProto::Http => !udp,
            LProto::Unknown => false,
        };
        let span = if p.end_port > 0 {
            p.end_port.saturating_sub(p.internal_port).max(0)
        } else {
            0
        };
        if proto_matches && (p.public_port..=p.public_port.saturating_add(span)).contains(&public) {
            return p.internal_port.saturating_add(public - p.public_port);
        }
    }
    public
}

/// The points of a root LB page.
pub fn points(page: &Page, objects: &Replica, cloudlet: &CloudletKey, now_ms: i64) -> RootLbPoints {
    let mut totals: BTreeMap<(&str, bool, i32), Totals> = BTreeMap::new();
    for s in &page.samples {
        let (Some(app), Some(l)) = (s.label("app"), s.label("listener")) else {
            continue;
        };
        let Some((udp, port)) = listener(l) else {
            continue;
        };
        let mut t = totals.get(&(app, udp, port)).copied().unwrap_or_default();
        if t.add(&s.name, s.value) {
            totals.insert((app, udp, port), t);
        }
    }
    let mut out = RootLbPoints::default();
    for ((app, udp, port), t) in totals {
        let inst = inst_key(app)
            .and_then(|k| objects.app_inst(&k))
            .filter(|i| i.cloudlet == *cloudlet);
        let Some(inst) = inst else {
            if out.unknown.last().is_none_or(|u| u != app) {
                out.unknown.push(app.to_owned());
            }
            continue;
        };
        let mut p = Point::new(
            if udp {
                measurement::APPINST_UDP
            } else {
                measurement::APPINST_CONNECTIONS
            },
            now_ms,
        );
        p.tags = inst_tags(inst);
        p.tags
            .insert("port".into(), internal_port(inst, udp, port).to_string());
        p = if udp {
            udp_fields(p, &t)
        } else {
            tcp_fields(p, &t)
        };
        out.points.push(p);
    }
    out
}

fn tcp_fields(p: Point, t: &Totals) -> Point {
    p.field("active", count(t.active))
        .field("accepts", count(t.accepts))
        .field("handled", count(t.handled))
        .field("bytesSent", count(t.bytes_in))
        .field("bytesRecvd", count(t.bytes_out))
}

fn udp_fields(p: Point, t: &Totals) -> Point {
    p.field("bytesSent", count(t.bytes_in))
        .field("bytesRecvd", count(t.bytes_out))
        .field("datagramsSent", count(t.packets_in))
        .field("datagramsRecvd", count(t.packets_out))
        .field("sentErrs", count(t.drops_send))
        .field("overflow", count(t.drops_full))
}

#[cfg(test)]
mod tests;
