//! A deployment document as a list of objects and back, and what an update must change.

use edge_model::{Deployment, Object, ObjectKind, Settings};

/// The document's objects in dependency order (parents first).
pub fn document_objects(doc: &Deployment) -> Vec<Object> {
    let mut out: Vec<Object> = Vec::new();
    if doc.settings != Settings::default() {
        out.push(Object::Settings(doc.settings.clone()));
    }
    out.extend(doc.operator_codes.iter().cloned().map(Object::OperatorCode));
    out.extend(doc.flavors.iter().cloned().map(Object::Flavor));
    out.extend(doc.cloudlets.iter().cloned().map(Object::Cloudlet));
    out.extend(doc.cluster_insts.iter().cloned().map(Object::ClusterInst));
    out.extend(doc.apps.iter().cloned().map(Object::App));
    out.extend(doc.app_insts.iter().cloned().map(Object::AppInst));
    out.sort_by_key(|o| o.kind().dependency_rank());
    out
}

/// A document holding `objects` (what `show -o yaml` prints). The region is the controller's.
pub fn document_from(region: &str, objects: Vec<Object>) -> Deployment {
    let mut d = Deployment {
        region: region.to_string(),
        settings: Settings::default(),
        operator_codes: Vec::new(),
        flavors: Vec::new(),
        cloudlets: Vec::new(),
        apps: Vec::new(),
        cluster_insts: Vec::new(),
        app_insts: Vec::new(),
    };
    for o in objects {
        match o {
            Object::Settings(s) => d.settings = s,
            Object::OperatorCode(x) => d.operator_codes.push(x),
            Object::Flavor(x) => d.flavors.push(x),
            Object::Cloudlet(x) => d.cloudlets.push(x),
            Object::App(x) => d.apps.push(x),
            Object::ClusterInst(x) => d.cluster_insts.push(x),
            Object::AppInst(x) => d.app_insts.push(x),
            Object::CloudletInfo(_) => {}
        }
    }
    d
}

/// The fields a user's document may change on an existing object (not lifecycle or computed
/// state, which the controller and CRMs own) and that differ between `cur` and `want`.
pub fn updatable_diff(cur: &Object, want: &Object) -> Vec<String> {
    let mut fields = Vec::new();
    let mut check = |name: &str, differs: bool| {
        if differs {
            fields.push(name.to_string());
        }
    };
    match (cur, want) {
        (Object::Settings(a), Object::Settings(b)) => {
            check(
                "public_cloud_orgs",
                a.public_cloud_orgs != b.public_cloud_orgs,
            );
            check(
                "public_cloud_padding_km",
                a.public_cloud_padding_km != b.public_cloud_padding_km,
            );
            check("very_close_km", a.very_close_km != b.very_close_km);
            check(
                "randomize_very_close",
                a.randomize_very_close != b.randomize_very_close,
            );
            check("network_location", a.network_location != b.network_location);
            check("app_dns_root", a.app_dns_root != b.app_dns_root);
        }
        (Object::OperatorCode(a), Object::OperatorCode(b)) => {
            check("organization", a.organization != b.organization)
        }
        (Object::Flavor(a), Object::Flavor(b)) => {
            check("ram_mb", a.ram_mb != b.ram_mb);
            check("vcpus", a.vcpus != b.vcpus);
            check("disk_gb", a.disk_gb != b.disk_gb);
        }
        (Object::Cloudlet(a), Object::Cloudlet(b)) => {
            check("location", a.location != b.location);
            check("platform_type", a.platform_type != b.platform_type);
            check("alliance_orgs", a.alliance_orgs != b.alliance_orgs);
            check(
                "maintenance_state",
                a.maintenance_state != b.maintenance_state,
            );
        }
        (Object::App(a), Object::App(b)) => {
            check("deployment", a.deployment != b.deployment);
            check("image_path", a.image_path != b.image_path);
            check("access_ports", a.access_ports != b.access_ports);
            check("default_flavor", a.default_flavor != b.default_flavor);
            check("official_fqdn", a.official_fqdn != b.official_fqdn);
            check(
                "android_package_name",
                a.android_package_name != b.android_package_name,
            );
            check("auth_public_key", a.auth_public_key != b.auth_public_key);
            check("platform_app", a.platform_app != b.platform_app);
        }
        (Object::ClusterInst(a), Object::ClusterInst(b)) => {
            check("flavor", a.flavor != b.flavor);
            check("num_masters", a.num_masters != b.num_masters);
            check("num_nodes", a.num_nodes != b.num_nodes);
        }
        _ => {}
    }
    let _ = ObjectKind::ALL;
    fields
}
