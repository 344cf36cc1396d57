//! `show -o table`: one aligned table per kind, the key columns first, then the state a person
//! checks most (lifecycle, maintenance, health, where things run and how they are reached).

use std::fmt::Write as _;

use edge_model::{Object, ObjectKind, format_access_ports};

/// The tables of `objects` (any mix of kinds; each kind in its first-seen order), separated by
/// blank lines, each under a `KIND (count)` title. Empty input prints `No objects.`.
pub fn render(objects: &[Object]) -> String {
    let mut kinds: Vec<ObjectKind> = Vec::new();
    for o in objects {
        if !kinds.contains(&o.kind()) {
            kinds.push(o.kind());
        }
    }
    if kinds.is_empty() {
        return "No objects.\n".into();
    }
    let mut out = String::new();
    for (i, kind) in kinds.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let rows: Vec<Vec<String>> = objects
            .iter()
            .filter(|o| o.kind() == *kind)
            .map(row)
            .collect();
        let _ = writeln!(out, "{kind} ({})", rows.len());
        out.push_str(&align(header(*kind), &rows));
    }
    out
}

fn header(kind: ObjectKind) -> &'static [&'static str] {
    match kind {
        ObjectKind::OperatorCode => &["CODE", "ORGANIZATION"],
        ObjectKind::Flavor => &["NAME", "RAM_MB", "VCPUS", "DISK_GB"],
        ObjectKind::Settings => &[
            "APP_DNS_ROOT",
            "PUBLIC_CLOUD_ORGS",
            "PADDING_KM",
            "VERY_CLOSE_KM",
            "NETWORK_LOCATION",
        ],
        ObjectKind::Cloudlet => &[
            "ORGANIZATION",
            "NAME",
            "LOCATION",
            "PLATFORM",
            "STATE",
            "MAINTENANCE",
            "ALLIANCE_ORGS",
        ],
        ObjectKind::CloudletInfo => &["ORGANIZATION", "NAME", "STATE", "NOTIFY_ID", "ERRORS"],
        ObjectKind::App => &[
            "ORGANIZATION",
            "NAME",
            "VERSION",
            "DEPLOYMENT",
            "ACCESS_PORTS",
            "FLAVOR",
        ],
        ObjectKind::ClusterInst => &[
            "ORGANIZATION",
            "NAME",
            "CLOUDLET",
            "FLAVOR",
            "IP_ACCESS",
            "NODES",
            "STATE",
        ],
        ObjectKind::AppInst => &[
            "ORGANIZATION",
            "NAME",
            "APP",
            "CLOUDLET",
            "URI",
            "PORTS",
            "STATE",
            "HEALTH",
        ],
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}

fn row(o: &Object) -> Vec<String> {
    match o {
        Object::OperatorCode(c) => vec![c.code.clone(), c.organization.clone()],
        Object::Flavor(f) => vec![
            f.name.clone(),
            f.ram_mb.to_string(),
            f.vcpus.to_string(),
            f.disk_gb.to_string(),
        ],
        Object::Settings(s) => vec![
            s.app_dns_root.clone(),
            or_dash(&s.public_cloud_orgs.join(",")),
            s.public_cloud_padding_km.to_string(),
            s.very_close_km.to_string(),
            match &s.network_location {
                edge_model::NetworkLocation::GeoIp => "geoip".into(),
                edge_model::NetworkLocation::Static(p) => format!("static {p}"),
            },
        ],
        Object::Cloudlet(c) => vec![
            c.key.organization.clone(),
            c.key.name.clone(),
            c.location.to_string(),
            or_dash(&c.platform_type),
            c.state.as_str().into(),
            c.maintenance_state.as_str().into(),
            or_dash(&c.alliance_orgs.join(",")),
        ],
        Object::CloudletInfo(c) => vec![
            c.key.organization.clone(),
            c.key.name.clone(),
            c.state.as_str().into(),
            c.notify_id.to_string(),
            or_dash(&c.errors.join("; ")),
        ],
        Object::App(a) => vec![
            a.key.organization.clone(),
            a.key.name.clone(),
            a.key.version.clone(),
            a.deployment.as_str().into(),
            or_dash(&format_access_ports(&a.access_ports)),
            or_dash(a.default_flavor.as_deref().unwrap_or("")),
        ],
        Object::ClusterInst(c) => vec![
            c.key.organization.clone(),
            c.key.name.clone(),
            c.cloudlet.to_string(),
            or_dash(c.flavor.as_deref().unwrap_or("")),
            c.ip_access.as_str().into(),
            format!("{}+{}", c.num_masters, c.num_nodes),
            c.state.as_str().into(),
        ],
        Object::AppInst(i) => vec![
            i.key.organization.clone(),
            i.key.name.clone(),
            i.app.to_string(),
            i.cloudlet.to_string(),
            or_dash(&i.uri),
            or_dash(&mapped_ports(&i.mapped_ports)),
            i.state.as_str().into(),
            i.health.as_str().into(),
        ],
    }
}

/// `udp:7777->10000` where the public port differs, else the access-ports form.
fn mapped_ports(ports: &[edge_model::AppPort]) -> String {
    ports
        .iter()
        .map(|p| {
            if p.public_port == p.internal_port {
                format!("{}:{}", p.proto, p.internal_port)
            } else {
                format!("{}:{}->{}", p.proto, p.internal_port, p.public_port)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Left-aligned columns two spaces apart; the last column is not padded.
fn align(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_string()).collect();
    for r in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in r.iter().zip(&widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let t = align(&["A", "LONGER"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    LONGER\nxyz  1\n");
        assert_eq!(render(&[]), "No objects.\n");
    }
}
