//! IP → location lookup in a MaxMind DB (`.mmdb`) file.
//!
//! Two record layouts exist in the free and commercial city databases we may be given:
//! - GeoIP2-City (MaxMind, and DB-IP's own GeoIP2-compatible files): nested
//!   `location.latitude/longitude`, `country.iso_code`, `city.names.en`;
//! - the flat layout of the DB-IP "IP to City Lite" repackaging (`database_type` "city ipv4" or
//!   "city ipv6"): top-level `city`, `country_code`, `latitude`, `longitude`.
//!
//! `maxminddb::geoip2::City` cannot read the flat one, so both are decoded into our own serde
//! structs holding only the fields we use (everything else is skipped without allocating). The
//! layout is chosen once from the metadata; an unrecognised `database_type` is probed per record.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{MaxMindDbError, Reader};
use serde::Deserialize;

use crate::latlon::LatLon;

/// Why a GeoIP database could not be opened or queried.
#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    #[error("cannot open GeoIP database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: MaxMindDbError,
    },
    #[error("bytes are not a valid MaxMind DB (.mmdb) database: {0}")]
    InvalidDatabase(#[source] MaxMindDbError),
    #[error("GeoIP lookup of {ip} in the `{database_type}` database failed: {source}")]
    Lookup {
        ip: IpAddr,
        database_type: String,
        #[source]
        source: MaxMindDbError,
    },
    #[error(
        "GeoIP record for {ip} in the `{database_type}` database is not a city record: {source}"
    )]
    Decode {
        ip: IpAddr,
        database_type: String,
        #[source]
        source: MaxMindDbError,
    },
}

/// Where an IP address is, per the database.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoIpHit {
    pub location: LatLon,
    /// ISO 3166-1 alpha-2 code, when the record has one.
    pub country_code: Option<String>,
    /// English city name, when the record has one (country-level records do not).
    pub city: Option<String>,
}

/// A GeoIP city database held in memory, shareable across threads for concurrent lookups.
pub struct GeoIp {
    reader: Reader<Vec<u8>>,
    layout: Layout,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The reader holds the whole file; print what identifies it instead.
        f.debug_struct("GeoIp")
            .field("database_type", &self.database_type())
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

/// Which record layout to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    GeoIp2,
    Flat,
    /// Any other `database_type` (DB-IP's own "DBIP-City-Lite" among them, which is
    /// GeoIP2-shaped, though nothing guarantees every vendor's is): try GeoIP2, then flat, per
    /// record.
    Probe,
}

impl Layout {
    fn from_database_type(database_type: &str) -> Self {
        let t = database_type.to_ascii_lowercase();
        if t.starts_with("geoip") || t.starts_with("geolite") {
            Layout::GeoIp2
        } else if t.starts_with("city ") {
            Layout::Flat
        } else {
            Layout::Probe
        }
    }
}

impl GeoIp {
    /// Loads the database file into memory.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GeoIpError> {
        let path = path.as_ref();
        let reader = Reader::open_readfile(path).map_err(|source| GeoIpError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::with_reader(reader))
    }

    /// Uses a database already in memory (tests, or a file fetched by other means).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, GeoIpError> {
        let reader = Reader::from_source(bytes).map_err(GeoIpError::InvalidDatabase)?;
        Ok(Self::with_reader(reader))
    }

    fn with_reader(reader: Reader<Vec<u8>>) -> Self {
        let layout = Layout::from_database_type(&reader.metadata().database_type);
        Self { reader, layout }
    }

    /// The `database_type` from the file's metadata, e.g. "GeoIP2-City" or "city ipv4".
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// Looks `ip` up. `Ok(None)` when the database has no record for it, or the record has no
    /// usable coordinates (missing or out of range); bad data is never a panic.
    ///
    /// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what dual-stack sockets report for IPv4
    /// clients) are looked up as IPv4. Any other IPv6 address in an IPv4-only database is a
    /// miss, not an error: the database simply knows nothing about it.
    pub fn lookup(&self, ip: IpAddr) -> Result<Option<GeoIpHit>, GeoIpError> {
        let ip = ip.to_canonical();
        if ip.is_ipv6() && self.reader.metadata().ip_version == 4 {
            return Ok(None);
        }
        let found = self
            .reader
            .lookup(ip)
            .map_err(|source| GeoIpError::Lookup {
                ip,
                database_type: self.database_type().to_owned(),
                source,
            })?;
        if !found.has_data() {
            return Ok(None);
        }
        let record = match self.layout {
            Layout::GeoIp2 => found.decode::<GeoIp2Record>().map(|r| r.map(Fields::from)),
            Layout::Flat => found.decode::<FlatRecord>().map(|r| r.map(Fields::from)),
            Layout::Probe => probe(
                || found.decode::<GeoIp2Record>(),
                || found.decode::<FlatRecord>(),
            ),
        };
        let record = record.map_err(|source| GeoIpError::Decode {
            ip,
            database_type: self.database_type().to_owned(),
            source,
        })?;
        Ok(record.and_then(Fields::into_hit))
    }
}

/// Decodes as GeoIP2 and keeps it if it has coordinates; otherwise tries the flat layout. A
/// record that fits neither reports the GeoIP2 error, the layout most databases use.
fn probe(
    geoip2: impl FnOnce() -> Result<Option<GeoIp2Record>, MaxMindDbError>,
    flat: impl FnOnce() -> Result<Option<FlatRecord>, MaxMindDbError>,
) -> Result<Option<Fields>, MaxMindDbError> {
    let first = geoip2().map(|r| r.map(Fields::from));
    if matches!(&first, Ok(Some(fields)) if fields.has_coordinates()) {
        return first;
    }
    match (first, flat().map(|r| r.map(Fields::from))) {
        (_, Ok(Some(fields))) if fields.has_coordinates() => Ok(Some(fields)),
        (Ok(geoip2), _) => Ok(geoip2),
        (Err(_), Ok(flat)) => Ok(flat),
        (Err(err), Err(_)) => Err(err),
    }
}

/// The fields we use, whatever the layout.
struct Fields {
    latitude: Option<f64>,
    longitude: Option<f64>,
    country_code: Option<String>,
    city: Option<String>,
}

impl Fields {
    fn has_coordinates(&self) -> bool {
        self.latitude.is_some() && self.longitude.is_some()
    }

    fn into_hit(self) -> Option<GeoIpHit> {
        let location = LatLon::new(self.latitude?, self.longitude?).ok()?;
        Some(GeoIpHit {
            location,
            country_code: self.country_code.filter(|s| !s.is_empty()),
            city: self.city.filter(|s| !s.is_empty()),
        })
    }
}

/// GeoIP2-City layout, reduced to the fields we read.
#[derive(Deserialize)]
struct GeoIp2Record {
    location: Option<GeoIp2Location>,
    country: Option<GeoIp2Country>,
    /// Where the IP block is registered; used when `country` is absent (e.g. anycast or
    /// satellite blocks with no physical country).
    registered_country: Option<GeoIp2Country>,
    city: Option<GeoIp2City>,
}

#[derive(Deserialize)]
struct GeoIp2Location {
    latitude: Option<Degrees>,
    longitude: Option<Degrees>,
}

#[derive(Deserialize)]
struct GeoIp2Country {
    iso_code: Option<String>,
}

#[derive(Deserialize)]
struct GeoIp2City {
    names: Option<GeoIp2Names>,
}

#[derive(Deserialize)]
struct GeoIp2Names {
    en: Option<String>,
}

impl From<GeoIp2Record> for Fields {
    fn from(r: GeoIp2Record) -> Self {
        let (latitude, longitude) = r
            .location
            .map_or((None, None), |l| (l.latitude, l.longitude));
        let (latitude, longitude) = (latitude.map(|d| d.0), longitude.map(|d| d.0));
        Fields {
            latitude,
            longitude,
            country_code: r.country.or(r.registered_country).and_then(|c| c.iso_code),
            city: r.city.and_then(|c| c.names).and_then(|n| n.en),
        }
    }
}

/// Flat DB-IP city layout, reduced to the fields we read.
#[derive(Deserialize)]
struct FlatRecord {
    city: Option<String>,
    country_code: Option<String>,
    latitude: Option<Degrees>,
    longitude: Option<Degrees>,
}

impl From<FlatRecord> for Fields {
    fn from(r: FlatRecord) -> Self {
        Fields {
            latitude: r.latitude.map(|d| d.0),
            longitude: r.longitude.map(|d| d.0),
            country_code: r.country_code,
            city: r.city,
        }
    }
}

/// A coordinate in degrees as stored in the file. MaxMind writes doubles, but other writers use
/// 32-bit floats or integers, and maxminddb's `f64` decoding accepts only doubles; this takes
/// any number and widens it. Range checks happen later, in [`LatLon::new`].
struct Degrees(f64);

impl<'de> Deserialize<'de> for Degrees {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DegreesVisitor)
    }
}

struct DegreesVisitor;

impl serde::de::Visitor<'_> for DegreesVisitor {
    type Value = Degrees;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number of degrees")
    }

    fn visit_f64<E>(self, v: f64) -> Result<Degrees, E> {
        Ok(Degrees(v))
    }

    fn visit_f32<E>(self, v: f32) -> Result<Degrees, E> {
        Ok(Degrees(f64::from(v)))
    }

    // Integers wider than 2^53 lose precision here, irrelevant for values meant to be in ±180.
    fn visit_i64<E>(self, v: i64) -> Result<Degrees, E> {
        Ok(Degrees(v as f64))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Degrees, E> {
        Ok(Degrees(v as f64))
    }
}

#[cfg(test)]
mod tests;
