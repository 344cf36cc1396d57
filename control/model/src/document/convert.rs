//! Raw document → validated domain types: settings, operator codes, flavors and cloudlets here,
//! apps and instances in `instances`. Sections are converted in dependency order, so a
//! reference is checked against objects that are already valid.

use std::collections::HashSet;

use geodata::{CoordError, LatLon};

use super::check::{Seen, enum_or, is_label, line_of, non_empty, non_negative};
use super::instances::{self, Refs};
use super::raw::{
    RawCloudlet, RawDocument, RawFlavor, RawLocation, RawNetworkLocation, RawOperatorCode,
    RawOrgName, RawSettings, S,
};
use super::{DEFAULT_REGION, Deployment, DocumentError, ErrorKind, VERSION};
use crate::types::{
    Cloudlet, CloudletKey, CloudletState, Flavor, MaintenanceState, NetworkLocation, OperatorCode,
    Settings,
};

pub(super) fn convert(raw: &RawDocument) -> Result<Deployment, DocumentError> {
    check_version(raw.version.as_ref())?;
    let region = region(raw.region.as_ref())?;
    let settings = raw
        .settings
        .as_ref()
        .map_or_else(|| Ok(Settings::default()), settings)?;
    let operator_codes = operator_codes(&raw.operator_codes)?;
    let flavors = flavors(&raw.flavors)?;
    let cloudlets = cloudlets(&raw.cloudlets)?;
    let mut refs = Refs {
        flavors: flavors.iter().map(|f| f.name.clone()).collect(),
        cloudlets: cloudlets.iter().map(|c| c.key.clone()).collect(),
        ..Refs::default()
    };
    let apps = instances::apps(&raw.apps, &mut refs)?;
    let cluster_insts = instances::cluster_insts(&raw.cluster_insts, &mut refs)?;
    let app_insts = instances::app_insts(&raw.app_insts, &refs, &region, &settings)?;
    Ok(Deployment {
        region,
        settings,
        operator_codes,
        flavors,
        cloudlets,
        apps,
        cluster_insts,
        app_insts,
    })
}

fn check_version(version: Option<&S<i64>>) -> Result<(), DocumentError> {
    match version {
        None => Err(DocumentError::at(
            "version",
            None,
            ErrorKind::Version(format!(
                "missing; the document must start with `version: {VERSION}`"
            )),
        )),
        Some(v) if v.value != VERSION => Err(DocumentError::at(
            "version",
            line_of(v),
            ErrorKind::Version(format!(
                "unsupported version {}; the only version is {VERSION}",
                v.value
            )),
        )),
        Some(_) => Ok(()),
    }
}

/// The region goes into every generated FQDN, so it must be usable as a DNS label.
fn region(raw: Option<&S<String>>) -> Result<String, DocumentError> {
    let Some(r) = raw else {
        return Ok(DEFAULT_REGION.to_owned());
    };
    if !is_label(&r.value) {
        let msg = format!(
            "region `{}` must be a DNS label (letters, digits, `-`)",
            r.value
        );
        return Err(DocumentError::at(
            "region",
            line_of(r),
            ErrorKind::Invalid(msg),
        ));
    }
    Ok(r.value.clone())
}

fn settings(raw: &S<RawSettings>) -> Result<Settings, DocumentError> {
    let defaults = Settings::default();
    let s = &raw.value;
    let public_cloud_orgs = match &s.public_cloud_orgs {
        None => defaults.public_cloud_orgs,
        Some(list) => strings(list, "settings.public_cloud_orgs")?,
    };
    let app_dns_root = match &s.app_dns_root {
        None => defaults.app_dns_root,
        Some(root) if !root.value.is_empty() && root.value.split('.').all(is_label) => {
            root.value.clone()
        }
        Some(root) => {
            let msg = format!(
                "`{}` is not a DNS name (dot-separated labels of letters, digits, `-`)",
                root.value
            );
            return Err(DocumentError::at(
                "settings.app_dns_root",
                line_of(root),
                ErrorKind::Invalid(msg),
            ));
        }
    };
    Ok(Settings {
        public_cloud_orgs,
        public_cloud_padding_km: non_negative(
            s.public_cloud_padding_km.as_ref(),
            "settings.public_cloud_padding_km",
            defaults.public_cloud_padding_km,
        )?,
        very_close_km: non_negative(
            s.very_close_km.as_ref(),
            "settings.very_close_km",
            defaults.very_close_km,
        )?,
        randomize_very_close: s
            .randomize_very_close
            .unwrap_or(defaults.randomize_very_close),
        network_location: match &s.network_location {
            None => defaults.network_location,
            Some(n) => network_location(n)?,
        },
        app_dns_root,
    })
}

fn network_location(raw: &S<RawNetworkLocation>) -> Result<NetworkLocation, DocumentError> {
    const PATH: &str = "settings.network_location";
    let n = &raw.value;
    match (n.kind.value.as_str(), &n.latitude, &n.longitude) {
        ("geoip", None, None) => Ok(NetworkLocation::GeoIp),
        ("geoip", _, _) => Err(DocumentError::at(
            PATH,
            line_of(raw),
            ErrorKind::Invalid("latitude/longitude are only for kind static".into()),
        )),
        ("static", Some(lat), Some(lon)) => Ok(NetworkLocation::Static(lat_lon(lat, lon, PATH)?)),
        ("static", _, _) => Err(DocumentError::at(
            PATH,
            line_of(raw),
            ErrorKind::Invalid("kind static needs latitude and longitude".into()),
        )),
        (other, _, _) => Err(DocumentError::at(
            format!("{PATH}.kind"),
            line_of(&n.kind),
            ErrorKind::Invalid(format!("unknown kind `{other}`; expected geoip or static")),
        )),
    }
}

/// Validates a coordinate, pointing at the offending field.
fn lat_lon(lat: &S<f64>, lon: &S<f64>, path: &str) -> Result<LatLon, DocumentError> {
    LatLon::new(lat.value, lon.value).map_err(|e| {
        let (field, at) = match e {
            CoordError::Latitude(_) => ("latitude", lat),
            CoordError::Longitude(_) => ("longitude", lon),
        };
        DocumentError::at(format!("{path}.{field}"), line_of(at), e.into())
    })
}

/// A list of non-empty strings.
fn strings(list: &[S<String>], path: &str) -> Result<Vec<String>, DocumentError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            non_empty(&s.value, &format!("{path}[{i}]"), line_of(s)).map(|()| s.value.clone())
        })
        .collect()
}

fn operator_codes(raw: &[S<RawOperatorCode>]) -> Result<Vec<OperatorCode>, DocumentError> {
    let mut seen = Seen::new("operator code");
    let mut out = Vec::with_capacity(raw.len());
    for (i, item) in raw.iter().enumerate() {
        let (path, at) = (format!("operator_codes[{i}]"), line_of(item));
        let c = &item.value;
        non_empty(&c.code, &format!("{path}.code"), at)?;
        non_empty(&c.organization, &format!("{path}.organization"), at)?;
        seen.insert(&c.code, &format!("{path}.code"), at)?;
        out.push(OperatorCode {
            code: c.code.clone(),
            organization: c.organization.clone(),
        });
    }
    Ok(out)
}

fn flavors(raw: &[S<RawFlavor>]) -> Result<Vec<Flavor>, DocumentError> {
    let mut seen = Seen::new("flavor");
    let mut out = Vec::with_capacity(raw.len());
    for (i, item) in raw.iter().enumerate() {
        let (path, at) = (format!("flavors[{i}].name"), line_of(item));
        let f = &item.value;
        non_empty(&f.name, &path, at)?;
        seen.insert(&f.name, &path, at)?;
        out.push(Flavor {
            name: f.name.clone(),
            ram_mb: f.ram_mb,
            vcpus: f.vcpus,
            disk_gb: f.disk_gb,
        });
    }
    Ok(out)
}

fn cloudlets(raw: &[S<RawCloudlet>]) -> Result<Vec<Cloudlet>, DocumentError> {
    let mut seen = Seen::new("cloudlet");
    let mut out = Vec::with_capacity(raw.len());
    for (i, item) in raw.iter().enumerate() {
        let path = format!("cloudlets[{i}]");
        let c = &item.value;
        let key = cloudlet_key(&c.key, &format!("{path}.key"))?;
        seen.insert(&key, &format!("{path}.key"), line_of(&c.key))?;
        let loc: &RawLocation = &c.location.value;
        let platform_type = match &c.platform_type {
            Some(p) => non_empty(&p.value, &format!("{path}.platform_type"), line_of(p))
                .map(|()| p.value.clone())?,
            None => "fake".to_owned(),
        };
        out.push(Cloudlet {
            location: lat_lon(&loc.latitude, &loc.longitude, &format!("{path}.location"))?,
            platform_type,
            alliance_orgs: strings(&c.alliance_orgs, &format!("{path}.alliance_orgs"))?,
            maintenance_state: enum_or(
                c.maintenance_state.as_ref(),
                &format!("{path}.maintenance_state"),
                MaintenanceState::NormalOperation,
            )?,
            state: enum_or(
                c.state.as_ref(),
                &format!("{path}.state"),
                CloudletState::Ready,
            )?,
            key,
        });
    }
    Ok(out)
}

/// A cloudlet key (also used for the `cloudlet` reference fields) with non-empty parts.
pub(super) fn cloudlet_key(raw: &S<RawOrgName>, path: &str) -> Result<CloudletKey, DocumentError> {
    let (organization, name) = org_name(raw, path)?;
    Ok(CloudletKey { organization, name })
}

/// `{organization, name}` with both parts non-empty.
pub(super) fn org_name(raw: &S<RawOrgName>, path: &str) -> Result<(String, String), DocumentError> {
    non_empty(
        &raw.value.organization,
        &format!("{path}.organization"),
        line_of(raw),
    )?;
    non_empty(&raw.value.name, &format!("{path}.name"), line_of(raw))?;
    Ok((raw.value.organization.clone(), raw.value.name.clone()))
}

/// Set of names, for references by name (flavors).
pub(super) type Names = HashSet<String>;
