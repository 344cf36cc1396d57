//! The `local` platform's operations.

use std::time::Duration;

use edge_model::{AppInstKey, CloudletResources, ClusterKey, Flavor, HealthCheck};
use tokio::sync::broadcast;

use super::{
    ClusterSpec, ClusterStatus, Inst, InstSpec, Inventory, LocalPlatform, Platform, PlatformError,
    PlatformInfo, ProgressSink, net, part, ports_text, process, write,
};

#[async_trait::async_trait]
impl Platform for LocalPlatform {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn info(&self) -> Result<PlatformInfo, PlatformError> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let mem_mb = meminfo_kb("MemTotal:") / 1024;
        let avail_mb = meminfo_kb("MemAvailable:") / 1024;
        let flavor = Flavor {
            name: "local.host".into(),
            vcpus: cpus,
            ram_mb: mem_mb,
            disk_gb: 0,
        };
        Ok(PlatformInfo {
            flavors: vec![flavor],
            resources: CloudletResources {
                vcpus_max: cpus,
                vcpus_used: load_average().min(cpus),
                ram_mb_max: mem_mb,
                ram_mb_used: mem_mb.saturating_sub(avail_mb),
                disk_gb_max: 0,
                disk_gb_used: 0,
            },
        })
    }

    async fn create_cluster(
        &self,
        spec: &ClusterSpec,
        progress: &dyn ProgressSink,
    ) -> Result<ClusterStatus, PlatformError> {
        if let Some(n) = self.inner().clusters.get(&spec.key) {
            return Ok(ClusterStatus {
                node_address: n.address,
            });
        }
        progress.line("Creating the cluster's network".into());
        let n = self.new_net(progress).await?;
        let dir = self.cluster_dir(&spec.key);
        let saved = std::fs::create_dir_all(&dir)
            .map_err(|source| PlatformError::Io {
                what: format!("creating {}", dir.display()),
                source,
            })
            .and_then(|()| write(&dir, "address", &n.address.to_string()))
            .and_then(|()| match &n.netns {
                Some(ns) => write(&dir, "netns", ns),
                None => Ok(()),
            });
        if let Err(e) = saved {
            if let Some(ns) = &n.netns {
                net::delete_netns(ns);
            }
            return Err(e);
        }
        progress.line(match &n.netns {
            Some(ns) => format!(
                "Cluster network ready: namespace {ns}, address {}",
                n.address
            ),
            None => format!("Cluster network ready: address {}", n.address),
        });
        let status = ClusterStatus {
            node_address: n.address,
        };
        self.inner().clusters.insert(spec.key.clone(), n);
        Ok(status)
    }

    async fn update_cluster(
        &self,
        spec: &ClusterSpec,
        progress: &dyn ProgressSink,
    ) -> Result<ClusterStatus, PlatformError> {
        // Sizes mean nothing on one host: an update keeps the network.
        self.create_cluster(spec, progress).await
    }

    async fn delete_cluster(
        &self,
        key: &ClusterKey,
        progress: &dyn ProgressSink,
    ) -> Result<(), PlatformError> {
        let in_it: Vec<AppInstKey> = self
            .inner()
            .insts
            .iter()
            .filter(|(_, i)| i.cluster.as_ref() == Some(key))
            .map(|(k, _)| k.clone())
            .collect();
        for k in in_it {
            self.delete_app_inst(&k, progress).await?;
        }
        let removed = self.inner().clusters.remove(key);
        if let Some(ns) = removed.and_then(|n| n.netns) {
            progress.line(format!("Removing namespace {ns}"));
            tokio::task::spawn_blocking(move || net::delete_netns(&ns))
                .await
                .ok();
        }
        let _ = std::fs::remove_dir_all(self.cluster_dir(key));
        Ok(())
    }

    async fn create_app_inst(
        &self,
        spec: &InstSpec,
        progress: &dyn ProgressSink,
    ) -> Result<(), PlatformError> {
        if self.inner().insts.contains_key(&spec.key) {
            return Ok(());
        }
        let (run, cluster) = self.run_spec(spec)?;
        let dir = run.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| PlatformError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        let _ = std::fs::remove_file(dir.join("output.log"));
        let record = [
            ("argv", run.argv.join("\n")),
            (
                "cluster",
                cluster
                    .as_ref()
                    .map(|c| format!("{}\n{}", c.organization, c.name))
                    .unwrap_or_default(),
            ),
            ("address", run.address.to_string()),
            ("netns", run.netns.clone().unwrap_or_default()),
            ("ports", ports_text(&run.ports)),
        ];
        for (name, text) in record {
            write(&dir, name, &text)?;
        }
        progress.line(format!(
            "Starting {:?} on {}",
            run.argv.join(" "),
            run.address
        ));
        let started = async {
            let mut running = process::spawn(&run)?;
            if let Err(e) =
                process::wait_listening(&run, &mut running, self.opts.ready_timeout).await
            {
                running.stop(Duration::from_secs(1)).await;
                return Err(e);
            }
            Ok(running)
        };
        let running = match started.await {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        progress.line(format!(
            "Listening on {} at {} (pid {})",
            ports_text(&run.ports),
            run.address,
            running.pid
        ));
        let sup = self.start_supervised(&spec.key, run.clone(), running);
        self.inner().insts.insert(
            spec.key.clone(),
            Inst {
                cluster,
                address: run.address,
                ports: run.ports,
                sup,
            },
        );
        Ok(())
    }

    async fn delete_app_inst(
        &self,
        key: &AppInstKey,
        progress: &dyn ProgressSink,
    ) -> Result<(), PlatformError> {
        let inst = self.inner().insts.remove(key);
        if let Some(i) = inst {
            progress.line("Stopping the instance's processes".into());
            i.sup.stop().await;
        } else if let Some(mut r) = process::adopt(&self.inst_dir(key)) {
            // Left by an earlier CRM and never adopted: stop it all the same.
            r.stop(Duration::from_secs(3)).await;
        }
        let _ = std::fs::remove_dir_all(self.inst_dir(key));
        let _ = self.changes.send(key.clone());
        Ok(())
    }

    async fn inventory(&self) -> Result<Inventory, PlatformError> {
        self.adopt_all().await
    }

    fn health(&self, key: &AppInstKey) -> HealthCheck {
        self.inner()
            .insts
            .get(key)
            .map_or(HealthCheck::Unknown, |i| *i.sup.health.borrow())
    }

    fn health_changes(&self) -> broadcast::Receiver<AppInstKey> {
        self.changes.subscribe()
    }

    async fn stop_all(&self) {
        let (insts, clusters) = {
            let mut inner = self.inner();
            (
                std::mem::take(&mut inner.insts),
                std::mem::take(&mut inner.clusters),
            )
        };
        for (k, i) in insts {
            i.sup.stop().await;
            let _ = std::fs::remove_dir_all(self.inst_dir(&k));
        }
        for (k, n) in clusters {
            if let Some(ns) = n.netns {
                net::delete_netns(&ns);
            }
            let _ = std::fs::remove_dir_all(self.cluster_dir(&k));
        }
        tracing::info!(cloudlet = %self.opts.cloudlet, "local platform stopped its workloads");
        let _ = part;
    }
}

fn meminfo_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The one-minute load average, rounded: the CPUs in use.
fn load_average() -> u64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0, |l| l.round() as u64)
}
