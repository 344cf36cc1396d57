//! Rejections: each validation refuses bad input with the field path in the message.

use edge_model::*;

use super::{app, app_inst, cloudlet, cloudlet_info, cluster_inst, objects};
use crate::convert::ConvertErrorKind;
use crate::pb;
use crate::pb::object::Obj;

/// Converts a wire object and returns the error text.
fn reject(o: pb::Object) -> String {
    Object::try_from(o).unwrap_err().to_string()
}

fn app_inst_with(f: impl FnOnce(&mut pb::AppInst)) -> pb::Object {
    let mut p = pb::AppInst::from(&app_inst());
    f(&mut p);
    pb::Object {
        obj: Some(Obj::AppInst(p)),
    }
}

#[test]
fn empty_key_components_are_rejected() {
    let e = reject(app_inst_with(|a| {
        a.cloudlet.as_mut().unwrap().organization.clear();
    }));
    assert_eq!(e, "app_inst.cloudlet.organization: must not be empty");
    let e = reject(app_inst_with(|a| a.app.as_mut().unwrap().version.clear()));
    assert_eq!(e, "app_inst.app.version: must not be empty");
    let e = reject(app_inst_with(|a| a.key.as_mut().unwrap().name.clear()));
    assert_eq!(e, "app_inst.key.name: must not be empty");
    let flavor = pb::Flavor {
        ram_mb: 1,
        ..Default::default()
    };
    let e = Flavor::try_from(flavor).unwrap_err().to_string();
    assert_eq!(e, "flavor.name: must not be empty");
    let e = OperatorCode::try_from(pb::OperatorCode {
        code: "1".into(),
        organization: String::new(),
    })
    .unwrap_err();
    assert_eq!(e.path, "operator_code.organization");
    let e = CloudletKey::try_from(pb::CloudletKey::default()).unwrap_err();
    assert_eq!(e.path, "cloudlet_key.organization");
}

#[test]
fn missing_keys_and_messages_are_rejected() {
    let e = reject(app_inst_with(|a| a.cloudlet = None));
    assert_eq!(e, "app_inst.cloudlet: is required");
    let mut c = pb::Cloudlet::from(&cloudlet());
    c.location = None;
    let e = Cloudlet::try_from(c).unwrap_err().to_string();
    assert_eq!(e, "cloudlet.location: is required");
    let mut i = pb::CloudletInfo::from(&cloudlet_info());
    i.key = None;
    assert_eq!(
        CloudletInfo::try_from(i).unwrap_err().path,
        "cloudlet_info.key"
    );
    let e = reject(pb::Object { obj: None });
    assert_eq!(e, "obj: is required");
    let e = ObjectKey::try_from(pb::ObjectKey { key: None }).unwrap_err();
    assert_eq!(e.path, "key");
}

#[test]
fn object_key_components_are_checked() {
    use pb::object_key::Key;
    let cases = [
        (
            Key::OperatorCode(pb::OperatorCodeKey::default()),
            "operator_code.code",
        ),
        (Key::Flavor(pb::FlavorKey::default()), "flavor.name"),
        (
            Key::Cloudlet(pb::CloudletKey::default()),
            "cloudlet.organization",
        ),
        (
            Key::CloudletInfo(pb::CloudletKey::default()),
            "cloudlet_info.organization",
        ),
        (Key::App(pb::AppKey::default()), "app.organization"),
        (
            Key::ClusterInst(pb::ClusterKey::default()),
            "cluster_inst.organization",
        ),
        (
            Key::AppInst(pb::AppInstKey::default()),
            "app_inst.organization",
        ),
    ];
    for (key, path) in cases {
        let e = ObjectKey::try_from(pb::ObjectKey { key: Some(key) }).unwrap_err();
        assert_eq!(e.path, path);
        assert_eq!(e.kind, ConvertErrorKind::Empty);
    }
}

#[test]
fn out_of_range_coordinates_are_rejected() {
    let mut c = pb::Cloudlet::from(&cloudlet());
    c.location.as_mut().unwrap().latitude = 91.0;
    let e = Cloudlet::try_from(c).unwrap_err();
    assert_eq!(e.path, "cloudlet.location.latitude");
    assert!(matches!(e.kind, ConvertErrorKind::Coord(_)));
    let mut s = pb::Settings::from(&Settings::default());
    s.network_location = Some(pb::NetworkLocation {
        kind: pb::network_location::Kind::Static as i32,
        latitude: 0.0,
        longitude: f64::NAN,
    });
    let e = Settings::try_from(s).unwrap_err();
    assert_eq!(e.path, "settings.network_location.longitude");
}

#[test]
fn unknown_enum_numbers_are_rejected() {
    let e = reject(app_inst_with(|a| a.health = 99));
    assert_eq!(e, "app_inst.health: unknown HealthCheck value 99");
    let e = reject(app_inst_with(|a| a.state = 16));
    assert!(e.starts_with("app_inst.state: unknown TrackedState"), "{e}");
    let e = reject(app_inst_with(|a| a.mapped_ports[1].proto = 7));
    assert_eq!(e, "app_inst.mapped_ports[1].proto: unknown LProto value 7");
    let mut c = pb::Cloudlet::from(&cloudlet());
    c.maintenance_state = 10;
    assert_eq!(
        Cloudlet::try_from(c).unwrap_err().path,
        "cloudlet.maintenance_state"
    );
    let mut c = pb::Cloudlet::from(&cloudlet());
    c.state = -1;
    assert_eq!(Cloudlet::try_from(c).unwrap_err().path, "cloudlet.state");
    let mut i = pb::CloudletInfo::from(&cloudlet_info());
    i.state = 8;
    assert_eq!(
        CloudletInfo::try_from(i).unwrap_err().path,
        "cloudlet_info.state"
    );
    let mut c = pb::ClusterInst::from(&cluster_inst());
    c.ip_access = 2; // retired IP_ACCESS_DEDICATED_OR_SHARED
    assert_eq!(
        ClusterInst::try_from(c).unwrap_err().path,
        "cluster_inst.ip_access"
    );
    let mut a = pb::App::from(&app());
    a.deployment = 6;
    assert_eq!(App::try_from(a).unwrap_err().path, "app.deployment");
    let mut s = pb::Settings::from(&Settings::default());
    s.network_location.as_mut().unwrap().kind = 2;
    assert_eq!(
        Settings::try_from(s).unwrap_err().path,
        "settings.network_location.kind"
    );
}

#[test]
fn object_kinds_zero_and_unknown() {
    let e = ObjectKind::try_from(pb::ObjectKind::Unspecified).unwrap_err();
    assert_eq!(e.kind, ConvertErrorKind::Unspecified("ObjectKind"));
    let e = crate::convert::kind_filter(9, "kind").unwrap_err();
    assert_eq!(e.to_string(), "kind: unknown ObjectKind value 9");
}

#[test]
fn bad_access_ports_are_rejected_through_the_grammar() {
    let mut a = pb::App::from(&app());
    a.access_ports = "tcp:80,tcp:22".into();
    let e = App::try_from(a).unwrap_err();
    assert_eq!(e.path, "app.access_ports");
    assert!(matches!(e.kind, ConvertErrorKind::Ports(_)));
    assert!(e.to_string().contains("tcp:22"), "{e}");
    let mut a = pb::App::from(&app());
    a.access_ports = "sctp:1".into();
    assert!(App::try_from(a).is_err());
}

#[test]
fn bad_ports_and_lists_are_rejected() {
    let e = reject(app_inst_with(|a| a.mapped_ports[0].proto = 0));
    assert_eq!(
        e,
        "app_inst.mapped_ports[0].proto: must be specified (0 is not a valid LProto)"
    );
    let e = reject(app_inst_with(|a| a.mapped_ports[0].internal_port = 0));
    assert!(
        e.starts_with("app_inst.mapped_ports[0].internal_port: "),
        "{e}"
    );
    let e = reject(app_inst_with(|a| a.mapped_ports[1].public_port = 70000));
    assert!(
        e.starts_with("app_inst.mapped_ports[1].public_port: "),
        "{e}"
    );
    let e = reject(app_inst_with(|a| a.mapped_ports[1].end_port = 9000));
    assert!(e.starts_with("app_inst.mapped_ports[1].end_port: "), "{e}");
    let mut a = pb::App::from(&app());
    a.official_fqdn = vec!["a.example".into(), String::new()];
    assert_eq!(App::try_from(a).unwrap_err().path, "app.official_fqdn[1]");
    let mut a = pb::App::from(&app());
    a.official_fqdn = vec!["a.example,b.example".into()];
    assert_eq!(App::try_from(a).unwrap_err().path, "app.official_fqdn[0]");
    let mut c = pb::Cloudlet::from(&cloudlet());
    c.alliance_orgs.push(String::new());
    assert_eq!(
        Cloudlet::try_from(c).unwrap_err().path,
        "cloudlet.alliance_orgs[1]"
    );
}

#[test]
fn bad_settings_are_rejected() {
    let base = || pb::Settings::from(&Settings::default());
    let mut s = base();
    s.very_close_km = -1.0;
    assert_eq!(
        Settings::try_from(s).unwrap_err().path,
        "settings.very_close_km"
    );
    let mut s = base();
    s.public_cloud_padding_km = f64::INFINITY;
    assert_eq!(
        Settings::try_from(s).unwrap_err().path,
        "settings.public_cloud_padding_km"
    );
    let mut s = base();
    s.app_dns_root.clear();
    assert_eq!(
        Settings::try_from(s).unwrap_err().path,
        "settings.app_dns_root"
    );
    let mut s = base();
    s.public_cloud_orgs.push(String::new());
    assert_eq!(
        Settings::try_from(s).unwrap_err().path,
        "settings.public_cloud_orgs[3]"
    );
}

/// Whatever bytes arrive, decoding then converting returns a value or an error, never panics.
#[test]
fn arbitrary_bytes_never_panic() {
    use prost::Message as _;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let samples: Vec<Vec<u8>> = objects()
        .iter()
        .map(|o| pb::Object::from(o).encode_to_vec())
        .collect();
    for round in 0..20_000 {
        let mut bytes = samples[round % samples.len()].clone();
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = bytes.len().max(1);
            let at = usize::try_from(seed % len as u64).unwrap();
            if let Some(b) = bytes.get_mut(at) {
                *b = seed.to_le_bytes()[3];
            }
        }
        if let Ok(o) = pb::Object::decode(bytes.as_slice()) {
            let _ = Object::try_from(o);
        }
    }
}
