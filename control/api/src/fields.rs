//! Update field masks: `UpdateRequest.fields` lists snake_case field names of the object (the
//! proto field names), e.g. `access_ports`, `official_fqdn`, `maintenance_state`. Upstream uses
//! numeric paths (`"7"`); names are what people type into `edgectl` and read in logs.

use edge_model::ObjectKind;

use crate::convert::{ConvertError, ConvertErrorKind};

/// The fields of `kind` an update may change: everything but the key fields.
pub fn updatable_fields(kind: ObjectKind) -> &'static [&'static str] {
    match kind {
        ObjectKind::OperatorCode => &["organization"],
        ObjectKind::Flavor => &["ram_mb", "vcpus", "disk_gb"],
        ObjectKind::Settings => &[
            "public_cloud_orgs",
            "public_cloud_padding_km",
            "very_close_km",
            "randomize_very_close",
            "network_location",
            "app_dns_root",
        ],
        ObjectKind::Cloudlet => &[
            "location",
            "platform_type",
            "alliance_orgs",
            "maintenance_state",
            "state",
        ],
        ObjectKind::CloudletInfo => &[
            "state",
            "notify_id",
            "errors",
            "rootlb_address",
            "flavors",
            "resources",
        ],
        ObjectKind::App => &[
            "deployment",
            "image_path",
            "access_ports",
            "default_flavor",
            "official_fqdn",
            "android_package_name",
            "auth_public_key",
            "platform_app",
        ],
        ObjectKind::ClusterInst => &[
            "cloudlet",
            "flavor",
            "ip_access",
            "num_masters",
            "num_nodes",
            "state",
            "node_address",
        ],
        ObjectKind::AppInst => &[
            "app",
            "cloudlet",
            "cluster",
            "uri",
            "mapped_ports",
            "state",
            "health",
            "errors",
            "platform_health",
        ],
    }
}

/// The fields that name the object and so cannot be updated.
fn key_fields(kind: ObjectKind) -> &'static [&'static str] {
    match kind {
        ObjectKind::OperatorCode => &["code"],
        ObjectKind::Flavor => &["name"],
        ObjectKind::Settings => &[],
        _ => &["key"],
    }
}

/// Checks an update mask: not empty, every name an updatable field of `kind`. Repeated names are
/// harmless and accepted. Errors point at `fields[i]`.
pub fn check_update_fields(kind: ObjectKind, fields: &[String]) -> Result<(), ConvertError> {
    if fields.is_empty() {
        return Err(ConvertError::new("fields", ConvertErrorKind::Empty));
    }
    let allowed = updatable_fields(kind);
    for (i, f) in fields.iter().enumerate() {
        if allowed.contains(&f.as_str()) {
            continue;
        }
        let msg = if key_fields(kind).contains(&f.as_str()) {
            format!("`{f}` names the {kind} and cannot be updated")
        } else {
            format!(
                "{kind} has no updatable field {f:?}; expected one of {}",
                allowed.join(", ")
            )
        };
        return Err(ConvertError::new(
            format!("fields[{i}]"),
            ConvertErrorKind::Invalid(msg),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    use crate::pb;

    #[test]
    fn masks_are_checked() {
        let ok = ["access_ports".to_owned(), "official_fqdn".to_owned()];
        assert_eq!(check_update_fields(ObjectKind::App, &ok), Ok(()));
        let e = check_update_fields(ObjectKind::App, &[]).unwrap_err();
        assert_eq!(e.to_string(), "fields: must not be empty");
        let e = check_update_fields(ObjectKind::App, &["key".into()]).unwrap_err();
        assert!(e.to_string().contains("cannot be updated"), "{e}");
        let e =
            check_update_fields(ObjectKind::Flavor, &["ram_mb".into(), "ram".into()]).unwrap_err();
        assert_eq!(e.path, "fields[1]");
        assert!(e.to_string().contains("ram_mb, vcpus"), "{e}");
        let e = check_update_fields(ObjectKind::OperatorCode, &["code".into()]).unwrap_err();
        assert!(e.to_string().contains("cannot be updated"), "{e}");
    }

    /// Every updatable name is a field of the message, so a mask never names a typo.
    #[test]
    fn updatable_names_are_proto_fields() {
        let fds = prost_types_free_field_names();
        for kind in ObjectKind::ALL {
            let message = kind.as_str();
            let names = fds
                .iter()
                .find(|(m, _)| m == message)
                .map(|(_, f)| f.clone())
                .unwrap_or_default();
            assert!(!names.is_empty(), "no message {message}");
            for f in updatable_fields(kind).iter().chain(key_fields(kind)) {
                assert!(names.iter().any(|n| n == f), "{message}.{f}");
            }
            for n in &names {
                let listed = updatable_fields(kind).contains(&n.as_str())
                    || key_fields(kind).contains(&n.as_str());
                assert!(listed, "{message}.{n} is neither updatable nor a key");
            }
        }
    }

    /// (message name, field names) of objects.proto, decoded from the descriptor set with a
    /// minimal hand-written schema so the test needs no prost-types dependency.
    fn prost_types_free_field_names() -> Vec<(String, Vec<String>)> {
        #[derive(Clone, PartialEq, prost::Message)]
        struct Set {
            #[prost(message, repeated, tag = "1")]
            file: Vec<File>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct File {
            #[prost(message, repeated, tag = "4")]
            message_type: Vec<Msg>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct Msg {
            #[prost(string, tag = "1")]
            name: String,
            #[prost(message, repeated, tag = "2")]
            field: Vec<Field>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct Field {
            #[prost(string, tag = "1")]
            name: String,
        }
        let set = Set::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
        set.file
            .into_iter()
            .flat_map(|f| f.message_type)
            .map(|m| (m.name, m.field.into_iter().map(|f| f.name).collect()))
            .collect()
    }
}
