//! Who a certificate belongs to: the component [`Role`], its region and its name, carried by
//! every certificate of a region CA as one URI subject alternative name
//!
//! ```text
//! edgeplane://<region>/<role>/<name>        e.g. edgeplane://eu-central/dme/dme-1
//! ```
//!
//! and the region CA's own certificate as `edgeplane://<region>`. Region and name are 1 to 63
//! characters of ASCII letters, digits, `-`, `_` and `.`, starting with a letter or digit; the
//! role is one of [`Role::ALL`], lowercase. [`peer_identity`] reads it back (x509-parser).

use std::fmt;
use std::str::FromStr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The URI scheme of identities.
pub const SCHEME: &str = "edgeplane://";

/// The components that hold a certificate of the region CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The master controller (global: users, organisations, regions).
    Mc,
    /// The regional controller.
    Controller,
    /// A Distributed Matching Engine.
    Dme,
    /// A cloudlet's shared root load balancer.
    Rootlb,
    /// A cloudlet's Cloudlet Resource Manager.
    Crm,
    /// A cloudlet's metrics agent.
    Shepherd,
    /// The command line of an operator.
    Edgectl,
    /// The region DNS.
    Dns,
}

impl Role {
    /// Every role, in the order above.
    pub const ALL: [Role; 8] = [
        Role::Mc,
        Role::Controller,
        Role::Dme,
        Role::Rootlb,
        Role::Crm,
        Role::Shepherd,
        Role::Edgectl,
        Role::Dns,
    ];

    /// The role as it appears in URIs, file names and flags: `mc`, `controller`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Mc => "mc",
            Role::Controller => "controller",
            Role::Dme => "dme",
            Role::Rootlb => "rootlb",
            Role::Crm => "crm",
            Role::Shepherd => "shepherd",
            Role::Edgectl => "edgectl",
            Role::Dns => "dns",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (known: mc, controller, dme, rootlb, crm, shepherd, edgectl, dns)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The identity of a certificate holder: `edgeplane://<region>/<role>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    pub region: String,
    pub role: Role,
    pub name: String,
}

impl PeerIdentity {
    /// An identity with checked region and name (see the module doc for the characters).
    pub fn new(region: &str, role: Role, name: &str) -> Result<PeerIdentity, IdentityError> {
        check_label("region", region)?;
        check_label("name", name)?;
        Ok(PeerIdentity {
            region: region.to_owned(),
            role,
            name: name.to_owned(),
        })
    }

    /// The URI SAN: `edgeplane://<region>/<role>/<name>`.
    pub fn uri(&self) -> String {
        format!("{SCHEME}{}/{}/{}", self.region, self.role, self.name)
    }

    /// Parses a URI SAN of this form.
    pub fn from_uri(uri: &str) -> Result<PeerIdentity, IdentityError> {
        let malformed = |reason: String| IdentityError::Malformed {
            uri: uri.to_owned(),
            reason,
        };
        let rest = uri
            .strip_prefix(SCHEME)
            .ok_or_else(|| malformed(format!("does not start with {SCHEME}")))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [region, role, name] = parts[..] else {
            return Err(malformed(format!(
                "expected {SCHEME}<region>/<role>/<name>, found {} part(s) after the scheme",
                parts.len()
            )));
        };
        check_label("region", region).map_err(|e| malformed(e.to_string()))?;
        check_label("name", name).map_err(|e| malformed(e.to_string()))?;
        let role = role
            .parse()
            .map_err(|e: UnknownRole| IdentityError::UnknownRole {
                uri: uri.to_owned(),
                role: e.0,
            })?;
        Ok(PeerIdentity {
            region: region.to_owned(),
            role,
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// Why a certificate carries no usable identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The bytes are not an X.509 certificate (or its SAN extension does not parse).
    #[error("not a valid X.509 certificate: {0}")]
    NotX509(String),
    /// No `edgeplane://` URI SAN: not a certificate of an Edgeplane region CA.
    #[error("the certificate has no edgeplane:// URI subject alternative name")]
    NoIdentity,
    /// More than one `edgeplane://` URI SAN: which one is meant is unclear.
    #[error("the certificate has several edgeplane:// URI subject alternative names: {}", .0.join(", "))]
    Several(Vec<String>),
    /// An `edgeplane://` URI SAN that is not `edgeplane://<region>/<role>/<name>`.
    #[error("malformed identity {uri:?}: {reason}")]
    Malformed { uri: String, reason: String },
    /// The role part names no known role.
    #[error("identity {uri:?} has unknown role {role:?}")]
    UnknownRole { uri: String, role: String },
    /// A region or name given to build an identity is not allowed.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// Region and name: 1 to 63 ASCII letters, digits, `-`, `_`, `.`, starting with a letter or
/// digit (they appear in URIs, DNS-like names and file names).
pub(crate) fn check_label(what: &'static str, value: &str) -> Result<(), IdentityError> {
    let invalid = |reason| IdentityError::Invalid {
        what,
        value: value.to_owned(),
        reason,
    };
    if value.is_empty() {
        return Err(invalid("empty"));
    }
    if value.len() > 63 {
        return Err(invalid("longer than 63 characters"));
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(invalid("must start with a letter or digit"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(invalid(
            "only ASCII letters, digits, '-', '_' and '.' are allowed",
        ));
    }
    Ok(())
}

/// The `edgeplane://` URI SANs of a certificate (DER).
fn edgeplane_uris(cert_der: &[u8]) -> Result<Vec<String>, IdentityError> {
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| IdentityError::NotX509(e.to_string()))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| IdentityError::NotX509(format!("subject alternative names: {e}")))?;
    Ok(san
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(uri) if uri.starts_with(SCHEME) => Some((*uri).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The only `edgeplane://` URI SAN of a certificate.
fn the_uri(cert_der: &[u8]) -> Result<String, IdentityError> {
    let mut uris = edgeplane_uris(cert_der)?;
    match uris.len() {
        0 => Err(IdentityError::NoIdentity),
        1 => Ok(uris.remove(0)),
        _ => Err(IdentityError::Several(uris)),
    }
}

/// The identity in a (leaf) certificate's `edgeplane://<region>/<role>/<name>` URI SAN. Other
/// URI SANs are ignored. It does not verify the certificate: do that first (the mTLS configs
/// of [`crate::mtls`] do).
pub fn peer_identity(cert_der: &[u8]) -> Result<PeerIdentity, IdentityError> {
    PeerIdentity::from_uri(&the_uri(cert_der)?)
}

/// The region of a region CA's certificate, from its `edgeplane://<region>` URI SAN.
pub fn ca_region(cert_der: &[u8]) -> Result<String, IdentityError> {
    let uri = the_uri(cert_der)?;
    let region = uri.strip_prefix(SCHEME).unwrap_or_default();
    check_label("region", region).map_err(|e| IdentityError::Malformed {
        uri: uri.clone(),
        reason: format!("a region CA's identity is {SCHEME}<region>: {e}"),
    })?;
    Ok(region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_and_roles_parse() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            let id = PeerIdentity::new("eu-1", role, "node.a_1").unwrap();
            assert_eq!(PeerIdentity::from_uri(&id.uri()).unwrap(), id);
        }
        let e = "Dme".parse::<Role>().unwrap_err().to_string();
        assert!(
            e.contains("unknown role \"Dme\"") && e.contains("known: mc"),
            "{e}"
        );
    }

    #[test]
    fn malformed_uris_say_what_is_wrong() {
        let cases = [
            ("https://eu/dme/a", "does not start with edgeplane://"),
            ("edgeplane://eu/dme", "found 2 part(s)"),
            ("edgeplane://eu/dme/a/b", "found 4 part(s)"),
            ("edgeplane:///dme/a", "invalid region \"\": empty"),
            ("edgeplane://eu/dme/a b", "invalid name"),
            ("edgeplane://eu/dme/-a", "must start with a letter or digit"),
        ];
        for (uri, want) in cases {
            let e = PeerIdentity::from_uri(uri).unwrap_err();
            assert!(matches!(e, IdentityError::Malformed { .. }), "{uri}: {e:?}");
            assert!(e.to_string().contains(want), "{uri}: {e}");
        }
        let e = PeerIdentity::from_uri("edgeplane://eu/wizard/a").unwrap_err();
        assert_eq!(
            e,
            IdentityError::UnknownRole {
                uri: "edgeplane://eu/wizard/a".into(),
                role: "wizard".into()
            }
        );
        assert!(PeerIdentity::new("eu", Role::Dme, &"x".repeat(64)).is_err());
    }

    #[test]
    fn certificates_without_an_identity_are_told_apart() {
        let plain = crate::DevCert::self_signed(&["localhost"]).unwrap();
        let (certs, _) = plain.pair().unwrap();
        assert_eq!(peer_identity(&certs[0]), Err(IdentityError::NoIdentity));
        assert!(matches!(
            peer_identity(b"not a certificate"),
            Err(IdentityError::NotX509(_))
        ));
    }
}
