//! Round trips: domain → proto → bytes → proto → domain is the identity for every type.

use std::fmt::Debug;
use std::path::Path;

use edge_model::*;
use geodata::LatLon;
use prost::Message;

use super::ConvertError;
use crate::pb;

pub(crate) fn round_trip<D, P>(d: &D)
where
    D: PartialEq + Debug + TryFrom<P, Error = ConvertError>,
    P: for<'a> From<&'a D> + Message + Default,
{
    // Through bytes, so the encoding (not just the struct mapping) is covered.
    let bytes = P::from(d).encode_to_vec();
    let back = P::decode(bytes.as_slice()).unwrap();
    assert_eq!(&D::try_from(back).unwrap(), d);
}

pub(crate) fn cloudlet_key() -> CloudletKey {
    CloudletKey {
        organization: "telekom".into(),
        name: "frankfurt/1".into(),
    }
}

pub(crate) fn app() -> App {
    App {
        key: AppKey {
            organization: "AcmeAppCo".into(),
            name: "arena".into(),
            version: "2.3".into(),
        },
        deployment: DeploymentKind::Kubernetes,
        image_path: "registry.example.net/acme/arena:2.3".into(),
        access_ports: parse_access_ports("tcp:443:tls,udp:10000-10010:maxpktsize=1500,http:8080")
            .unwrap(),
        default_flavor: Some("x1.small".into()),
        official_fqdn: vec!["arena.example.com".into(), "arena2.example.com".into()],
        android_package_name: "com.acme.arena".into(),
        auth_public_key: Some("-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----".into()),
        platform_app: true,
    }
}

pub(crate) fn cloudlet() -> Cloudlet {
    Cloudlet {
        key: cloudlet_key(),
        location: LatLon::new(50.11, 8.68).unwrap(),
        platform_type: "fake".into(),
        alliance_orgs: vec!["vodafone".into()],
        maintenance_state: MaintenanceState::UnderMaintenance,
        state: CloudletState::Ready,
    }
}

pub(crate) fn cluster_inst() -> ClusterInst {
    ClusterInst {
        key: ClusterKey {
            organization: "AcmeAppCo".into(),
            name: "small".into(),
        },
        cloudlet: cloudlet_key(),
        flavor: Some("x1.small".into()),
        ip_access: IpAccess::Dedicated,
        num_masters: 1,
        num_nodes: 3,
        state: TrackedState::Updating,
        node_address: Some("10.1.2.3".parse().unwrap()),
    }
}

pub(crate) fn app_inst() -> AppInst {
    AppInst {
        key: AppInstKey {
            organization: "AcmeAppCo".into(),
            name: "arena-fra".into(),
        },
        app: app().key,
        cloudlet: cloudlet_key(),
        cluster: Some("small".into()),
        uri: "shared.frankfurt-1-telekom.eu.edge.example.net".into(),
        mapped_ports: vec![
            AppPort {
                proto: LProto::Tcp,
                internal_port: 443,
                public_port: 10443,
                tls: true,
                ..AppPort::default()
            },
            AppPort {
                proto: LProto::Udp,
                internal_port: 10000,
                end_port: 10010,
                public_port: 20000,
                nginx: true,
                max_pkt_size: 1500,
                fqdn_prefix: "arena-".into(),
                ..AppPort::default()
            },
        ],
        state: TrackedState::Ready,
        health: HealthCheck::ServerFail,
        platform_health: HealthCheck::Ok,
    }
}

pub(crate) fn cloudlet_info() -> CloudletInfo {
    CloudletInfo {
        key: cloudlet_key(),
        state: CloudletState::Offline,
        notify_id: 42,
        errors: vec!["lost the CRM".into()],
        rootlb_address: Some("192.0.2.7".parse().unwrap()),
        flavors: vec![Flavor {
            name: "x1.small".into(),
            ram_mb: 4096,
            vcpus: 2,
            disk_gb: 40,
        }],
        resources: CloudletResources {
            vcpus_max: 50,
            vcpus_used: 4,
            ram_mb_max: 40960,
            ram_mb_used: 8192,
            disk_gb_max: 5000,
            disk_gb_used: 80,
        },
    }
}

pub(crate) fn objects() -> Vec<Object> {
    vec![
        Object::OperatorCode(OperatorCode {
            code: "26201".into(),
            organization: "telekom".into(),
        }),
        Object::Flavor(Flavor {
            name: "x1.small".into(),
            ram_mb: 4096,
            vcpus: 2,
            disk_gb: 40,
        }),
        Object::Settings(Settings {
            network_location: NetworkLocation::Static(LatLon::new(-33.9, 151.2).unwrap()),
            randomize_very_close: false,
            ..Settings::default()
        }),
        Object::Cloudlet(cloudlet()),
        Object::CloudletInfo(cloudlet_info()),
        Object::App(app()),
        Object::ClusterInst(cluster_inst()),
        Object::AppInst(app_inst()),
    ]
}

#[test]
fn keys_round_trip() {
    round_trip::<CloudletKey, pb::CloudletKey>(&cloudlet_key());
    round_trip::<AppKey, pb::AppKey>(&app().key);
    round_trip::<ClusterKey, pb::ClusterKey>(&cluster_inst().key);
    round_trip::<AppInstKey, pb::AppInstKey>(&app_inst().key);
}

#[test]
fn each_object_type_round_trips_on_its_own() {
    for o in objects() {
        match &o {
            Object::OperatorCode(x) => round_trip::<_, pb::OperatorCode>(x),
            Object::Flavor(x) => round_trip::<_, pb::Flavor>(x),
            Object::Settings(x) => round_trip::<_, pb::Settings>(x),
            Object::Cloudlet(x) => round_trip::<_, pb::Cloudlet>(x),
            Object::CloudletInfo(x) => round_trip::<_, pb::CloudletInfo>(x),
            Object::App(x) => round_trip::<_, pb::App>(x),
            Object::ClusterInst(x) => round_trip::<_, pb::ClusterInst>(x),
            Object::AppInst(x) => round_trip::<_, pb::AppInst>(x),
        }
    }
    round_trip::<Settings, pb::Settings>(&Settings::default());
    for p in &app_inst().mapped_ports {
        round_trip::<AppPort, pb::AppPort>(p);
    }
}

#[test]
fn objects_and_object_keys_round_trip_for_every_kind() {
    let objects = objects();
    let kinds: Vec<_> = objects.iter().map(Object::kind).collect();
    assert_eq!(kinds, ObjectKind::ALL);
    for o in &objects {
        round_trip::<Object, pb::Object>(o);
        round_trip::<ObjectKey, pb::ObjectKey>(&o.key());
    }
}

#[test]
fn object_kinds_round_trip_and_field_numbers_match() {
    for k in ObjectKind::ALL {
        let wire = pb::ObjectKind::from(k);
        assert_eq!(ObjectKind::try_from(wire), Ok(k));
        assert_eq!(super::kind_filter(wire as i32, "kind"), Ok(Some(k)));
    }
    // The envelope's oneof field numbers equal the kind numbers (documented in the proto).
    for o in objects() {
        let bytes = pb::Object::from(&o).encode_to_vec();
        let tag = u32::from(bytes[0]) >> 3;
        assert_eq!(i64::from(tag), i64::from(crate::kind_to_wire(o.kind())));
    }
    assert_eq!(super::kind_filter(0, "kind"), Ok(None));
}

/// The generated enums carry the same numbers as edge-model's (which are the DME's).
#[test]
fn enums_round_trip_with_equal_wire_values() {
    macro_rules! check {
        ($($ty:ident),+) => {$(
            for v in $ty::ALL {
                let wire = pb::$ty::from(*v);
                assert_eq!(wire as i32, *v as i32, "{}", stringify!($ty));
                assert_eq!(wire.as_str_name(), v.wire_name());
                assert_eq!($ty::try_from(wire), Ok(*v));
            }
        )+};
    }
    check!(
        CloudletState,
        MaintenanceState,
        HealthCheck,
        TrackedState,
        LProto
    );
    for v in IpAccess::ALL {
        let wire = pb::IpAccess::from(*v);
        assert_eq!(wire as i32, v.wire_value());
        assert_eq!(IpAccess::try_from(wire), Ok(*v));
    }
    for v in DeploymentKind::ALL {
        let wire = pb::DeploymentKind::from(*v);
        assert_eq!(wire as i32, v.wire_value());
        assert_eq!(DeploymentKind::try_from(wire), Ok(*v));
    }
}

/// Unset optional enums mean the domain default, as in documents.
#[test]
fn zero_enums_mean_the_defaults() {
    let mut c = pb::ClusterInst::from(&cluster_inst());
    c.ip_access = 0;
    assert_eq!(
        ClusterInst::try_from(c).unwrap().ip_access,
        IpAccess::Shared
    );
    let mut a = pb::App::from(&app());
    a.deployment = 0;
    assert_eq!(App::try_from(a).unwrap().deployment, DeploymentKind::Docker);
    let mut s = pb::Settings::from(&Settings::default());
    s.network_location = None;
    assert_eq!(
        Settings::try_from(s).unwrap().network_location,
        NetworkLocation::GeoIp
    );
}

/// Everything the example region holds survives the wire.
#[test]
fn the_example_region_round_trips() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/region.yaml");
    let d = document::load(&path).unwrap();
    let objects = std::iter::once(Object::Settings(d.settings))
        .chain(d.operator_codes.into_iter().map(Object::from))
        .chain(d.flavors.into_iter().map(Object::from))
        .chain(d.cloudlets.into_iter().map(Object::from))
        .chain(d.apps.into_iter().map(Object::from))
        .chain(d.cluster_insts.into_iter().map(Object::from))
        .chain(d.app_insts.into_iter().map(Object::from));
    let mut n = 0;
    for o in objects {
        round_trip::<Object, pb::Object>(&o);
        n += 1;
    }
    assert!(n > 20, "{n}");
}

#[test]
fn app_inst_errors_are_wire_only() {
    let mut p = pb::AppInst::from(&app_inst());
    assert!(p.errors.is_empty());
    p.errors = vec!["boom".into()];
    assert_eq!(AppInst::try_from(p).unwrap(), app_inst());
}

mod reject;
