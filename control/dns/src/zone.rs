//! The zone: the region's `app_dns_root` origin and every name under it with its addresses,
//! built from the objects the controller sends (pure: no I/O, no DNS wire types).
//!
//! Rules ([`build`]):
//! - a READY app instance with a `uri` gets that name, pointing at its dedicated cluster's
//!   `node_address` when it has one, else at its cloudlet's root LB (CloudletInfo's
//!   `rootlb_address`). A shared root LB's name therefore exists while it serves an instance:
//!   deleting the last one makes it NXDOMAIN, as every name the controller no longer hands out;
//! - an app's `official_fqdn` points at every address of the names serving its READY instances;
//! - `ns.<origin>` (the zone's NS target) points at the server's own addresses, if given.
//!
//! Only names under the origin are kept, compared case-insensitively (stored lower-case,
//! without the trailing dot). Names that are not valid host names are skipped and listed in
//! [`Zone::skipped`] rather than failing the whole zone: one bad object must not take every
//! other name down.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use edge_api::subscriber::Replica;
use edge_model::{
    AppInst, AppKey, CloudletKey, ClusterKey, IpAccess, Settings, TrackedState, naming,
};

/// Longest name in presentation form without the trailing dot (RFC 1035: 255 octets on the wire).
const MAX_NAME_LEN: usize = 253;

/// What [`build`] needs besides the objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneOptions {
    /// The region's name, part of the shared root LB names (the controller's `--region`).
    pub region: String,
    /// Addresses `ns.<origin>` resolves to: where this server is reachable. Empty: none.
    pub nameserver: Vec<IpAddr>,
}

/// Why no zone could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("app_dns_root {root:?} is not a usable zone origin: {reason}")]
    Origin { root: String, reason: String },
}

/// What a name resolves to in a zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The name's addresses (IPv4 and IPv6, sorted).
    Addresses(Vec<IpAddr>),
    /// The name exists (the apex, or a name with names below it) but has no address.
    NoData,
    /// The name is under the zone and does not exist.
    NxDomain,
    /// The name is not under the zone: not ours to answer.
    Refused,
}

/// One published version of the zone. Equality ignores nothing: compare with
/// [`Zone::same_records`] to ignore the serial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    origin: String,
    serial: u32,
    names: BTreeMap<String, Vec<IpAddr>>,
    /// Names that exist only because names below them do (empty non-terminals): they answer
    /// NODATA, not NXDOMAIN, which would tell caches that nothing below exists (RFC 8020).
    interior: BTreeSet<String>,
    skipped: Vec<String>,
}

impl Zone {
    /// A zone with no names but its apex.
    pub fn empty(origin: &str) -> Result<Self, ZoneError> {
        Ok(Self {
            origin: origin_of(origin)?,
            serial: 0,
            names: BTreeMap::new(),
            interior: BTreeSet::new(),
            skipped: Vec::new(),
        })
    }

    /// The origin, lower-case, without the trailing dot (e.g. `edge.example.net`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    pub fn with_serial(self, serial: u32) -> Self {
        Self { serial, ..self }
    }

    /// The name of the zone's name server (its NS and SOA MNAME).
    pub fn nameserver(&self) -> String {
        format!("ns.{}", self.origin)
    }

    /// Names with their addresses, in name order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = (&str, &[IpAddr])> + '_ {
        self.names.iter().map(|(n, a)| (n.as_str(), a.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Why names were left out (one line each), for the operator's log.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Whether both zones hold the same names and addresses (serials aside).
    pub fn same_records(&self, other: &Self) -> bool {
        self.origin == other.origin && self.names == other.names
    }

    /// What `name` (any case, with or without the trailing dot) resolves to.
    pub fn lookup(&self, name: &str) -> Answer {
        let name = normalize(name);
        if !under(&name, &self.origin) {
            return Answer::Refused;
        }
        match self.names.get(&name) {
            Some(addrs) => Answer::Addresses(addrs.clone()),
            None if name == self.origin || self.interior.contains(&name) => Answer::NoData,
            None => Answer::NxDomain,
        }
    }

    /// Adds `name` → `addrs` if the name lies under the origin; an invalid name is recorded in
    /// `skipped` with what gave it (`what`).
    fn add<'a>(
        &mut self,
        name: &str,
        addrs: impl IntoIterator<Item = &'a IpAddr>,
        what: &dyn Fn() -> String,
    ) {
        let mut addrs = addrs.into_iter().peekable();
        let name = normalize(name);
        if addrs.peek().is_none() || !under(&name, &self.origin) {
            return;
        }
        if let Err(reason) = check_name(&name) {
            self.skipped.push(format!("{}: {name:?} {reason}", what()));
            return;
        }
        let held = self.names.entry(name).or_default();
        for &addr in addrs {
            if let Err(at) = held.binary_search(&addr) {
                held.insert(at, addr);
            }
        }
    }

    /// Records every name between each name and the origin as existing.
    fn fill_interior(&mut self) {
        let origin_len = self.origin.len();
        let mut interior = BTreeSet::new();
        for name in self.names.keys() {
            let mut rest = name.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                if parent.len() <= origin_len {
                    break;
                }
                interior.insert(parent.to_owned());
                rest = parent;
            }
        }
        self.interior = interior;
    }
}

/// Builds the zone of `objects` (see the module doc for the rules). Fails only when the
/// region's `app_dns_root` cannot be a zone origin; serial 0 (the publisher sets it).
pub fn build(objects: &Replica, options: &ZoneOptions) -> Result<Zone, ZoneError> {
    let root = objects.settings().map_or_else(
        || Settings::default().app_dns_root,
        |s| s.app_dns_root.clone(),
    );
    let mut zone = Zone::empty(&root)?;
    let root_lbs = root_lbs(objects);
    let serving = add_instances(&mut zone, objects, &root_lbs);
    for app in objects.apps() {
        let Some(names) = serving.get(&app.key) else {
            continue;
        };
        let addrs: BTreeSet<IpAddr> = names
            .iter()
            .filter_map(|n| zone.names.get(n))
            .flatten()
            .copied()
            .collect();
        for fqdn in &app.official_fqdn {
            zone.add(fqdn, &addrs, &|| {
                format!("official_fqdn of app {}", app.key)
            });
        }
    }
    let ns = zone.nameserver();
    zone.add(&ns, &options.nameserver, &|| "the name server".to_owned());
    zone.fill_interior();
    Ok(zone)
}

/// The root LB address of each cloudlet that reported one.
fn root_lbs(objects: &Replica) -> HashMap<&CloudletKey, IpAddr> {
    objects
        .cloudlets()
        .filter_map(|c| {
            let addr = objects.cloudlet_info(&c.key)?.rootlb_address?;
            Some((&c.key, addr))
        })
        .collect()
}

/// Adds the URI of each READY instance that has an address; returns, per app, the names
/// serving its instances.
fn add_instances<'a>(
    zone: &mut Zone,
    objects: &'a Replica,
    root_lbs: &HashMap<&CloudletKey, IpAddr>,
) -> HashMap<&'a AppKey, BTreeSet<String>> {
    let mut serving: HashMap<&AppKey, BTreeSet<String>> = HashMap::new();
    for inst in objects.app_insts() {
        if inst.state != TrackedState::Ready || inst.uri.is_empty() {
            continue;
        }
        let Some(addr) = instance_address(objects, inst, root_lbs) else {
            continue;
        };
        zone.add(&inst.uri, &[addr], &|| {
            format!("uri of app instance {}", inst.key)
        });
        serving
            .entry(&inst.app)
            .or_default()
            .insert(normalize(&inst.uri));
    }
    serving
}

/// Where an instance's traffic enters: its dedicated cluster's node, else its cloudlet's root
/// LB. The cluster's organization is the instance's.
fn instance_address(
    objects: &Replica,
    inst: &AppInst,
    root_lbs: &HashMap<&CloudletKey, IpAddr>,
) -> Option<IpAddr> {
    let dedicated = inst.cluster.as_ref().and_then(|name| {
        let key = ClusterKey {
            organization: inst.key.organization.clone(),
            name: name.clone(),
        };
        let cluster = objects.cluster_inst(&key)?;
        (cluster.ip_access == IpAccess::Dedicated)
            .then_some(cluster.node_address)
            .flatten()
    });
    dedicated.or_else(|| root_lbs.get(&inst.cloudlet).copied())
}

/// The serial to publish after `previous` at `now_unix` (seconds): the time, so serials read
/// as dates and survive restarts, unless that would not be newer (RFC 1982 order), then one
/// more than `previous`.
pub fn next_serial(previous: u32, now_unix: u64) -> u32 {
    // Truncation is intended: serial arithmetic wraps (RFC 1982).
    let now = now_unix as u32;
    if serial_newer(now, previous) {
        now
    } else {
        previous.wrapping_add(1)
    }
}

/// Whether serial `a` is newer than `b` in RFC 1982 serial number arithmetic.
pub fn serial_newer(a: u32, b: u32) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 1 << 31
}

/// Lower-case, without the trailing dot.
fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

fn under(name: &str, origin: &str) -> bool {
    name == origin
        || name
            .strip_suffix(origin)
            .is_some_and(|head| head.ends_with('.') && head.len() > 1)
}

/// The origin `root` names, checked.
fn origin_of(root: &str) -> Result<String, ZoneError> {
    let origin = normalize(root.trim());
    check_name(&origin).map_err(|reason| ZoneError::Origin {
        root: root.to_owned(),
        reason,
    })?;
    Ok(origin)
}

/// A host name: dot-separated labels of letters, digits, `-` and `_` (service labels), none
/// empty or longer than 63 bytes, at most 253 bytes in all.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("is longer than {MAX_NAME_LEN} bytes"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("has an empty label".into());
        }
        if label.len() > naming::MAX_LABEL_LEN {
            return Err(format!(
                "has a label longer than {} bytes",
                naming::MAX_LABEL_LEN
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("has the character {c:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
