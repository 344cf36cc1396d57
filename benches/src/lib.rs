//! Synthetic but realistic regions for the benchmarks, the table-memory probe and the load
//! generator: cloudlets at world cities (the GeoNames fixture, with a few km of jitter so that
//! large regions do not stack sites on one point), owned by several carriers and one public
//! cloud, some of them shared with an alliance carrier; apps with instances on those cloudlets;
//! clients at world cities too, each with a carrier drawn from the region's carriers.
//!
//! Everything is seeded, so two runs build the same region and the same queries.

use anyhow::Context;
use dme::fixture::{self, Builder};
use edge_model::{AppKey, Deployment, NetworkLocation};
use geodata::LatLon;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The region's carriers (cloudlet organizations that serve their own subscribers).
pub const CARRIERS: [&str; 4] = ["telekom", "orange", "vodafone", "tmobile"];
/// The public cloud of the region (in the default `public_cloud_orgs`, so padded).
pub const PUBLIC_CLOUD: &str = "aws";
/// Operator codes (MCC+MNC) of the carriers, so clients may name either.
pub const OPERATOR_CODES: [(&str, &str); 4] = [
    ("26201", "telekom"),
    ("20801", "orange"),
    ("26202", "vodafone"),
    ("310260", "tmobile"),
];
/// One cloudlet in this many belongs to the public cloud.
const PUBLIC_EVERY: usize = 10;
/// One carrier cloudlet in this many is shared with the next carrier (alliance org).
const ALLIANCE_EVERY: usize = 8;
/// Jitter of a cloudlet around its city, in degrees (±0.05° ≈ ±5 km).
const SITE_JITTER_DEG: f64 = 0.05;
/// Jitter of a client around its city, in degrees (±0.2° ≈ ±20 km).
const CLIENT_JITTER_DEG: f64 = 0.2;

/// World-city locations to draw sites and clients from.
pub struct World {
    cities: Vec<LatLon>,
}

impl World {
    /// Loads the bundled GeoNames cities (about 34k cities of more than 15 000 people).
    pub fn load() -> anyhow::Result<Self> {
        let cities = geodata::bundled_cities()
            .context("parsing the bundled cities")?
            .into_iter()
            .map(|c| c.location)
            .collect::<Vec<_>>();
        anyhow::ensure!(!cities.is_empty(), "no cities in the bundled fixture");
        Ok(Self { cities })
    }

    pub fn len(&self) -> usize {
        self.cities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cities.is_empty()
    }

    /// A random city moved by up to `jitter_deg` in latitude and longitude (clamped to valid).
    pub fn point(&self, rng: &mut impl Rng, jitter_deg: f64) -> LatLon {
        let c = self.cities[rng.random_range(0..self.cities.len())];
        let lat = (c.lat() + rng.random_range(-jitter_deg..=jitter_deg)).clamp(-90.0, 90.0);
        let mut lon = c.lon() + rng.random_range(-jitter_deg..=jitter_deg);
        if lon > 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        LatLon::new(lat, lon).unwrap_or(c)
    }

    /// A client location: a random city with ±20 km of jitter.
    pub fn client_point(&self, rng: &mut impl Rng) -> LatLon {
        self.point(rng, CLIENT_JITTER_DEG)
    }
}

/// The shape of a synthetic region.
#[derive(Clone, Copy, Debug)]
pub struct RegionSpec {
    /// Number of apps; app `j` is `devorg{j % 100}/app{j}/1.0`.
    pub apps: usize,
    /// Instances per app, each on a distinct cloudlet.
    pub insts_per_app: usize,
    /// Number of cloudlets (≥ `insts_per_app`); apps draw their cloudlets from these.
    pub cloudlets: usize,
    pub seed: u64,
}

impl RegionSpec {
    /// One app with `n` instances, one per cloudlet.
    pub fn one_app(n: usize) -> Self {
        Self {
            apps: 1,
            insts_per_app: n,
            cloudlets: n,
            seed: 42,
        }
    }

    /// `apps` apps with `per_app` instances each, spread over `cloudlets` shared cloudlets.
    pub fn many_apps(apps: usize, per_app: usize, cloudlets: usize) -> Self {
        Self {
            apps,
            insts_per_app: per_app,
            cloudlets: cloudlets.max(per_app),
            seed: 42,
        }
    }

    pub fn instances(&self) -> usize {
        self.apps * self.insts_per_app
    }
}

/// The organization owning cloudlet `i`.
pub fn cloudlet_org(i: usize) -> &'static str {
    if i % PUBLIC_EVERY == PUBLIC_EVERY - 1 {
        PUBLIC_CLOUD
    } else {
        CARRIERS[i % CARRIERS.len()]
    }
}

/// The key of app `j` of a synthetic region.
pub fn app_key(j: usize) -> AppKey {
    if j == 0 {
        return fixture::app_key();
    }
    AppKey {
        organization: format!("devorg{}", j % 100),
        name: format!("app{j}"),
        version: "1.0".into(),
    }
}

/// Builds the deployment document of `spec`. Settings are the production defaults (very-close
/// randomisation on, 100 km public-cloud padding, `aws` a public cloud), with a static network
/// location.
pub fn region(world: &World, spec: &RegionSpec) -> Deployment {
    let mut rng = SmallRng::seed_from_u64(spec.seed);
    let mut b = Builder::new().settings(|s| {
        s.randomize_very_close = true;
        s.network_location =
            NetworkLocation::Static(LatLon::new(52.52, 13.405).unwrap_or_default());
    });
    for (code, org) in OPERATOR_CODES {
        b = b.operator_code(code, org);
    }
    let mut cloudlet_names = Vec::with_capacity(spec.cloudlets);
    for i in 0..spec.cloudlets {
        let org = cloudlet_org(i);
        let name = format!("c{i}");
        let at = world.point(&mut rng, SITE_JITTER_DEG);
        b = b.cloudlet(org, &name, at.lat(), at.lon());
        if org != PUBLIC_CLOUD && i % ALLIANCE_EVERY == 0 {
            let ally = CARRIERS[(i + 1) % CARRIERS.len()];
            b = b.with_cloudlet(|c| c.alliance_orgs = vec![ally.into()]);
        }
        cloudlet_names.push((org, name));
    }
    for j in 0..spec.apps {
        let key = app_key(j);
        b = b.app(fixture::app(key.clone()));
        let picks: Vec<usize> = if spec.insts_per_app == spec.cloudlets {
            (0..spec.cloudlets).collect()
        } else {
            rand::seq::index::sample(&mut rng, spec.cloudlets, spec.insts_per_app).into_vec()
        };
        for (k, c) in picks.into_iter().enumerate() {
            let (org, name) = &cloudlet_names[c];
            let inst = format!("{}-{k}", key.name);
            // The document's default naming: <app>.<cloudlet>-<org>.<region>.<dns root>.
            let uri = format!("{}.{name}-{org}.local.edge.example.net", key.name);
            b = b.inst(&key, &inst, org, name).with_inst(|i| i.uri = uri);
        }
    }
    b.build()
}

/// One FindCloudlet question: a carrier (organization name) and a location.
#[derive(Clone, Debug)]
pub struct Query {
    pub carrier: &'static str,
    pub at: LatLon,
}

/// FindCloudlet requests for `qs`, each from its own client registered with `dme` for `app` (its
/// own session cookie), asked at the query's place on its carrier.
pub fn registered_finds(
    dme: &dme::Dme,
    app: &AppKey,
    qs: &[Query],
    ctx: dme::Ctx,
) -> anyhow::Result<Vec<dme_api::proto::FindCloudletRequest>> {
    use dme_api::proto;
    qs.iter()
        .map(|q| {
            let reg = proto::RegisterClientRequest {
                org_name: app.organization.clone(),
                app_name: app.name.clone(),
                app_vers: app.version.clone(),
                ..Default::default()
            };
            let session_cookie = dme
                .register_client(&reg, ctx)
                .map_err(|e| anyhow::anyhow!("registering a client: {}", e.message))?
                .session_cookie;
            Ok(proto::FindCloudletRequest {
                session_cookie,
                carrier_name: q.carrier.into(),
                gps_location: Some(proto::Loc {
                    latitude: q.at.lat(),
                    longitude: q.at.lon(),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
        .collect()
}

/// `n` client questions: world cities with jitter, carriers drawn uniformly from [`CARRIERS`].
pub fn queries(world: &World, n: usize, seed: u64) -> Vec<Query> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| Query {
            carrier: CARRIERS[rng.random_range(0..CARRIERS.len())],
            at: world.client_point(&mut rng),
        })
        .collect()
}

/// Resident set size of this process in bytes (`VmRSS` of `/proc/self/status`, Linux).
pub fn rss_bytes() -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS line in /proc/self/status")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .context("VmRSS is not a number")?;
    Ok(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_regions_build_and_answer() {
        let world = World::load().unwrap();
        let doc = region(&world, &RegionSpec::many_apps(3, 20, 50));
        assert_eq!(doc.app_insts.len(), 60);
        assert_eq!(doc.cloudlets.len(), 50);
        let tables = dme::Tables::from_deployment(&doc, 1).unwrap();
        assert_eq!(tables.app_count(), 3);
        let doc = region(&world, &RegionSpec::one_app(200));
        let tables = dme::Tables::from_deployment(&doc, 1).unwrap();
        let app = tables.apps().next().unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        for q in queries(&world, 50, 7) {
            let found = dme::matcher::find(app, &tables.settings, q.carrier, q.at, 1, &mut rng);
            assert_eq!(found.len(), 1, "{q:?}");
        }
    }
}
