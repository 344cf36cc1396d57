//! The closed set of object kinds the controller stores and notifies: [`ObjectKind`], an
//! [`Object`] holding any one of them, an [`ObjectKey`] naming one, and the stable string form of
//! keys (`AppInst/<org>/<name>`) that stores and notify senders use as map keys.
//!
//! Key components are percent-escaped (everything but `A-Z a-z 0-9 - . _ ~`), so a `/` inside a
//! name can neither split a component nor make one key a prefix-scan match of another.

use std::fmt;
use std::str::FromStr;

use crate::enums::ParseEnumError;
use crate::types::{
    App, AppInst, AppInstKey, AppKey, Cloudlet, CloudletInfo, CloudletKey, ClusterInst, ClusterKey,
    Flavor, OperatorCode, Settings,
};

/// Every kind of object the controller stores. Declaration order is the wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    OperatorCode,
    Flavor,
    Settings,
    Cloudlet,
    CloudletInfo,
    App,
    ClusterInst,
    AppInst,
}

impl ObjectKind {
    /// Every kind, in declaration (wire) order.
    pub const ALL: [Self; 8] = [
        Self::OperatorCode,
        Self::Flavor,
        Self::Settings,
        Self::Cloudlet,
        Self::CloudletInfo,
        Self::App,
        Self::ClusterInst,
        Self::AppInst,
    ];

    /// Parents before children: creates and updates are applied and sent in this order, deletes
    /// in reverse, so a receiver never holds a child whose parent it has not seen.
    pub const DEPENDENCY_ORDER: [Self; 8] = [
        Self::Settings,
        Self::OperatorCode,
        Self::Flavor,
        Self::Cloudlet,
        Self::CloudletInfo,
        Self::ClusterInst,
        Self::App,
        Self::AppInst,
    ];

    /// The type name, as upstream's store keys and `edgectl` write it (`AppInst`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OperatorCode => "OperatorCode",
            Self::Flavor => "Flavor",
            Self::Settings => "Settings",
            Self::Cloudlet => "Cloudlet",
            Self::CloudletInfo => "CloudletInfo",
            Self::App => "App",
            Self::ClusterInst => "ClusterInst",
            Self::AppInst => "AppInst",
        }
    }

    /// Position in [`Self::DEPENDENCY_ORDER`]; sort by it to order a batch of changes.
    pub fn dependency_rank(self) -> usize {
        // The order is total over ALL (tested), so the fallback is never taken.
        Self::DEPENDENCY_ORDER
            .iter()
            .position(|k| *k == self)
            .unwrap_or(Self::DEPENDENCY_ORDER.len())
    }

    /// How many `/`-separated components follow the kind in a store key.
    fn arity(self) -> usize {
        match self {
            Self::OperatorCode | Self::Flavor | Self::Settings => 1,
            Self::Cloudlet | Self::CloudletInfo | Self::ClusterInst | Self::AppInst => 2,
            Self::App => 3,
        }
    }
}

/// Accepts the type name in any case, with or without `_`/`-` between words (`AppInst`,
/// `appinst`, `app_inst`), because people type it on the `edgectl` command line.
impl FromStr for ObjectKind {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let folded: String = s
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str().to_ascii_lowercase() == folded)
            .ok_or_else(|| {
                ParseEnumError::new("ObjectKind", s, Self::ALL.iter().map(|k| k.as_str()), "")
            })
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Any one object of the model.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    OperatorCode(OperatorCode),
    Flavor(Flavor),
    Settings(Settings),
    Cloudlet(Cloudlet),
    CloudletInfo(CloudletInfo),
    App(App),
    ClusterInst(ClusterInst),
    AppInst(AppInst),
}

impl Object {
    pub fn kind(&self) -> ObjectKind {
        match self {
            Self::OperatorCode(_) => ObjectKind::OperatorCode,
            Self::Flavor(_) => ObjectKind::Flavor,
            Self::Settings(_) => ObjectKind::Settings,
            Self::Cloudlet(_) => ObjectKind::Cloudlet,
            Self::CloudletInfo(_) => ObjectKind::CloudletInfo,
            Self::App(_) => ObjectKind::App,
            Self::ClusterInst(_) => ObjectKind::ClusterInst,
            Self::AppInst(_) => ObjectKind::AppInst,
        }
    }

    pub fn key(&self) -> ObjectKey {
        match self {
            Self::OperatorCode(o) => ObjectKey::OperatorCode(o.code.clone()),
            Self::Flavor(o) => ObjectKey::Flavor(o.name.clone()),
            Self::Settings(_) => ObjectKey::Settings,
            Self::Cloudlet(o) => ObjectKey::Cloudlet(o.key.clone()),
            Self::CloudletInfo(o) => ObjectKey::CloudletInfo(o.key.clone()),
            Self::App(o) => ObjectKey::App(o.key.clone()),
            Self::ClusterInst(o) => ObjectKey::ClusterInst(o.key.clone()),
            Self::AppInst(o) => ObjectKey::AppInst(o.key.clone()),
        }
    }
}

macro_rules! object_from {
    ($($ty:ident),+) => {$(
        impl From<$ty> for Object {
            fn from(o: $ty) -> Self {
                Self::$ty(o)
            }
        }
    )+};
}
object_from!(
    OperatorCode,
    Flavor,
    Settings,
    Cloudlet,
    CloudletInfo,
    App,
    ClusterInst,
    AppInst
);

/// Names one object. Settings is a singleton; an operator code is keyed by its code and a flavor
/// by its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKey {
    OperatorCode(String),
    Flavor(String),
    Settings,
    Cloudlet(CloudletKey),
    CloudletInfo(CloudletKey),
    App(AppKey),
    ClusterInst(ClusterKey),
    AppInst(AppInstKey),
}

/// The one component of the Settings store key (upstream writes `Settings/settings` too).
const SETTINGS_COMPONENT: &str = "settings";

impl ObjectKey {
    pub fn kind(&self) -> ObjectKind {
        match self {
            Self::OperatorCode(_) => ObjectKind::OperatorCode,
            Self::Flavor(_) => ObjectKind::Flavor,
            Self::Settings => ObjectKind::Settings,
            Self::Cloudlet(_) => ObjectKind::Cloudlet,
            Self::CloudletInfo(_) => ObjectKind::CloudletInfo,
            Self::App(_) => ObjectKind::App,
            Self::ClusterInst(_) => ObjectKind::ClusterInst,
            Self::AppInst(_) => ObjectKind::AppInst,
        }
    }

    /// The key's fields in store-key order.
    fn components(&self) -> Vec<&str> {
        match self {
            Self::OperatorCode(code) => vec![code],
            Self::Flavor(name) => vec![name],
            Self::Settings => vec![SETTINGS_COMPONENT],
            Self::Cloudlet(k) | Self::CloudletInfo(k) => vec![&k.organization, &k.name],
            Self::App(k) => vec![&k.organization, &k.name, &k.version],
            Self::ClusterInst(k) => vec![&k.organization, &k.name],
            Self::AppInst(k) => vec![&k.organization, &k.name],
        }
    }

    /// The stable string form, `<Kind>/<component>/...` with each component percent-escaped, e.g.
    /// `AppInst/AcmeAppCo/my%2Finst`. Stores and notify senders key their maps with it; all keys
    /// of a kind share the prefix `<Kind>/`, and those of an organization `<Kind>/<org>/`.
    pub fn to_store_key(&self) -> String {
        let mut out = String::from(self.kind().as_str());
        for c in self.components() {
            out.push('/');
            escape_into(c, &mut out);
        }
        out
    }

    /// Parses [`Self::to_store_key`]'s output. Only the canonical form is accepted (upper-case
    /// hex, nothing escaped that need not be), so one key has exactly one string.
    pub fn from_store_key(key: &str) -> Result<Self, KeyError> {
        let err = |reason| KeyError {
            key: key.to_owned(),
            reason,
        };
        let mut parts = key.split('/');
        let kind_text = parts.next().unwrap_or_default();
        let kind = ObjectKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind_text)
            .ok_or_else(|| err(KeyErrorKind::UnknownKind(kind_text.to_owned())))?;
        let raw: Vec<&str> = parts.collect();
        if raw.len() != kind.arity() {
            return Err(err(KeyErrorKind::Arity {
                kind,
                expected: kind.arity(),
                got: raw.len(),
            }));
        }
        let mut c = raw
            .iter()
            .enumerate()
            .map(|(i, r)| unescape(r).map_err(|reason| err(reason(i))))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter();
        // Arity was checked above, so each `next()` yields a component.
        let mut next = || c.next().unwrap_or_default();
        Ok(match kind {
            ObjectKind::OperatorCode => Self::OperatorCode(next()),
            ObjectKind::Flavor => Self::Flavor(next()),
            ObjectKind::Settings if next() == SETTINGS_COMPONENT => Self::Settings,
            ObjectKind::Settings => return Err(err(KeyErrorKind::Settings)),
            ObjectKind::Cloudlet => Self::Cloudlet(CloudletKey {
                organization: next(),
                name: next(),
            }),
            ObjectKind::CloudletInfo => Self::CloudletInfo(CloudletKey {
                organization: next(),
                name: next(),
            }),
            ObjectKind::App => Self::App(AppKey {
                organization: next(),
                name: next(),
                version: next(),
            }),
            ObjectKind::ClusterInst => Self::ClusterInst(ClusterKey {
                organization: next(),
                name: next(),
            }),
            ObjectKind::AppInst => Self::AppInst(AppInstKey {
                organization: next(),
                name: next(),
            }),
        })
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_store_key())
    }
}

/// A string that is not a store key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("store key {key:?}: {reason}")]
pub struct KeyError {
    /// The rejected text (printed escaped, so hostile input stays on one line).
    pub key: String,
    pub reason: KeyErrorKind,
}

/// Why a store key was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyErrorKind {
    #[error("unknown kind {0:?}")]
    UnknownKind(String),
    #[error("{kind} keys have {expected} component(s), found {got}")]
    Arity {
        kind: ObjectKind,
        expected: usize,
        got: usize,
    },
    #[error("component {0}: `%` must be followed by two hex digits")]
    BadEscape(usize),
    #[error("component {0}: escapes do not decode to UTF-8")]
    NotUtf8(usize),
    #[error("component {0}: not in canonical form (upper-case hex, only needed escapes)")]
    NotCanonical(usize),
    #[error("the Settings key is `Settings/settings`")]
    Settings,
}

/// Bytes that stay literal; everything else is `%XX`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn escape_into(component: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in component.as_bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
}

/// Decodes one component; the error constructor takes the component's index.
fn unescape(raw: &str) -> Result<String, fn(usize) -> KeyErrorKind> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|h| char::from(*h).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|h| char::from(*h).to_digit(16));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(KeyErrorKind::BadEscape);
            };
            // Two hex digits always fit a byte.
            out.push(u8::try_from(hi * 16 + lo).unwrap_or_default());
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    let text = String::from_utf8(out).map_err(|_| KeyErrorKind::NotUtf8 as fn(usize) -> _)?;
    let mut canonical = String::with_capacity(raw.len());
    escape_into(&text, &mut canonical);
    if canonical != raw {
        return Err(KeyErrorKind::NotCanonical);
    }
    Ok(text)
}

#[cfg(test)]
mod tests;
