//! Operator codes, flavors, settings, cloudlets, cloudlet infos, and the `Object` envelope.

use edge_model::{
    Cloudlet, CloudletInfo, CloudletResources, CloudletState, Flavor, MaintenanceState,
    NetworkLocation, Object, OperatorCode, Settings,
};
use geodata::{CoordError, LatLon};

use super::keys::{cloudlet_key, field};
use super::{
    ConvertError, ConvertErrorKind, Within, non_empty, non_empty_list, required, wire_enum,
};
use crate::pb;
use crate::pb::network_location::Kind as NetKind;
use crate::pb::object::Obj;

/// `TryFrom<pb::X>` through a converter with unprefixed paths, prefixing the message's name.
macro_rules! try_from_via {
    ($($ty:ident => $convert:path, $name:literal;)+) => {$(
        impl TryFrom<pb::$ty> for $ty {
            type Error = ConvertError;

            fn try_from(m: pb::$ty) -> Result<Self, ConvertError> {
                $convert(m).within($name)
            }
        }
    )+};
}
pub(crate) use try_from_via;

try_from_via! {
    OperatorCode => operator_code, "operator_code";
    Flavor => flavor, "flavor";
    Settings => settings, "settings";
    Cloudlet => cloudlet, "cloudlet";
    CloudletInfo => cloudlet_info, "cloudlet_info";
}

fn operator_code(m: pb::OperatorCode) -> Result<OperatorCode, ConvertError> {
    Ok(OperatorCode {
        code: non_empty(m.code, "code")?,
        organization: non_empty(m.organization, "organization")?,
    })
}

impl From<&OperatorCode> for pb::OperatorCode {
    fn from(o: &OperatorCode) -> Self {
        Self {
            code: o.code.clone(),
            organization: o.organization.clone(),
        }
    }
}

fn flavor(m: pb::Flavor) -> Result<Flavor, ConvertError> {
    Ok(Flavor {
        name: non_empty(m.name, "name")?,
        ram_mb: m.ram_mb,
        vcpus: m.vcpus,
        disk_gb: m.disk_gb,
    })
}

impl From<&Flavor> for pb::Flavor {
    fn from(f: &Flavor) -> Self {
        Self {
            name: f.name.clone(),
            ram_mb: f.ram_mb,
            vcpus: f.vcpus,
            disk_gb: f.disk_gb,
        }
    }
}

/// A validated point; the error names the offending coordinate field.
pub(crate) fn lat_lon(lat: f64, lon: f64) -> Result<LatLon, ConvertError> {
    LatLon::new(lat, lon).map_err(|e| {
        let field = match e {
            CoordError::Latitude(_) => "latitude",
            CoordError::Longitude(_) => "longitude",
        };
        ConvertError::new(field, e.into())
    })
}

/// Distances feed matching arithmetic; NaN or a negative radius would silently break it.
fn non_negative(value: f64, field: &str) -> Result<f64, ConvertError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        let msg = format!("{value} must be a finite number >= 0");
        Err(ConvertError::new(field, ConvertErrorKind::Invalid(msg)))
    }
}

fn settings(m: pb::Settings) -> Result<Settings, ConvertError> {
    let network_location = match m.network_location {
        None => NetworkLocation::default(),
        Some(n) => network_location(n).within("network_location")?,
    };
    Ok(Settings {
        public_cloud_orgs: non_empty_list(m.public_cloud_orgs, "public_cloud_orgs")?,
        public_cloud_padding_km: non_negative(
            m.public_cloud_padding_km,
            "public_cloud_padding_km",
        )?,
        very_close_km: non_negative(m.very_close_km, "very_close_km")?,
        randomize_very_close: m.randomize_very_close,
        network_location,
        app_dns_root: non_empty(m.app_dns_root, "app_dns_root")?,
    })
}

fn network_location(n: pb::NetworkLocation) -> Result<NetworkLocation, ConvertError> {
    match NetKind::try_from(n.kind) {
        // Coordinates given with GEOIP are ignored rather than rejected: proto3 cannot tell
        // 0.0 from "not given".
        Ok(NetKind::Geoip) => Ok(NetworkLocation::GeoIp),
        Ok(NetKind::Static) => lat_lon(n.latitude, n.longitude).map(NetworkLocation::Static),
        Err(_) => Err(ConvertError::new(
            "kind",
            ConvertErrorKind::UnknownEnum {
                what: "NetworkLocation.Kind",
                value: n.kind,
            },
        )),
    }
}

impl From<&Settings> for pb::Settings {
    fn from(s: &Settings) -> Self {
        let network_location = match &s.network_location {
            NetworkLocation::GeoIp => pb::NetworkLocation {
                kind: NetKind::Geoip as i32,
                latitude: 0.0,
                longitude: 0.0,
            },
            NetworkLocation::Static(p) => pb::NetworkLocation {
                kind: NetKind::Static as i32,
                latitude: p.lat(),
                longitude: p.lon(),
            },
        };
        Self {
            public_cloud_orgs: s.public_cloud_orgs.clone(),
            public_cloud_padding_km: s.public_cloud_padding_km,
            very_close_km: s.very_close_km,
            randomize_very_close: s.randomize_very_close,
            network_location: Some(network_location),
            app_dns_root: s.app_dns_root.clone(),
        }
    }
}

fn cloudlet(m: pb::Cloudlet) -> Result<Cloudlet, ConvertError> {
    let loc = required(m.location, "location")?;
    Ok(Cloudlet {
        key: field(m.key, "key", cloudlet_key)?,
        location: lat_lon(loc.latitude, loc.longitude).within("location")?,
        platform_type: m.platform_type,
        alliance_orgs: non_empty_list(m.alliance_orgs, "alliance_orgs")?,
        maintenance_state: wire_enum(
            m.maintenance_state,
            "maintenance_state",
            "MaintenanceState",
            MaintenanceState::from_wire,
        )?,
        state: wire_enum(m.state, "state", "CloudletState", CloudletState::from_wire)?,
    })
}

impl From<&Cloudlet> for pb::Cloudlet {
    fn from(c: &Cloudlet) -> Self {
        Self {
            key: Some((&c.key).into()),
            location: Some(pb::Loc {
                latitude: c.location.lat(),
                longitude: c.location.lon(),
            }),
            platform_type: c.platform_type.clone(),
            alliance_orgs: c.alliance_orgs.clone(),
            maintenance_state: c.maintenance_state as i32,
            state: c.state as i32,
        }
    }
}

fn cloudlet_info(m: pb::CloudletInfo) -> Result<CloudletInfo, ConvertError> {
    let rootlb_address = match m.rootlb_address.as_str() {
        "" => None,
        s => Some(s.parse().map_err(|_| {
            ConvertError::new(
                "rootlb_address",
                ConvertErrorKind::Invalid(format!("{s:?} is not an IP address")),
            )
        })?),
    };
    let flavors = m
        .flavors
        .into_iter()
        .enumerate()
        .map(|(i, f)| flavor(f).within(&format!("flavors[{i}]")))
        .collect::<Result<_, _>>()?;
    let r = m.resources.unwrap_or_default();
    Ok(CloudletInfo {
        key: field(m.key, "key", cloudlet_key)?,
        state: wire_enum(m.state, "state", "CloudletState", CloudletState::from_wire)?,
        notify_id: m.notify_id,
        errors: m.errors,
        rootlb_address,
        flavors,
        resources: CloudletResources {
            vcpus_max: r.vcpus_max,
            vcpus_used: r.vcpus_used,
            ram_mb_max: r.ram_mb_max,
            ram_mb_used: r.ram_mb_used,
            disk_gb_max: r.disk_gb_max,
            disk_gb_used: r.disk_gb_used,
        },
    })
}

impl From<&CloudletInfo> for pb::CloudletInfo {
    fn from(c: &CloudletInfo) -> Self {
        let r = &c.resources;
        Self {
            key: Some((&c.key).into()),
            state: c.state as i32,
            notify_id: c.notify_id,
            errors: c.errors.clone(),
            rootlb_address: c.rootlb_address.map(|a| a.to_string()).unwrap_or_default(),
            flavors: c.flavors.iter().map(Into::into).collect(),
            resources: Some(pb::CloudletResources {
                vcpus_max: r.vcpus_max,
                vcpus_used: r.vcpus_used,
                ram_mb_max: r.ram_mb_max,
                ram_mb_used: r.ram_mb_used,
                disk_gb_max: r.disk_gb_max,
                disk_gb_used: r.disk_gb_used,
            }),
        }
    }
}

/// Paths start with the oneof field name, which is the object's own snake_case name.
impl TryFrom<pb::Object> for Object {
    type Error = ConvertError;

    fn try_from(m: pb::Object) -> Result<Self, ConvertError> {
        let obj = m
            .obj
            .ok_or_else(|| ConvertError::new("obj", ConvertErrorKind::Missing))?;
        Ok(match obj {
            Obj::OperatorCode(o) => Self::OperatorCode(o.try_into()?),
            Obj::Flavor(o) => Self::Flavor(o.try_into()?),
            Obj::Settings(o) => Self::Settings(o.try_into()?),
            Obj::Cloudlet(o) => Self::Cloudlet(o.try_into()?),
            Obj::CloudletInfo(o) => Self::CloudletInfo(o.try_into()?),
            Obj::App(o) => Self::App(o.try_into()?),
            Obj::ClusterInst(o) => Self::ClusterInst(o.try_into()?),
            Obj::AppInst(o) => Self::AppInst(o.try_into()?),
        })
    }
}

impl From<&Object> for pb::Object {
    fn from(o: &Object) -> Self {
        let obj = match o {
            Object::OperatorCode(o) => Obj::OperatorCode(o.into()),
            Object::Flavor(o) => Obj::Flavor(o.into()),
            Object::Settings(o) => Obj::Settings(o.into()),
            Object::Cloudlet(o) => Obj::Cloudlet(o.into()),
            Object::CloudletInfo(o) => Obj::CloudletInfo(o.into()),
            Object::App(o) => Obj::App(o.into()),
            Object::ClusterInst(o) => Obj::ClusterInst(o.into()),
            Object::AppInst(o) => Obj::AppInst(o.into()),
        };
        Self { obj: Some(obj) }
    }
}
