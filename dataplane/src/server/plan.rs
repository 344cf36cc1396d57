//! The decisions of applying a table, without I/O: which listeners need a new socket, and, once
//! the executor ([`super::Server::apply`]) has loaded certificates and bound sockets, which
//! routes are published (new or kept at their previous version), which listeners stop and start,
//! which backends appear or drain, and which health checks start, change or stop.
//!
//! Two steps because what is published depends on what the I/O achieved: a listener whose new
//! certificate does not load keeps serving its previous version on its socket, and a route whose
//! port cannot be bound is not published at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::table::{HealthCheck, ListenerKey, Route, RouteTable};

/// A backend of one listener: the unit that has runtime state, counters and a health check.
pub(crate) type BackendKey = (ListenerKey, SocketAddr);

/// What the control side holds before the apply.
#[derive(Debug, Default)]
pub(crate) struct Before {
    /// Serving listeners and the address each socket is bound to.
    pub listeners: HashMap<ListenerKey, SocketAddr>,
    /// The published version of each route.
    pub routes: HashMap<ListenerKey, Arc<Route>>,
    /// Every backend with runtime state, and the active check running for it (if any).
    pub backends: HashMap<BackendKey, Option<HealthCheck>>,
}

/// Which version of a route is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// The route of the new table.
    New,
    /// The previous version, on the socket it already has (its new version failed to load).
    Previous,
}

/// The actions of one apply, in the order the executor carries them out.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// The routes of the next snapshot (listener order).
    pub publish: Vec<(ListenerKey, Version)>,
    /// Backends that get runtime state (new in a published route).
    pub add: Vec<BackendKey>,
    /// Listeners to stop: gone, failed without a previous version, or bound elsewhere now.
    pub stop: Vec<ListenerKey>,
    /// Listeners to start on the sockets bound for them.
    pub start: Vec<ListenerKey>,
    /// Backends no longer routed: they drain for the table's grace and their checks stop.
    pub drain: Vec<BackendKey>,
    /// Backends whose active check changes to this one (`None`: no check, healthy).
    pub checks: Vec<(BackendKey, Option<HealthCheck>)>,
}

/// Listeners of `table` that need a socket bound: new ones, and those whose address changed.
pub(crate) fn sockets_needed(before: &Before, table: &RouteTable) -> BTreeSet<ListenerKey> {
    table
        .routes()
        .filter(|r| before.listeners.get(&r.key) != Some(&r.bind_addr()))
        .map(|r| r.key)
        .collect()
}

/// The plan for `table`, given the listeners whose certificate or socket failed (`failed`).
pub(crate) fn plan(before: &Before, table: &RouteTable, failed: &BTreeSet<ListenerKey>) -> Plan {
    let needed = sockets_needed(before, table);
    let mut out = Plan::default();
    // The routes being published, whichever version: they decide backends and checks.
    let mut live: BTreeMap<ListenerKey, &Arc<Route>> = BTreeMap::new();
    for route in table.routes() {
        let key = route.key;
        let version = if !failed.contains(&key) {
            if needed.contains(&key) {
                out.start.push(key);
            }
            live.insert(key, route);
            Version::New
        } else if let (false, Some(prev)) = (needed.contains(&key), before.routes.get(&key)) {
            live.insert(key, prev);
            Version::Previous
        } else {
            continue;
        };
        out.publish.push((key, version));
    }
    out.publish.sort_by_key(|(k, _)| *k);
    out.start.sort();

    let mut stop: Vec<ListenerKey> = before
        .listeners
        .iter()
        .filter(|(k, bind)| live.get(k).is_none_or(|r| r.bind_addr() != **bind))
        .map(|(k, _)| *k)
        .collect();
    stop.sort();
    out.stop = stop;

    let mut wanted: BTreeMap<BackendKey, Option<&HealthCheck>> = BTreeMap::new();
    for (key, route) in &live {
        for addr in &route.backends {
            wanted.insert((*key, *addr), route.health_check.as_ref());
        }
    }
    let mut drain: Vec<BackendKey> = before
        .backends
        .keys()
        .filter(|bk| !wanted.contains_key(bk))
        .copied()
        .collect();
    drain.sort();
    out.drain = drain;
    for (bk, want) in wanted {
        let running = match before.backends.get(&bk) {
            Some(check) => check.as_ref(),
            None => {
                out.add.push(bk);
                None
            }
        };
        if running != want {
            out.checks.push((bk, want.cloned()));
        }
    }
    out
}

#[cfg(test)]
mod tests;
