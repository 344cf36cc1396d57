//! The CAMARA `Device` object: which identifiers a request names, checked against the schema,
//! and the one the server uses (the specs let the server pick when several are given and do not
//! ask it to cross-check them). The answer's `device` names exactly the identifier used.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::error::CamaraError;
use super::json::{Obj, opt_int, opt_obj, opt_str};

/// A device identifier the network can look up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identifier {
    /// E.164 with the leading `+`.
    Phone(String),
    /// The public address the device is seen from (NAT'd: with its private address or its
    /// public port).
    Ipv4 {
        public: Ipv4Addr,
        private: Option<Ipv4Addr>,
        port: Option<u16>,
    },
    Ipv6(Ipv6Addr),
}

/// The schemas' ports: Simple Edge Discovery 2.0 allows 1024-65535, the others 0-65535.
#[derive(Clone, Copy, Debug)]
pub struct PortRange(pub u16);

/// Reads `device` (if present) from a request body.
pub fn parse(body: &Obj, ports: PortRange) -> Result<Option<Identifier>, CamaraError> {
    let Some(dev) = opt_obj(body, "device", "device")? else {
        return Ok(None);
    };
    if dev.is_empty() {
        return Err(CamaraError::invalid(
            "device must name at least one identifier",
        ));
    }
    let phone = opt_str(dev, "phoneNumber", "device.phoneNumber")?;
    if let Some(p) = phone {
        check_phone(p)?;
    }
    let nai = opt_str(
        dev,
        "networkAccessIdentifier",
        "device.networkAccessIdentifier",
    )?;
    let ipv4 = match opt_obj(dev, "ipv4Address", "device.ipv4Address")? {
        Some(o) => Some(ipv4(o, ports)?),
        None => None,
    };
    let ipv6 = match opt_str(dev, "ipv6Address", "device.ipv6Address")? {
        Some(s) => Some(
            s.parse::<Ipv6Addr>()
                .map_err(|_| CamaraError::invalid("device.ipv6Address is not an IPv6 address"))?,
        ),
        None => None,
    };
    // The phone number first: it names the subscription, an address may be shared (CGNAT).
    if let Some(p) = phone {
        return Ok(Some(Identifier::Phone(p.to_string())));
    }
    if let Some(v4) = ipv4 {
        return Ok(Some(v4));
    }
    if let Some(v6) = ipv6 {
        return Ok(Some(Identifier::Ipv6(v6)));
    }
    if nai.is_some() {
        return Err(CamaraError::unprocessable(
            "UNSUPPORTED_IDENTIFIER",
            "networkAccessIdentifier is not supported: CAMARA does not allow its use yet; \
             give phoneNumber, ipv4Address or ipv6Address",
        ));
    }
    // Only members the schema does not define: it has none of its identifiers.
    Err(CamaraError::invalid(
        "device must name phoneNumber, ipv4Address, ipv6Address or networkAccessIdentifier",
    ))
}

/// `^\+[1-9][0-9]{4,14}$`
fn check_phone(p: &str) -> Result<(), CamaraError> {
    let digits = p.strip_prefix('+').unwrap_or("");
    let ok = (5..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(CamaraError::invalid(
            "device.phoneNumber must be E.164 with a leading '+' (e.g. +123456789)",
        ))
    }
}

fn ipv4(o: &Obj, ports: PortRange) -> Result<Identifier, CamaraError> {
    let addr = |key: &str| -> Result<Option<Ipv4Addr>, CamaraError> {
        let field = format!("device.ipv4Address.{key}");
        match opt_str(o, key, &field)? {
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| CamaraError::invalid(format!("{field} is not an IPv4 address"))),
            None => Ok(None),
        }
    };
    let public = addr("publicAddress")?;
    let private = addr("privateAddress")?;
    let port = match opt_int(o, "publicPort", "device.ipv4Address.publicPort")? {
        Some(p) if p >= i64::from(ports.0) && p <= 65535 => u16::try_from(p).ok(),
        Some(_) => {
            return Err(CamaraError::invalid(format!(
                "device.ipv4Address.publicPort must be between {} and 65535",
                ports.0
            )));
        }
        None => None,
    };
    let Some(public) = public else {
        return Err(CamaraError::invalid(
            "device.ipv4Address.publicAddress is required",
        ));
    };
    if private.is_none() && port.is_none() {
        return Err(CamaraError::invalid(
            "device.ipv4Address needs privateAddress or publicPort beside publicAddress",
        ));
    }
    Ok(Identifier::Ipv4 {
        public,
        private,
        port,
    })
}

impl serde::Serialize for Identifier {
    /// As the answer's `device`: this identifier alone.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        match self {
            Identifier::Phone(p) => m.serialize_entry("phoneNumber", p)?,
            Identifier::Ipv6(a) => m.serialize_entry("ipv6Address", a)?,
            Identifier::Ipv4 {
                public,
                private,
                port,
            } => m.serialize_entry(
                "ipv4Address",
                &Ipv4Json {
                    public_address: public,
                    private_address: private.as_ref(),
                    public_port: *port,
                },
            )?,
        }
        m.end()
    }
}

/// The schema's `DeviceIpv4Addr`, written straight from the identifier (answers echo it on
/// every request, so no intermediate `Value`).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Ipv4Json<'a> {
    public_address: &'a Ipv4Addr,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_address: Option<&'a Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_port: Option<u16>,
}

impl Identifier {
    /// The answer's `device`: this identifier alone.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_str(s: &str) -> Result<Option<Identifier>, CamaraError> {
        let v: Obj = serde_json::from_str(s).unwrap();
        parse(&v, PortRange(1024))
    }

    #[test]
    fn identifiers_follow_the_schema() {
        assert_eq!(parse_str("{}"), Ok(None));
        assert_eq!(
            parse_str(r#"{"device":{"phoneNumber":"+4917012345"}}"#),
            Ok(Some(Identifier::Phone("+4917012345".into())))
        );
        let v4 = parse_str(
            r#"{"device":{"ipv4Address":{"publicAddress":"84.1.2.3","publicPort":5000}}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            v4.to_json(),
            json!({"ipv4Address": {"publicAddress": "84.1.2.3", "publicPort": 5000}})
        );
        // The phone number wins over an address, and the answer names it alone.
        let both =
            parse_str(r#"{"device":{"ipv6Address":"2001:db8::1","phoneNumber":"+4917012345"}}"#)
                .unwrap()
                .unwrap();
        assert_eq!(both.to_json(), json!({"phoneNumber": "+4917012345"}));
    }

    #[test]
    fn schema_violations_are_400_and_nai_is_422() {
        for bad in [
            r#"{"device":{}}"#,
            r#"{"device":null}"#,
            r#"{"device":{"phoneNumber":null}}"#,
            r#"{"device":{"phoneNumber":"4917012345"}}"#,
            r#"{"device":{"phoneNumber":"+0917012345"}}"#,
            r#"{"device":{"phoneNumber":"+49"}}"#,
            r#"{"device":{"ipv4Address":{"publicAddress":"84.1.2.3"}}}"#,
            r#"{"device":{"ipv4Address":{"publicAddress":"84.1.2.3","publicPort":80}}}"#,
            r#"{"device":{"ipv4Address":{"publicAddress":"84.1.2.3","publicPort":5000.5}}}"#,
            r#"{"device":{"ipv4Address":{"privateAddress":"10.0.0.1","publicPort":5000}}}"#,
            r#"{"device":{"ipv4Address":{"publicAddress":"300.1.2.3","privateAddress":"10.0.0.1"}}}"#,
            r#"{"device":{"ipv6Address":"84.1.2.3"}}"#,
            r#"{"device":{"other":"x"}}"#,
        ] {
            let e = parse_str(bad).unwrap_err();
            assert_eq!(e.code, "INVALID_ARGUMENT", "{bad}: {e}");
        }
        let e = parse_str(r#"{"device":{"networkAccessIdentifier":"a@b"}}"#).unwrap_err();
        assert_eq!(e.code, "UNSUPPORTED_IDENTIFIER");
    }
}
