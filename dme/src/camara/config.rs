//! The `dme` role's CAMARA flags and what they build: the MC's keys, the device-location
//! source and the operator.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use edge_auth::KeySource;
use geodata::{GeoIp, LatLon};

use super::Camara;
use super::feed::FeedLocator;
use super::locator::{DeviceLocator, GeoIpLocator, StaticLocator};

/// Serving the CAMARA APIs (off unless `--camara-jwks` is given).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CamaraArgs {
    /// The MC's public keys, to verify CAMARA access tokens: its JWKS URL
    /// (`https://MC/.well-known/jwks.json`, fetched at start, every 5 min and when a token names
    /// an unknown key) or a JWKS file (re-read on change). Turns the CAMARA APIs on.
    #[arg(long, env = "EDGEPLANE_DME_CAMARA_JWKS", value_name = "URL|FILE")]
    pub camara_jwks: Option<String>,
    /// The CA that signed the MC's certificate, for an https JWKS URL (default: --mtls-ca).
    #[arg(long, value_name = "PEM")]
    pub camara_jwks_ca: Option<PathBuf>,
    /// Where devices are, by the network: `feed:PATH` (an operator's export of IP prefixes
    /// and phone numbers to locations, re-read on change), `geoip` (the device's public IP in
    /// --geoip-db), or `static:LAT,LON[,RADIUS_M]` (every device there).
    #[arg(long, env = "EDGEPLANE_DME_CAMARA_LOCATION", default_value = "geoip")]
    pub camara_location: String,
    /// The operator (cloudlet organisation) whose network locates the devices: discovery is
    /// matched for its subscribers. Default: every operator's zones.
    #[arg(long, env = "EDGEPLANE_DME_CAMARA_OPERATOR", value_name = "ORG")]
    pub camara_operator: Option<String>,
}

/// Why the CAMARA configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--camara-location {0:?}: expected feed:PATH, geoip or static:LAT,LON[,RADIUS_M]")]
    Location(String),
    #[error("--camara-location geoip needs --geoip-db")]
    NoGeoIp,
    #[error("--camara-location static: {0}")]
    Static(String),
    #[error(transparent)]
    Feed(#[from] super::feed::FeedError),
    #[error("--camara-jwks: {0}")]
    Jwks(#[from] edge_auth::JwksError),
}

impl CamaraArgs {
    /// The configuration, or None when the CAMARA APIs are off. Needs a Tokio runtime (the
    /// key and feed sources watch their files or URL).
    pub fn build(
        &self,
        geoip: Option<&Arc<GeoIp>>,
        mtls_ca: Option<&Path>,
    ) -> Result<Option<Camara>, ConfigError> {
        let Some(jwks) = &self.camara_jwks else {
            return Ok(None);
        };
        let keys = if jwks.starts_with("http://") || jwks.starts_with("https://") {
            KeySource::url(jwks, self.camara_jwks_ca.as_deref().or(mtls_ca))?
        } else {
            KeySource::file(Path::new(jwks))?
        };
        let locator = locator(&self.camara_location, geoip)?;
        tracing::info!(location = %locator.describe(), jwks = %jwks, "serving the CAMARA APIs");
        Ok(Some(Camara {
            keys,
            locator,
            operator: self.camara_operator.clone(),
        }))
    }
}

fn locator(spec: &str, geoip: Option<&Arc<GeoIp>>) -> Result<Arc<dyn DeviceLocator>, ConfigError> {
    if spec == "geoip" {
        let db = geoip.ok_or(ConfigError::NoGeoIp)?;
        return Ok(Arc::new(GeoIpLocator(db.clone())));
    }
    if let Some(path) = spec.strip_prefix("feed:") {
        return Ok(FeedLocator::open(Path::new(path))?);
    }
    if let Some(rest) = spec.strip_prefix("static:") {
        let nums = rest
            .split(',')
            .map(|s| s.trim().parse::<f64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError::Static(e.to_string()))?;
        let (lat, lon, radius_m) = match nums[..] {
            [lat, lon] => (lat, lon, 1000.0),
            [lat, lon, r] => (lat, lon, r),
            _ => return Err(ConfigError::Static("expected LAT,LON[,RADIUS_M]".into())),
        };
        if !(1.0..=1.0e7).contains(&radius_m) {
            return Err(ConfigError::Static(format!(
                "radius {radius_m} m is not within 1 m-10 000 km"
            )));
        }
        let center = LatLon::new(lat, lon).map_err(|e| ConfigError::Static(e.to_string()))?;
        return Ok(Arc::new(StaticLocator { center, radius_m }));
    }
    Err(ConfigError::Location(spec.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_specs() {
        assert!(matches!(locator("geoip", None), Err(ConfigError::NoGeoIp)));
        assert!(matches!(
            locator("gps", None),
            Err(ConfigError::Location(_))
        ));
        assert!(matches!(
            locator("static:91,0", None),
            Err(ConfigError::Static(_))
        ));
        assert!(matches!(
            locator("static:1,2,0", None),
            Err(ConfigError::Static(_))
        ));
        assert!(matches!(
            locator("static:x,2", None),
            Err(ConfigError::Static(_))
        ));
        let l = locator("static:52.5,13.4,300", None).unwrap();
        assert!(l.describe().contains("300"));
    }
}
