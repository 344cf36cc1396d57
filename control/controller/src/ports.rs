//! Public-port allocation on a cloudlet's shared root load balancer (upstream rules): a port
//! keeps its internal number unless that number is taken for its protocol (or reserved), else it
//! gets the first free port from 10000 up to 65000. Port ranges cannot be shared.

use std::collections::HashSet;

use edge_model::{AppInst, AppPort, LProto};

/// First port tried when the internal number is taken.
pub const SHARED_PORT_BEGIN: i32 = 10000;
/// Last port handed out.
pub const SHARED_PORT_END: i32 = 65000;
/// Never handed out on a shared root LB: SSH and the proxy metrics port.
pub const RESERVED: [i32; 2] = [22, 65121];

/// TCP and HTTP share one port space; UDP has its own.
fn space(p: LProto) -> u8 {
    match p {
        LProto::Udp => 1,
        _ => 0,
    }
}

/// Public ports in use on the shared LB with FQDN `fqdn`, by protocol space.
pub fn used_on_shared_lb<'a>(
    insts: impl Iterator<Item = &'a AppInst>,
    fqdn: &str,
) -> HashSet<(u8, i32)> {
    insts
        .filter(|i| i.uri == fqdn)
        .flat_map(|i| i.mapped_ports.iter())
        .map(|p| (space(p.proto), p.public_port))
        .collect()
}

/// Maps each access port to a free public port.
pub fn allocate(access: &[AppPort], used: &HashSet<(u8, i32)>) -> Result<Vec<AppPort>, String> {
    let mut taken = used.clone();
    let mut out = Vec::with_capacity(access.len());
    for p in access {
        if p.end_port != 0 && p.end_port != p.internal_port {
            return Err(format!(
                "port range {}-{} cannot be served by the shared root load balancer",
                p.internal_port, p.end_port
            ));
        }
        let s = space(p.proto);
        let free =
            |n: i32, taken: &HashSet<(u8, i32)>| !RESERVED.contains(&n) && !taken.contains(&(s, n));
        let public = if free(p.internal_port, &taken) {
            p.internal_port
        } else {
            (SHARED_PORT_BEGIN..=SHARED_PORT_END)
                .find(|&n| free(n, &taken))
                .ok_or_else(|| {
                    "no free public port left on the shared root load balancer".to_string()
                })?
        };
        taken.insert((s, public));
        out.push(AppPort {
            public_port: public,
            ..p.clone()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(proto: LProto, n: i32) -> AppPort {
        AppPort {
            proto,
            internal_port: n,
            public_port: n,
            ..AppPort::default()
        }
    }

    #[test]
    fn keeps_internal_numbers_when_free_and_scans_from_10000() {
        let used: HashSet<_> = [(0, 80), (0, 10000), (1, 443)].into_iter().collect();
        let got = allocate(
            &[
                port(LProto::Tcp, 80),
                port(LProto::Tcp, 443),
                port(LProto::Udp, 80),
                port(LProto::Tcp, 22),
            ],
            &used,
        )
        .unwrap();
        let publics: Vec<i32> = got.iter().map(|p| p.public_port).collect();
        // tcp:80 taken -> 10001 (10000 taken); tcp:443 free; udp:80 free (own space); 22 reserved.
        assert_eq!(publics, [10001, 443, 80, 10002]);
        assert!(got.iter().all(|p| p.internal_port != 0));
    }

    #[test]
    fn http_shares_the_tcp_space_and_ranges_are_refused() {
        let used: HashSet<_> = [(0, 8080)].into_iter().collect();
        let got = allocate(&[port(LProto::Http, 8080)], &used).unwrap();
        assert_eq!(got[0].public_port, 10000);
        let mut range = port(LProto::Tcp, 5000);
        range.end_port = 5002;
        assert!(
            allocate(&[range], &HashSet::new())
                .unwrap_err()
                .contains("5000-5002")
        );
    }

    #[test]
    fn exhaustion_is_an_error() {
        let used: HashSet<_> = (SHARED_PORT_BEGIN..=SHARED_PORT_END)
            .map(|n| (0, n))
            .chain([(0, 80)])
            .collect();
        assert!(allocate(&[port(LProto::Tcp, 80)], &used).is_err());
    }
}
