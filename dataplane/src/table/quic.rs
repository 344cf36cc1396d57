//! A UDP route's `quic` mode: the connection-id layout its backends' QUIC servers share
//! (`quic-lb`'s [`CidConfig`]) and which backend owns which server id, validated whole at table
//! build, so that the hot path only looks a server id up (a binary search over a small sorted
//! vector, no allocation).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use quic_lb::{CidConfig, ServerId};

use super::spec::QuicSpec;

/// How a `quic` route maps connection ids to its backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuicMode {
    pub cid: CidConfig,
    /// `(server id, index into the route's backends)`, sorted by the id's bytes; every id has
    /// the config's length and appears once.
    servers: Vec<(ServerId, usize)>,
}

impl QuicMode {
    /// Validates that every id has `cid`'s server id length and that no id or backend appears
    /// twice; the problems are listed, naming the backends.
    pub fn new(
        cid: CidConfig,
        ids: impl IntoIterator<Item = (ServerId, usize)>,
    ) -> Result<Self, Vec<String>> {
        let mut errs = Vec::new();
        let mut servers: Vec<(ServerId, usize)> = Vec::new();
        for (id, backend) in ids {
            if id.len() != cid.server_id_len() {
                errs.push(format!(
                    "backend #{backend}: server id {id} is {} bytes, server_id_len is {}",
                    id.len(),
                    cid.server_id_len()
                ));
            } else if let Some((_, other)) = servers.iter().find(|(s, _)| *s == id) {
                errs.push(format!(
                    "backends #{other} and #{backend} share server id {id}"
                ));
            } else if servers.iter().any(|(_, b)| *b == backend) {
                errs.push(format!("backend #{backend} has two server ids"));
            } else {
                servers.push((id, backend));
            }
        }
        servers.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if errs.is_empty() {
            Ok(Self { cid, servers })
        } else {
            Err(errs)
        }
    }

    /// The backend (index into the route's backends) owning `server_id`.
    pub fn backend_of(&self, server_id: &[u8]) -> Option<usize> {
        let i = self
            .servers
            .binary_search_by(|(s, _)| s.as_bytes().cmp(server_id))
            .ok()?;
        Some(self.servers[i].1)
    }

    /// Every `(server id, backend index)`, in server id order.
    pub fn servers(&self) -> impl Iterator<Item = (&ServerId, usize)> {
        self.servers.iter().map(|(s, b)| (s, *b))
    }
}

/// The `quic` block of a listener with these `backends` (already validated) → its mode, or the
/// problems, each naming the backend concerned.
pub(super) fn build(
    spec: &QuicSpec,
    backends: &[SocketAddr],
    errs: &mut Vec<String>,
) -> Option<QuicMode> {
    let small = |v: i64, field: &str, errs: &mut Vec<String>| match u8::try_from(v) {
        Ok(v) => Some(v),
        Err(_) => {
            errs.push(format!("quic.{field} out of range: {v}"));
            None
        }
    };
    let id = small(spec.config_id, "config_id", errs);
    let sid_len = small(spec.server_id_len, "server_id_len", errs);
    let nonce = small(spec.nonce_len, "nonce_len", errs);
    let cid = match CidConfig::new(id?, sid_len?, nonce?) {
        Ok(c) => c,
        Err(e) => {
            errs.push(format!("quic: {e}"));
            return None;
        }
    };
    let before = errs.len();
    let mut by_backend: BTreeMap<usize, ServerId> = BTreeMap::new();
    for (addr, hex) in &spec.server_ids {
        let Some(i) = addr
            .parse::<SocketAddr>()
            .ok()
            .and_then(|a| backends.iter().position(|b| *b == a))
        else {
            errs.push(format!(
                "quic.server_ids: {addr:?} is not one of the listener's backends"
            ));
            continue;
        };
        match hex.parse::<ServerId>() {
            Err(e) => errs.push(format!("quic.server_ids: backend {addr}: {e}")),
            Ok(id) if id.len() != cid.server_id_len() => errs.push(format!(
                "quic.server_ids: backend {addr}: server id {id} is {} bytes, server_id_len is {}",
                id.len(),
                cid.server_id_len()
            )),
            Ok(id) => {
                if let Some((other, _)) = by_backend.iter().find(|(_, s)| **s == id) {
                    errs.push(format!(
                        "quic.server_ids: backends {} and {addr} share server id {id}",
                        backends[*other]
                    ));
                } else if by_backend.insert(i, id).is_some() {
                    // Two spellings of one address ("127.0.0.1:1" and "127.0.0.1:01").
                    errs.push(format!("quic.server_ids: backend {addr} is listed twice"));
                }
            }
        }
    }
    for (i, b) in backends.iter().enumerate() {
        if !by_backend.contains_key(&i) && !spec.server_ids.keys().any(|k| k.parse() == Ok(*b)) {
            // Every backend needs one: a server without an id issues CIDs the LB cannot route,
            // so its clients' connections would not survive a change of address.
            errs.push(format!("quic.server_ids: backend {b} has no server id"));
        }
    }
    if errs.len() > before {
        return None;
    }
    match QuicMode::new(cid, by_backend.into_iter().map(|(b, s)| (s, b))) {
        Ok(m) => Some(m),
        Err(e) => {
            errs.extend(e.into_iter().map(|e| format!("quic: {e}")));
            None
        }
    }
}
