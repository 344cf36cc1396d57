//! What a starting CRM finds under the state directory: clusters whose network still exists,
//! and instances whose process still runs (adopted) or can be started again from their record
//! (restarted). Anything else is removed, so the state machine recreates it cleanly.

use std::net::IpAddr;
use std::path::Path;

use edge_model::{AppInstKey, ClusterKey};

use super::net::{self, ClusterNet};
use super::process::{self, RunSpec};
use super::{ClusterStatus, Inst, Inventory, LocalPlatform, PlatformError, read};

/// `(org, name)` of every entry two levels under `dir` (as recorded: %-escaped parts).
fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for org in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for obj in std::fs::read_dir(org.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(obj.path());
        }
    }
    out.sort();
    out
}

impl LocalPlatform {
    pub(super) async fn adopt_all(&self) -> Result<Inventory, PlatformError> {
        let mut inv = Inventory::default();
        for dir in entries(&self.opts.state_dir.join("clusters")) {
            match self.adopt_cluster(&dir) {
                Some((key, n)) => {
                    let status = ClusterStatus {
                        node_address: n.address,
                    };
                    self.inner().clusters.insert(key.clone(), n);
                    inv.clusters.push((key, status));
                }
                None => {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        for dir in entries(&self.opts.state_dir.join("instances")) {
            match self.adopt_inst(&dir).await {
                Some(key) => inv.insts.push(key),
                None => {
                    if let Some(mut r) = process::adopt(&dir) {
                        r.stop(std::time::Duration::from_secs(3)).await;
                    }
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        tracing::info!(
            cloudlet = %self.opts.cloudlet,
            clusters = inv.clusters.len(),
            instances = inv.insts.len(),
            "local platform: adopted what was running"
        );
        Ok(inv)
    }

    fn adopt_cluster(&self, dir: &Path) -> Option<(ClusterKey, ClusterNet)> {
        let key = key_of(dir)?;
        let address: IpAddr = read(dir, "address")?.parse().ok()?;
        let netns = read(dir, "netns").filter(|s| !s.is_empty());
        if let Some(ns) = &netns
            && !net::netns_exists(ns)
        {
            return None;
        }
        Some((
            ClusterKey {
                organization: key.0,
                name: key.1,
            },
            ClusterNet { address, netns },
        ))
    }

    /// Adopts or restarts the instance recorded in `dir`; `None` if it cannot be.
    async fn adopt_inst(&self, dir: &Path) -> Option<AppInstKey> {
        let (org, name) = key_of(dir)?;
        let key = AppInstKey {
            organization: org,
            name,
        };
        let cluster = read(dir, "cluster").and_then(|t| {
            let (o, n) = t.split_once('\n')?;
            Some(ClusterKey {
                organization: o.into(),
                name: n.into(),
            })
        });
        // Its cluster must have survived too, with the same address.
        let address: IpAddr = read(dir, "address")?.parse().ok()?;
        let inner_ok = cluster.as_ref().is_some_and(|c| {
            self.inner()
                .clusters
                .get(c)
                .is_some_and(|n| n.address == address)
        });
        if !inner_ok {
            return None;
        }
        let spec = RunSpec {
            argv: read(dir, "argv")?.lines().map(String::from).collect(),
            env: vec![
                ("EDGE_APP_ADDR".into(), address.to_string()),
                (
                    "EDGE_APP_PORTS".into(),
                    read(dir, "ports").unwrap_or_default(),
                ),
                (
                    "EDGE_APP_INST".into(),
                    format!("{}/{}", key.organization, key.name),
                ),
            ],
            netns: read(dir, "netns").filter(|s| !s.is_empty()),
            address,
            ports: edge_model::parse_access_ports(&read(dir, "ports")?).ok()?,
            dir: dir.to_path_buf(),
        };
        if spec.argv.is_empty() {
            return None;
        }
        let running = match process::adopt(dir) {
            Some(r) => r,
            None => {
                let mut r = process::spawn(&spec).ok()?;
                if process::wait_listening(&spec, &mut r, self.opts.ready_timeout)
                    .await
                    .is_err()
                {
                    r.stop(std::time::Duration::from_secs(1)).await;
                    return None;
                }
                r
            }
        };
        let sup = self.start_supervised(&key, spec.clone(), running);
        self.inner().insts.insert(
            key.clone(),
            Inst {
                cluster,
                address,
                ports: spec.ports,
                sup,
            },
        );
        Some(key)
    }
}

/// The key recorded by a directory's last two components (undoing the %-escaping).
fn key_of(dir: &Path) -> Option<(String, String)> {
    let name = unescape(dir.file_name()?.to_str()?)?;
    let org = unescape(dir.parent()?.file_name()?.to_str()?)?;
    Some((org, name))
}

fn unescape(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn recorded_key_parts_round_trip() {
        for s in ["acme", "Acme Co", "a/b", "..", ".x", "ü-ß_1.2"] {
            let p = super::super::part(s);
            assert!(!p.contains('/') && p != "." && p != "..", "{p}");
            assert_eq!(super::unescape(&p).as_deref(), Some(s), "{p}");
        }
    }
}
