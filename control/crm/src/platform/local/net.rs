//! A local cluster's network: its own network namespace joined to the host by a veth pair
//! where the host allows it (root and `ip`), as upstream's clusters have their own network
//! behind the root LB; otherwise a loopback address of its own (every 127.0.0.0/8 address is
//! local on Linux, so nothing needs configuring and two clusters never share a port space).

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use super::PlatformError;

/// How clusters are isolated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Isolation {
    /// A network namespace per cluster when running as root with `ip` available, else loopback.
    #[default]
    Auto,
    /// A network namespace and veth pair per cluster (needs root).
    Netns,
    /// A distinct 127.x.y.z address per cluster.
    Loopback,
}

/// Where a cluster's workloads listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNet {
    /// The address the root LB sends traffic to.
    pub address: IpAddr,
    /// The namespace the workloads run in, if any.
    pub netns: Option<String>,
}

impl Isolation {
    /// Whether clusters get namespaces on this host.
    pub fn uses_netns(self) -> bool {
        match self {
            Self::Netns => true,
            Self::Loopback => false,
            Self::Auto => nix::unistd::geteuid().is_root() && ip_available(),
        }
    }
}

fn ip_available() -> bool {
    Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A loopback address for a cluster from `seed` (a random number the caller keeps): in
/// 127.100.0.0 – 127.199.255.255, away from 127.0.0.1 and friends. `taken` says whether an
/// address is already some cluster's; the next one is tried then.
pub fn loopback_address(seed: u32, taken: impl Fn(IpAddr) -> bool) -> IpAddr {
    for i in 0..1024u32 {
        let h = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9));
        let a = IpAddr::V4(Ipv4Addr::new(
            127,
            100 + (h % 100) as u8,
            (h >> 8) as u8,
            1 + ((h >> 16) % 254) as u8,
        ));
        if !taken(a) {
            return a;
        }
    }
    IpAddr::V4(Ipv4Addr::new(127, 100, 0, 1))
}

/// Creates namespace `ep-<seed>` with a veth pair to the host on a /30 of 10.200.0.0/13 chosen
/// from `seed`; returns the namespace side's address.
pub fn create_netns(seed: u32) -> Result<ClusterNet, PlatformError> {
    let ns = format!("ep-{seed:08x}");
    let host_if = format!("veh{seed:08x}");
    let ns_if = format!("ven{seed:08x}");
    let block = seed % (8 * 256 * 64);
    let (b, c, d) = (
        200 + (block / (256 * 64)) as u8,
        ((block / 64) % 256) as u8,
        ((block % 64) * 4) as u8,
    );
    let host = format!("10.{b}.{c}.{}", d + 1);
    let inner = Ipv4Addr::new(10, b, c, d + 2);
    let steps: [&[&str]; 8] = [
        &["netns", "add", &ns],
        &[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ],
        &["link", "set", &ns_if, "netns", &ns],
        &["addr", "add", &format!("{host}/30"), "dev", &host_if],
        &["link", "set", &host_if, "up"],
        &[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{inner}/30"),
            "dev",
            &ns_if,
        ],
        &["-n", &ns, "link", "set", &ns_if, "up"],
        &["-n", &ns, "link", "set", "lo", "up"],
    ];
    for args in steps {
        if let Err(e) = ip(args) {
            delete_netns(&ns);
            return Err(e);
        }
    }
    Ok(ClusterNet {
        address: IpAddr::V4(inner),
        netns: Some(ns),
    })
}

/// Removes a namespace (and with it its veth pair); best effort.
pub fn delete_netns(ns: &str) {
    let _ = ip(&["netns", "del", ns]);
    let host_if = ns.replacen("ep-", "veh", 1);
    let _ = ip(&["link", "del", &host_if]);
}

/// Whether namespace `ns` exists.
pub fn netns_exists(ns: &str) -> bool {
    std::path::Path::new("/run/netns").join(ns).exists()
}

fn ip(args: &[&str]) -> Result<(), PlatformError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| PlatformError::Io {
            what: format!("running ip {}", args.join(" ")),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PlatformError::Invalid(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_stay_in_their_range_and_skip_taken_ones() {
        for seed in [0, 1, 0xFFFF_FFFF, 0x1234_5678] {
            let a = loopback_address(seed, |_| false);
            let IpAddr::V4(v) = a else { panic!() };
            let [a0, a1, _, a3] = v.octets();
            assert_eq!(a0, 127);
            assert!((100..200).contains(&a1), "{v}");
            assert!(a3 != 0 && a3 != 255, "{v}");
        }
        let first = loopback_address(42, |_| false);
        let second = loopback_address(42, |a| a == first);
        assert_ne!(first, second);
    }
}
