//! Keys: every component must be non-empty (an empty one would name no object, or all of them
//! in a prefix scan).

use edge_model::{AppInstKey, AppKey, CloudletKey, ClusterKey, ObjectKey};

use super::{ConvertError, ConvertErrorKind, Within, non_empty, required};
use crate::pb;
use crate::pb::object_key::Key;

pub(crate) fn cloudlet_key(k: pb::CloudletKey) -> Result<CloudletKey, ConvertError> {
    Ok(CloudletKey {
        organization: non_empty(k.organization, "organization")?,
        name: non_empty(k.name, "name")?,
    })
}

pub(crate) fn app_key(k: pb::AppKey) -> Result<AppKey, ConvertError> {
    Ok(AppKey {
        organization: non_empty(k.organization, "organization")?,
        name: non_empty(k.name, "name")?,
        version: non_empty(k.version, "version")?,
    })
}

pub(crate) fn cluster_key(k: pb::ClusterKey) -> Result<ClusterKey, ConvertError> {
    Ok(ClusterKey {
        organization: non_empty(k.organization, "organization")?,
        name: non_empty(k.name, "name")?,
    })
}

pub(crate) fn app_inst_key(k: pb::AppInstKey) -> Result<AppInstKey, ConvertError> {
    Ok(AppInstKey {
        organization: non_empty(k.organization, "organization")?,
        name: non_empty(k.name, "name")?,
    })
}

/// A required key-typed field of an enclosing message, e.g. `AppInst.cloudlet`.
pub(crate) fn field<P, D>(
    value: Option<P>,
    name: &str,
    convert: fn(P) -> Result<D, ConvertError>,
) -> Result<D, ConvertError> {
    convert(required(value, name)?).within(name)
}

/// `TryFrom<pb::K>` (paths start with the message's snake_case name) and `From<&K>`.
macro_rules! key_impls {
    ($ty:ident, $convert:ident, $name:literal, { $($f:ident),+ }) => {
        impl TryFrom<pb::$ty> for $ty {
            type Error = ConvertError;

            fn try_from(k: pb::$ty) -> Result<Self, ConvertError> {
                $convert(k).within($name)
            }
        }

        impl From<&$ty> for pb::$ty {
            fn from(k: &$ty) -> Self {
                Self { $($f: k.$f.clone()),+ }
            }
        }
    };
}
key_impls!(CloudletKey, cloudlet_key, "cloudlet_key", { organization, name });
key_impls!(AppKey, app_key, "app_key", { organization, name, version });
key_impls!(ClusterKey, cluster_key, "cluster_key", { organization, name });
key_impls!(AppInstKey, app_inst_key, "app_inst_key", { organization, name });

/// Paths start with the oneof field name (`app_inst.name`), as for [`pb::Object`].
impl TryFrom<pb::ObjectKey> for ObjectKey {
    type Error = ConvertError;

    fn try_from(k: pb::ObjectKey) -> Result<Self, ConvertError> {
        let key = k
            .key
            .ok_or_else(|| ConvertError::new("key", ConvertErrorKind::Missing))?;
        Ok(match key {
            Key::OperatorCode(k) => {
                Self::OperatorCode(non_empty(k.code, "code").within("operator_code")?)
            }
            Key::Flavor(k) => Self::Flavor(non_empty(k.name, "name").within("flavor")?),
            Key::Settings(pb::SettingsKey {}) => Self::Settings,
            Key::Cloudlet(k) => Self::Cloudlet(cloudlet_key(k).within("cloudlet")?),
            Key::CloudletInfo(k) => Self::CloudletInfo(cloudlet_key(k).within("cloudlet_info")?),
            Key::App(k) => Self::App(app_key(k).within("app")?),
            Key::ClusterInst(k) => Self::ClusterInst(cluster_key(k).within("cluster_inst")?),
            Key::AppInst(k) => Self::AppInst(app_inst_key(k).within("app_inst")?),
        })
    }
}

impl From<&ObjectKey> for pb::ObjectKey {
    fn from(k: &ObjectKey) -> Self {
        let key = match k {
            ObjectKey::OperatorCode(code) => {
                Key::OperatorCode(pb::OperatorCodeKey { code: code.clone() })
            }
            ObjectKey::Flavor(name) => Key::Flavor(pb::FlavorKey { name: name.clone() }),
            ObjectKey::Settings => Key::Settings(pb::SettingsKey {}),
            ObjectKey::Cloudlet(k) => Key::Cloudlet(k.into()),
            ObjectKey::CloudletInfo(k) => Key::CloudletInfo(k.into()),
            ObjectKey::App(k) => Key::App(k.into()),
            ObjectKey::ClusterInst(k) => Key::ClusterInst(k.into()),
            ObjectKey::AppInst(k) => Key::AppInst(k.into()),
        };
        Self { key: Some(key) }
    }
}
