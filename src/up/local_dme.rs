//! The region's DME inside `up`: fed by the controller's notify stream over mutual TLS, and
//! serving the CAMARA APIs with the MC's published keys (its JWKS URL, over HTTPS trusting the
//! region CA) and the operator feed `DATA_DIR/devices.feed` (an example is written at the first
//! start; edit it, the DME re-reads it).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use dme::camara::config::CamaraArgs;
use dme::subscriber::SubscriberConfig;

/// The feed written at the first start: subscribers and address pools near the example
/// region's cloudlets, and this host's loopback (so curl from here is a located device).
const EXAMPLE_FEED: &str = "\
# Edgeplane device feed: where the operator's network sees devices (README, \"CAMARA APIs\").
# ip PREFIX LAT LON RADIUS_M  |  phone +E164 LAT LON RADIUS_M; re-read when it changes.
ip    127.0.0.0/8          52.5200 13.4050 1000   # this host: Berlin
ip    10.26.0.0/16         52.5200 13.4050 2000   # an address pool served in Berlin
ip    10.89.0.0/16         48.1374 11.5755 2000   # an address pool served in Munich
phone +4915112345678       52.5205 13.4049 500    # a subscriber's cell in Berlin
phone +4989123456789       48.1370 11.5750 500    # a subscriber's cell in Munich
phone +33612345678         48.8566 2.3522  500    # a subscriber's cell in Paris
";

/// The engine, subscribed; its listeners are the caller's.
pub fn start(
    data_dir: &Path,
    pki_ca: &Path,
    client: edge_tls::MtlsClient,
    notify: Vec<String>,
    mc: SocketAddr,
) -> Result<Arc<dme::Dme>> {
    let feed = data_dir.join("devices.feed");
    if !feed.exists() {
        std::fs::write(&feed, EXAMPLE_FEED)
            .with_context(|| format!("writing {}", feed.display()))?;
    }
    let camara = CamaraArgs {
        camara_jwks: Some(format!("https://{mc}/.well-known/jwks.json")),
        camara_jwks_ca: Some(pki_ca.to_path_buf()),
        camara_location: format!("feed:{}", feed.display()),
        camara_operator: None,
    }
    .build(None, None)
    .context("the DME's CAMARA APIs")?;
    let mut engine = dme::Dme::new(
        dme::Tables::empty(),
        dme::cookie::KeyRing::random(),
        dme::DmeConfig::default(),
        None,
    );
    if let Some(camara) = camara {
        engine = engine.with_camara(camara);
    }
    let engine = Arc::new(engine);
    tokio::spawn(dme::subscriber::run(
        engine.clone(),
        SubscriberConfig {
            addrs: notify,
            tls: Some(client),
            name: "dme-local".into(),
        },
    ));
    Ok(engine)
}
