//! The UDP flow table: client address → flow, with a cap. Idle expiry is decided by the caller
//! from each flow's last activity (the runtime keeps that in an atomic shared with the flow's
//! return-path task), so the table itself holds no clock.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Why a new flow was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The table holds `max_flows` flows already; the datagram is dropped (load shedding).
    #[error("flow table full")]
    Full,
}

/// Flows keyed by client address.
#[derive(Debug)]
pub struct FlowTable<V> {
    map: HashMap<SocketAddr, V>,
    cap: usize,
}

impl<V> FlowTable<V> {
    pub fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap,
        }
    }

    pub fn get(&self, client: &SocketAddr) -> Option<&V> {
        self.map.get(client)
    }

    /// Insert a new flow unless the table is full.
    pub fn insert(&mut self, client: SocketAddr, v: V) -> Result<&V, FlowError> {
        if self.map.len() >= self.cap && !self.map.contains_key(&client) {
            return Err(FlowError::Full);
        }
        self.map.insert(client, v);
        Ok(&self.map[&client])
    }

    pub fn remove(&mut self, client: &SocketAddr) -> Option<V> {
        self.map.remove(client)
    }

    /// Remove every flow for which `expired` is true; returns how many were removed.
    pub fn retain_live(&mut self, mut expired: impl FnMut(&V) -> bool) -> usize {
        let before = self.map.len();
        self.map.retain(|_, v| !expired(v));
        before - self.map.len()
    }

    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn drain(&mut self) -> impl Iterator<Item = (SocketAddr, V)> + '_ {
        self.map.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn cap_sheds_new_flows_but_keeps_existing() {
        let mut t = FlowTable::new(2);
        t.insert(a(1), 1).unwrap();
        t.insert(a(2), 2).unwrap();
        assert_eq!(t.insert(a(3), 3), Err(FlowError::Full));
        assert_eq!(t.insert(a(2), 22).copied(), Ok(22));
        assert_eq!(t.remove(&a(1)), Some(1));
        t.insert(a(3), 3).unwrap();
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn retain_live_expires() {
        let mut t = FlowTable::new(10);
        for p in 1..=5 {
            t.insert(a(p), p).unwrap();
        }
        assert_eq!(t.retain_live(|v| v % 2 == 0), 2);
        assert!(t.get(&a(2)).is_none() && t.get(&a(3)).is_some());
    }
}
