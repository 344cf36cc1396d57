//! Field masks for updates: which fields of each kind may change, and copying the named fields
//! from a request object onto the stored one. Key fields, references and computed fields (an
//! instance's URI and ports) are not updatable.

use edge_model::{Object, ObjectKind};

use crate::error::ControlError;

/// Fields that fix where an object sits or that the controller computes: named in an update
/// mask they are refused (move an instance by deleting and re-creating it).
fn fixed(kind: ObjectKind) -> &'static [&'static str] {
    match kind {
        // node_address is the CRM's report, like an instance's health from the root LB.
        ObjectKind::ClusterInst => &["cloudlet", "ip_access", "node_address"],
        ObjectKind::AppInst => &[
            "app",
            "cloudlet",
            "cluster",
            "uri",
            "mapped_ports",
            "errors",
            // The CRM's report, like node_address.
            "platform_health",
        ],
        _ => &[],
    }
}

/// The fields of a kind an update may change: the wire's non-key fields (`edge_api`) less the
/// fixed ones.
pub fn updatable(kind: ObjectKind) -> Vec<&'static str> {
    edge_api::updatable_fields(kind)
        .iter()
        .copied()
        .filter(|f| !fixed(kind).contains(f))
        .collect()
}

/// Copies `fields` from `new` onto a clone of `cur` (same kind and key).
pub fn merge(cur: &Object, new: &Object, fields: &[String]) -> Result<Object, ControlError> {
    let kind = cur.kind();
    for f in fields {
        if !updatable(kind).contains(&f.as_str()) {
            return Err(ControlError::Invalid(format!(
                "field {f:?} of {kind} cannot be updated; updatable: {}",
                updatable(kind).join(", ")
            )));
        }
    }
    let has = |name: &str| fields.iter().any(|f| f == name);
    let mut out = cur.clone();
    macro_rules! copy {
        ($o:ident, $n:ident, $($field:ident),+) => {{
            $(
                if has(stringify!($field)) {
                    $o.$field = $n.$field.clone();
                }
            )+
        }};
    }
    match (&mut out, new) {
        (Object::OperatorCode(o), Object::OperatorCode(n)) => copy!(o, n, organization),
        (Object::Flavor(o), Object::Flavor(n)) => copy!(o, n, ram_mb, vcpus, disk_gb),
        (Object::Settings(o), Object::Settings(n)) => copy!(
            o,
            n,
            public_cloud_orgs,
            public_cloud_padding_km,
            very_close_km,
            randomize_very_close,
            network_location,
            app_dns_root
        ),
        (Object::Cloudlet(o), Object::Cloudlet(n)) => {
            copy!(
                o,
                n,
                location,
                platform_type,
                alliance_orgs,
                maintenance_state,
                state
            )
        }
        (Object::CloudletInfo(o), Object::CloudletInfo(n)) => copy!(
            o,
            n,
            state,
            errors,
            notify_id,
            rootlb_address,
            flavors,
            resources
        ),
        (Object::App(o), Object::App(n)) => copy!(
            o,
            n,
            deployment,
            image_path,
            access_ports,
            default_flavor,
            official_fqdn,
            android_package_name,
            auth_public_key,
            platform_app
        ),
        (Object::ClusterInst(o), Object::ClusterInst(n)) => {
            copy!(o, n, flavor, num_masters, num_nodes, state)
        }
        (Object::AppInst(o), Object::AppInst(n)) => copy!(o, n, state, health),
        _ => {
            return Err(ControlError::Invalid(
                "update object kind does not match".into(),
            ));
        }
    }
    if let Object::Settings(s) = &out {
        for (name, v) in [
            ("public_cloud_padding_km", s.public_cloud_padding_km),
            ("very_close_km", s.very_close_km),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(ControlError::Invalid(format!(
                    "settings.{name}: must be a finite number >= 0, got {v}"
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_and_computed_fields_are_not_updatable() {
        assert_eq!(updatable(ObjectKind::AppInst), ["state", "health"]);
        assert_eq!(
            updatable(ObjectKind::ClusterInst),
            ["flavor", "num_masters", "num_nodes", "state"]
        );
        assert_eq!(
            updatable(ObjectKind::App),
            edge_api::updatable_fields(ObjectKind::App)
        );
    }
}
