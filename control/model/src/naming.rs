//! DNS labels and FQDNs of cloudlets, clusters and apps (control-plane reference §4.6).
//!
//! Labels follow upstream: cloudlet `<name>-<org>`, cluster `<cluster>-<org>`, app
//! `<name><version>-<org>` (so `someapplication1` 1.0 of `AcmeAppCo` is
//! `someapplication110-acmeappco`), all sanitised to lower-case RFC 1123 labels. FQDNs are
//! `<label>.<cloudlet-label>.<region>.<app_dns_root>`; the shared root LB is
//! `shared.<cloudlet-label>.<region>.<app_dns_root>`.
//!
//! Upstream also makes labels unique per cloudlet (etcd reservations); that is the controller's
//! job, not these pure functions'.

use crate::types::{AppKey, CloudletKey, ClusterKey};

/// Longest DNS label (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// Sanitises text into a DNS label as upstream's `DNSSanitize` does: lower-case, `_`, space and
/// `&` become `-`, and `.`, `,`, `!` disappear. Beyond upstream, every other character outside
/// `[a-z0-9-]` is dropped, leading/trailing `-` are trimmed and the label is cut to 63 bytes, so
/// the result is always a valid label or empty.
pub fn dns_sanitize(text: &str) -> String {
    let mapped: String = text
        .chars()
        .filter_map(|c| match c.to_ascii_lowercase() {
            '_' | ' ' | '&' => Some('-'),
            c @ ('a'..='z' | '0'..='9' | '-') => Some(c),
            _ => None,
        })
        .collect();
    let mut label = mapped.trim_matches('-').to_owned();
    label.truncate(MAX_LABEL_LEN);
    label.trim_end_matches('-').to_owned()
}

/// `<name>-<org>` of a cloudlet, e.g. `frankfurt-1-telekom`.
pub fn cloudlet_dns_label(key: &CloudletKey) -> String {
    dns_sanitize(&format!("{}-{}", key.name, key.organization))
}

/// `<cluster>-<org>` of a cluster, e.g. `smallcluster-acmeappco`.
pub fn cluster_dns_label(key: &ClusterKey) -> String {
    dns_sanitize(&format!("{}-{}", key.name, key.organization))
}

/// `<name><version>-<org>` of an app, e.g. `someapplication110-acmeappco`.
pub fn app_dns_label(key: &AppKey) -> String {
    dns_sanitize(&format!("{}{}-{}", key.name, key.version, key.organization))
}

/// `<cloudlet-label>.<region>.<app_dns_root>`: the domain every name on a cloudlet ends in.
pub fn cloudlet_domain(cloudlet: &CloudletKey, region: &str, app_dns_root: &str) -> String {
    format!(
        "{}.{}.{}",
        cloudlet_dns_label(cloudlet),
        dns_sanitize(region),
        app_dns_root.trim_matches('.').to_ascii_lowercase()
    )
}

/// FQDN of a cloudlet's shared root load balancer.
pub fn shared_root_lb_fqdn(cloudlet: &CloudletKey, region: &str, app_dns_root: &str) -> String {
    format!("shared.{}", cloudlet_domain(cloudlet, region, app_dns_root))
}

/// FQDN of a dedicated cluster's load balancer.
pub fn cluster_fqdn(
    cluster: &ClusterKey,
    cloudlet: &CloudletKey,
    region: &str,
    app_dns_root: &str,
) -> String {
    format!(
        "{}.{}",
        cluster_dns_label(cluster),
        cloudlet_domain(cloudlet, region, app_dns_root)
    )
}

/// FQDN of an app instance when nothing else is known: what a standalone document uses when an
/// app instance gives no `uri`.
pub fn app_inst_fqdn(
    app: &AppKey,
    cloudlet: &CloudletKey,
    region: &str,
    app_dns_root: &str,
) -> String {
    format!(
        "{}.{}",
        app_dns_label(app),
        cloudlet_domain(cloudlet, region, app_dns_root)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppKey {
        AppKey {
            organization: "AcmeAppCo".into(),
            name: "someapplication1".into(),
            version: "1.0".into(),
        }
    }

    fn cloudlet() -> CloudletKey {
        CloudletKey {
            organization: "dmuus".into(),
            name: "dmuus-cloud-1".into(),
        }
    }

    #[test]
    fn labels_match_upstream_examples() {
        assert_eq!(app_dns_label(&app()), "someapplication110-acmeappco");
        assert_eq!(cloudlet_dns_label(&cloudlet()), "dmuus-cloud-1-dmuus");
        let cluster = ClusterKey {
            organization: "AcmeAppCo".into(),
            name: "SmallCluster".into(),
        };
        assert_eq!(cluster_dns_label(&cluster), "smallcluster-acmeappco");
        assert_eq!(
            shared_root_lb_fqdn(&cloudlet(), "local", "localtest.net"),
            "shared.dmuus-cloud-1-dmuus.local.localtest.net"
        );
        assert_eq!(
            cluster_fqdn(&cluster, &cloudlet(), "local", "localtest.net"),
            "smallcluster-acmeappco.dmuus-cloud-1-dmuus.local.localtest.net"
        );
        assert_eq!(
            app_inst_fqdn(&app(), &cloudlet(), "EU", "Edge.Example.net"),
            "someapplication110-acmeappco.dmuus-cloud-1-dmuus.eu.edge.example.net"
        );
    }

    #[test]
    fn sanitising_yields_valid_labels() {
        assert_eq!(dns_sanitize("My App_v2 & Co, Inc.!"), "my-app-v2---co-inc");
        assert_eq!(dns_sanitize("--Zürich--"), "zrich");
        assert_eq!(dns_sanitize("!!!"), "");
        let long = dns_sanitize(&"a-".repeat(100));
        assert!(long.len() <= MAX_LABEL_LEN && !long.ends_with('-'));
    }
}
