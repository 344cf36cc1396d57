//! The UUIDs by which the CAMARA APIs name our objects: an edge cloud zone is a cloudlet, an
//! application is an app, an application instance an app instance. They are derived from the
//! object's key (a name-based UUID, version 5 of RFC 9562, in Edgeplane's namespace), so the
//! DME, the MC and every restart agree on them without storing a mapping, and a deleted and
//! re-created object gets its id back. Version 5 because the specs' id pattern admits versions
//! 1-5 only.

use uuid::Uuid;

/// Edgeplane's namespace for name-based ids (a random UUID, fixed forever).
const NAMESPACE: Uuid = Uuid::from_u128(0x6f1e_2c1a_9d4b_4e57_8a3c_5b7d_0e9f_2a61);

use crate::{AppInstKey, AppKey, CloudletKey};

/// The zone id of a cloudlet.
pub fn zone_id(key: &CloudletKey) -> String {
    uuid(&["zone", &key.organization, &key.name])
}

/// The application id of an app.
pub fn app_id(key: &AppKey) -> String {
    uuid(&["app", &key.organization, &key.name, &key.version])
}

/// The application instance id of an app instance.
pub fn app_inst_id(key: &AppInstKey) -> String {
    uuid(&["appinst", &key.organization, &key.name])
}

/// The id as 128 bits, for tables keyed by id (lower-case or upper-case hex, hyphenated).
/// Read in place: the DME parses one on every Application Endpoint Discovery request.
pub fn parse(id: &str) -> Option<u128> {
    let b = id.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let digit = char::from(c).to_digit(16)?;
        v = v << 4 | u128::from(digit);
    }
    Some(v)
}

fn uuid(parts: &[&str]) -> String {
    let mut name = Vec::new();
    for p in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        name.extend_from_slice(&(p.len() as u64).to_be_bytes());
        name.extend_from_slice(p.as_bytes());
    }
    Uuid::new_v5(&NAMESPACE, &name).hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloudlet(org: &str, name: &str) -> CloudletKey {
        CloudletKey {
            organization: org.into(),
            name: name.into(),
        }
    }

    #[test]
    fn ids_are_stable_distinct_and_parse() {
        let a = zone_id(&cloudlet("tmus", "seattle"));
        assert_eq!(a, zone_id(&cloudlet("tmus", "seattle")));
        assert_ne!(a, zone_id(&cloudlet("tmu", "sseattle")));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "5");
        assert_eq!(a, a.to_lowercase());
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert!(parse(&a).is_some());
        assert_eq!(parse(&a), parse(&a.to_uppercase()));
        let app = AppKey {
            organization: "tmus".into(),
            name: "seattle".into(),
            version: String::new(),
        };
        assert_ne!(app_id(&app), a);
    }

    #[test]
    fn malformed_ids_do_not_parse() {
        for bad in [
            "",
            "not-a-uuid",
            "0000000000000000000000000000000000",
            "g0000000-0000-8000-8000-000000000000",
            "00000000-0000-8000-8000-00000000000",
            "00000000+0000-8000-8000-000000000000",
            // 36 bytes each: a hyphen where a digit belongs, a non-ASCII letter.
            "0000000-00000-8000-8000-000000000000",
            "\u{e9}0000000-0000-8000-8000-00000000000",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(
            parse("00000000-0000-8000-8000-000000000001"),
            Some(0x0000_0000_0000_8000_8000_0000_0000_0001)
        );
    }
}
