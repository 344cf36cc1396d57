//! The DME's RPCs, independent of transport: gRPC and REST both call these with the decoded
//! request and the client's address, and convert the result at their edge. Each RPC counts
//! itself in the API counters ([`crate::api_stats`]) under its app, or under the unknown app
//! when the request names none that exists. The platform RPCs are in `platform`.

mod counted;
mod platform;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::Bytes;
use geodata::{GeoIp, LatLon};

use crate::api_stats::{self, AppStats, Method, Outcome, Scrapes};
use crate::convert;
use crate::cookie::{Claims, KeyRing, SessionKey, SessionKeyRef};
use crate::edge_cookie;
use crate::edge_events::{Change, EdgeConfig, EdgeCounters, Hub};
use crate::error::ApiError;
use crate::matcher;
use crate::proto;
use crate::ratelimit::RateLimiter;
use crate::session_cache::SessionCache;
use crate::tables::{AppKeyRef, AppTable, AuthKey, Inst, Tables};
use crate::token;
use counted::{Counted, Tally, outcome};

/// Lifetimes and pass-through settings.
#[derive(Clone, Debug)]
pub struct DmeConfig {
    pub session_cookie_lifetime: Duration,
    pub edge_events_cookie_lifetime: Duration,
    pub client_token_lifetime: Duration,
    pub token_server_uri: String,
    /// Verified session cookies kept (slots; 0: verify every request in full).
    pub session_cache: usize,
    pub edge_events: EdgeConfig,
}

impl Default for DmeConfig {
    fn default() -> Self {
        Self {
            session_cookie_lifetime: Duration::from_secs(24 * 3600),
            edge_events_cookie_lifetime: Duration::from_secs(600),
            client_token_lifetime: Duration::from_secs(3600),
            token_server_uri: String::new(),
            session_cache: crate::session_cache::DEFAULT_CAPACITY,
            edge_events: EdgeConfig::default(),
        }
    }
}

/// Per-request facts from the transport.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub peer: Option<IpAddr>,
    /// Unix seconds.
    pub now: i64,
    /// When the front end started on the request: the start of its latency.
    arrived: SystemTime,
}

impl Ctx {
    pub fn now(peer: Option<IpAddr>) -> Self {
        let arrived = SystemTime::now();
        let now = arrived
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Self {
            peer,
            now: i64::try_from(now).unwrap_or(i64::MAX),
            arrived,
        }
    }

    /// A request that sees the time as `now` (Unix seconds), for tests of expiry; its latency
    /// is measured on the real clock.
    pub fn at(peer: Option<IpAddr>, now: i64) -> Self {
        Self {
            now,
            ..Self::now(peer)
        }
    }

    /// The time since the request arrived. On the wall clock that gives `now`, so a request
    /// reads a clock once more, not twice (a read costs 20-40 ns, a few percent of a
    /// FindCloudlet); slewing is negligible, and a clock step spoils one figure per request in
    /// flight (zero if the clock went back).
    pub fn elapsed(&self) -> Duration {
        self.arrived.elapsed().unwrap_or_default()
    }
}

/// Longest accepted client-supplied string (keys, unique ids): they end up inside cookies.
const MAX_FIELD_LEN: usize = 256;
/// Largest GetAppInstList limit.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// The matching engine: tables published atomically, plus the keys that sign cookies.
pub struct Dme {
    tables: ArcSwap<Tables>,
    keys: KeyRing,
    config: DmeConfig,
    geoip: Option<Arc<GeoIp>>,
    limiter: RateLimiter,
    sessions: SessionCache,
    /// Counters of requests whose app is not known (bad cookie, unknown app, refused early).
    unknown: Arc<AppStats>,
    scrapes: Scrapes,
    /// Open edge-events streams and their measurements.
    edge: Hub,
    /// The CAMARA APIs' configuration, when they are served.
    camara: Option<Arc<crate::camara::Camara>>,
}

impl Dme {
    pub fn new(tables: Tables, keys: KeyRing, config: DmeConfig, geoip: Option<GeoIp>) -> Self {
        Self {
            tables: ArcSwap::from_pointee(tables),
            keys,
            sessions: SessionCache::new(config.session_cache),
            config,
            geoip: geoip.map(Arc::new),
            limiter: RateLimiter::unlimited(),
            unknown: Arc::default(),
            scrapes: Scrapes::default(),
            edge: Hub::default(),
            camara: None,
        }
    }

    /// Serves the CAMARA APIs with this configuration.
    pub fn with_camara(mut self, camara: crate::camara::Camara) -> Self {
        self.camara = Some(Arc::new(camara));
        self
    }

    pub fn camara(&self) -> Option<&Arc<crate::camara::Camara>> {
        self.camara.as_ref()
    }

    /// The DME's GeoIP database, if it has one.
    pub fn geoip(&self) -> Option<&Arc<GeoIp>> {
        self.geoip.as_ref()
    }

    /// Whether the rate limits admit one more request from the client (for front ends that
    /// count their requests elsewhere).
    pub fn admit_peer(&self, ctx: Ctx) -> bool {
        self.limiter.admit(ctx.peer)
    }

    pub fn config(&self) -> &DmeConfig {
        &self.config
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The edge-events streams.
    pub fn edge(&self) -> &Hub {
        &self.edge
    }

    pub fn edge_counters(&self) -> EdgeCounters {
        self.edge.counters()
    }

    /// Publishes a snapshot and then tells the open edge-events streams what changed in it.
    pub fn publish_changes(&self, tables: Tables, changes: &[Change]) {
        self.publish(tables);
        if !changes.is_empty() {
            self.edge.dispatch(&self.tables.load(), changes);
        }
    }

    /// Builds the mirror's pending changes into a snapshot on this thread, publishes it and
    /// pushes the changes (what the notify subscriber does off the async workers).
    pub fn apply_mirror(&self, mirror: &mut crate::mirror::Mirror, version: u64) {
        let tables = mirror.build(Some(&self.tables.load()), version);
        let changes = mirror.take_changes();
        self.publish_changes(tables, &changes);
    }

    /// Sends EVENT_LATENCY_REQUEST to the streams on an instance; how many were asked.
    pub fn request_latency(&self, inst: &edge_model::AppInstKey) -> usize {
        self.edge.request_latency(inst)
    }

    /// Sets request rate limits.
    pub fn with_rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = limiter;
        self
    }

    /// Admits one request of `method` from the client, or refuses it as upstream does
    /// (`ResourceExhausted`, HTTP 429).
    pub fn admit(&self, ctx: Ctx, method: Method) -> Result<(), ApiError> {
        if self.limiter.admit(ctx.peer) {
            return Ok(());
        }
        self.count_refused(method, ctx);
        Err(ApiError::new(
            tonic::Code::ResourceExhausted,
            format!(
                "Request for {} rate limited, please retry later.",
                method.name()
            ),
        ))
    }

    /// Counts a request refused before its RPC ran, so before its app was known: rate limited,
    /// an unreadable body, an RPC the transport does not serve.
    pub fn count_refused(&self, method: Method, ctx: Ctx) {
        api_stats::count(&self.unknown, method, Outcome::Error, ctx.elapsed());
    }

    /// Publishes a new snapshot; requests in flight finish on the old one. Its apps keep the
    /// counters they have in the current snapshot. There is one publisher (the subscriber, or
    /// whoever drives a standalone DME).
    pub fn publish(&self, mut tables: Tables) {
        tables.take_stats_from(&self.tables.load());
        self.tables.store(Arc::new(tables));
    }

    /// The API counters in Prometheus text format ([`crate::api_stats`]): rendered off the runtime's
    /// workers, one render at a time, shared by concurrent scrapes. `None` if rendering failed.
    pub async fn metrics(self: &Arc<Self>) -> Option<Bytes> {
        let dme = self.clone();
        self.scrapes
            .get(move || {
                let mut text = dme.tables().render_stats(&dme.unknown);
                dme.edge.render(&mut text);
                text
            })
            .await
    }

    pub fn tables(&self) -> Arc<Tables> {
        self.tables.load_full()
    }

    /// Verifies the session cookie, resolves its app in the current snapshot and runs `f`, then
    /// counts the request under the app (or the one `f` names in its [`Tally`]); under the
    /// unknown app when the cookie or its app is not valid.
    fn session<R: Counted>(
        &self,
        method: Method,
        cookie: &str,
        ctx: Ctx,
        f: impl for<'t> FnOnce(
            &'t Tables,
            &'t Arc<AppTable>,
            &SessionKeyRef<'_>,
            &mut Tally<'t>,
        ) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let tables = self.tables.load();
        let no_app = |e: ApiError| {
            api_stats::count(&self.unknown, method, Outcome::Error, ctx.elapsed());
            Err(e)
        };
        let with_key = |key: &SessionKeyRef<'_>| {
            let app_key = AppKeyRef {
                organization: &key.orgname,
                name: &key.appname,
                version: &key.appvers,
            };
            let Some(app) = tables.app(&app_key) else {
                return no_app(ApiError::unauthenticated(format!(
                    "app not found -- developer: {}, app: {}, version: {}",
                    key.orgname, key.appname, key.appvers
                )));
            };
            let mut tally = Tally(&app.stats);
            let result = f(&tables, app, key, &mut tally);
            api_stats::count(tally.0, method, outcome(&result), ctx.elapsed());
            result
        };
        if let Some(cached) = self.sessions.get(cookie, ctx.now) {
            return with_key(&cached.key());
        }
        self.keys
            .verify_session_claims(cookie, ctx.now, |claims| {
                self.sessions.insert(cookie, claims.exp, &claims.key);
                with_key(&claims.key)
            })
            .unwrap_or_else(|e| no_app(ApiError::unauthenticated(e.to_string())))
    }

    /// Verifies a session cookie and runs `f` on its app in the current snapshot, counting the
    /// request under `method` (for RPCs outside this module, such as edge-events streams).
    pub(crate) fn verify_session_app<R>(
        &self,
        cookie: &str,
        ctx: Ctx,
        f: impl FnOnce(&Tables, &Arc<AppTable>) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        struct Plain<R>(R);
        impl<R> Counted for Plain<R> {}
        self.session(Method::StreamEdgeEvent, cookie, ctx, |t, a, _, _| {
            f(t, a).map(Plain)
        })
        .map(|p| p.0)
    }

    /// Counted under the app the request names, if it exists.
    pub fn register_client(
        &self,
        req: &proto::RegisterClientRequest,
        ctx: Ctx,
    ) -> Result<proto::RegisterClientReply, ApiError> {
        let tables = self.tables.load();
        let app = tables.app(&AppKeyRef {
            organization: &req.org_name,
            name: &req.app_name,
            version: &req.app_vers,
        });
        let result = self.register(req, app.map(|a| &**a), ctx);
        let stats = app.map_or(&self.unknown, |a| &a.stats);
        api_stats::count(
            stats,
            Method::RegisterClient,
            outcome(&result),
            ctx.elapsed(),
        );
        result
    }

    fn register(
        &self,
        req: &proto::RegisterClientRequest,
        app: Option<&AppTable>,
        ctx: Ctx,
    ) -> Result<proto::RegisterClientReply, ApiError> {
        for (value, what) in [
            (&req.org_name, "OrgName"),
            (&req.app_name, "AppName"),
            (&req.app_vers, "AppVers"),
        ] {
            if value.is_empty() {
                return Err(ApiError::invalid(format!("{what} cannot be empty")));
            }
        }
        for (value, what) in [
            (&req.org_name, "OrgName"),
            (&req.app_name, "AppName"),
            (&req.app_vers, "AppVers"),
            (&req.unique_id, "UniqueId"),
            (&req.unique_id_type, "UniqueIdType"),
        ] {
            if value.len() > MAX_FIELD_LEN {
                return Err(ApiError::invalid(format!(
                    "{what} longer than {MAX_FIELD_LEN} bytes"
                )));
            }
        }
        if req.unique_id.is_empty() != req.unique_id_type.is_empty() {
            return Err(ApiError::invalid(
                "Both, or none of UniqueId and UniqueIdType should be set",
            ));
        }
        let app = app.ok_or_else(|| ApiError::not_found("app not found"))?;
        match (&app.auth_key, req.auth_token.is_empty()) {
            (AuthKey::Invalid(reason), _) => {
                return Err(ApiError::new(
                    tonic::Code::FailedPrecondition,
                    format!("the app's auth public key is unusable: {reason}"),
                ));
            }
            (AuthKey::Rsa(_), true) => return Err(ApiError::invalid("No authtoken received")),
            (AuthKey::None, false) => {
                return Err(ApiError::unauthenticated(
                    "No authkey found to validate token",
                ));
            }
            (AuthKey::Rsa(der), false) => token::verify_auth_token(
                &req.auth_token,
                der,
                &req.org_name,
                &req.app_name,
                &req.app_vers,
                ctx.now,
            )
            .map_err(|e| ApiError::unauthenticated(e.to_string()))?,
            (AuthKey::None, true) => {}
        }
        let mut reply = proto::RegisterClientReply {
            status: proto::ReplyStatus::RsSuccess as i32,
            token_server_uri: self.config.token_server_uri.clone(),
            ..Default::default()
        };
        let (unique_id_type, unique_id) = if req.unique_id.is_empty() {
            let kind = if app.app.platform_app {
                format!("{}:{}", req.org_name, req.app_name)
            } else {
                "dme-ksuid".to_string()
            };
            reply.unique_id_type = kind.clone();
            reply.unique_id = crate::ksuid::new(ctx.now);
            (kind, reply.unique_id.clone())
        } else {
            (req.unique_id_type.clone(), req.unique_id.clone())
        };
        let claims = Claims {
            iat: ctx.now,
            exp: ctx.now + secs(self.config.session_cookie_lifetime),
            key: SessionKey {
                peerip: ctx.peer.map(|p| p.to_string()).unwrap_or_default(),
                orgname: req.org_name.clone(),
                appname: req.app_name.clone(),
                appvers: req.app_vers.clone(),
                uniqueidtype: unique_id_type,
                uniqueid: unique_id,
                kid: String::new(),
            },
        };
        reply.session_cookie = self.keys.sign(&claims);
        Ok(reply)
    }

    pub fn find_cloudlet(
        &self,
        req: &proto::FindCloudletRequest,
        ctx: Ctx,
    ) -> Result<proto::FindCloudletReply, ApiError> {
        self.session(
            Method::FindCloudlet,
            &req.session_cookie,
            ctx,
            |tables, app, _, _| {
                let at =
                    convert::client_location(req.gps_location.as_ref(), "Missing GpsLocation")?;
                Ok(self.find_reply(tables, app, &req.carrier_name, at, ctx))
            },
        )
    }

    /// The shared tail of FindCloudlet and PlatformFindCloudlet.
    fn find_reply(
        &self,
        tables: &Tables,
        app: &AppTable,
        carrier: &str,
        at: LatLon,
        ctx: Ctx,
    ) -> proto::FindCloudletReply {
        let reply = proto::FindCloudletReply {
            status: proto::find_cloudlet_reply::FindStatus::FindNotfound as i32,
            cloudlet_location: Some(proto::Loc::default()),
            ..Default::default()
        };
        // Platform apps are never returned.
        if app.app.platform_app {
            return reply;
        }
        let carrier = tables.translate_carrier(carrier);
        let found = matcher::find(app, &tables.settings, carrier, at, 1, &mut rand::rng());
        match found.first() {
            Some(best) => self.found_reply(app, best.inst, at, ctx),
            None => reply,
        }
    }

    /// A FOUND reply sending a client at `at` to `inst`, with its edge-events cookie.
    pub(crate) fn found_reply(
        &self,
        app: &AppTable,
        inst: &Inst,
        at: LatLon,
        ctx: Ctx,
    ) -> proto::FindCloudletReply {
        proto::FindCloudletReply {
            status: proto::find_cloudlet_reply::FindStatus::FindFound as i32,
            fqdn: app.uri(inst).to_string(),
            ports: app.ports(inst).iter().map(convert::app_port).collect(),
            cloudlet_location: Some(convert::loc(inst.location)),
            edge_events_cookie: self.edge_events_cookie(app, inst, at, ctx),
            ..Default::default()
        }
    }

    fn edge_events_cookie(&self, app: &AppTable, inst: &Inst, at: LatLon, ctx: Ctx) -> String {
        let exp = ctx.now + secs(self.config.edge_events_cookie_lifetime);
        edge_cookie::sign(&self.keys, app.edge_tag, inst.edge_tag, at, ctx.now, exp)
    }

    pub fn get_app_inst_list(
        &self,
        req: &proto::AppInstListRequest,
        ctx: Ctx,
    ) -> Result<proto::AppInstListReply, ApiError> {
        let cookie = &req.session_cookie;
        self.session(Method::GetAppInstList, cookie, ctx, |tables, app, _, _| {
            let at = convert::client_location(req.gps_location.as_ref(), "Missing GPS location")?;
            let limit = match req.limit {
                0 => 3,
                n if n > MAX_LIST_LIMIT => {
                    return Err(ApiError::invalid(format!(
                        "limit {n} exceeds the maximum of {MAX_LIST_LIMIT}"
                    )));
                }
                n => n,
            };
            let carrier = tables.translate_carrier(&req.carrier_name);
            let found = matcher::find(
                app,
                &tables.settings,
                carrier,
                at,
                limit as usize,
                &mut rand::rng(),
            );
            let mut cloudlets: Vec<proto::CloudletLocation> = Vec::new();
            for f in &found {
                let c = &f.inst.cloudlet;
                let entry = proto::Appinstance {
                    app_name: app.app.key.name.clone(),
                    app_vers: app.app.key.version.clone(),
                    fqdn: app.uri(f.inst).to_string(),
                    ports: app.ports(f.inst).iter().map(convert::app_port).collect(),
                    org_name: app.app.key.organization.clone(),
                    edge_events_cookie: self.edge_events_cookie(app, f.inst, at, ctx),
                    ..Default::default()
                };
                match cloudlets.iter_mut().find(|cl| {
                    cl.cloudlet_name == c.key.name && cl.carrier_name == c.key.organization
                }) {
                    Some(cl) => cl.appinstances.push(entry),
                    None => cloudlets.push(proto::CloudletLocation {
                        carrier_name: c.key.organization.clone(),
                        cloudlet_name: c.key.name.clone(),
                        gps_location: Some(convert::loc(f.inst.location)),
                        distance: f.distance_km,
                        appinstances: vec![entry],
                        ..Default::default()
                    }),
                }
            }
            Ok(proto::AppInstListReply {
                status: proto::app_inst_list_reply::AiStatus::AiSuccess as i32,
                cloudlets,
                ..Default::default()
            })
        })
    }

    pub fn verify_location(
        &self,
        req: &proto::VerifyLocationRequest,
        ctx: Ctx,
    ) -> Result<proto::VerifyLocationReply, ApiError> {
        use proto::verify_location_reply::GpsLocationStatus as S;
        let cookie = &req.session_cookie;
        self.session(Method::VerifyLocation, cookie, ctx, |tables, _, _, _| {
            let loc = req
                .gps_location
                .as_ref()
                .filter(|l| l.latitude != 0.0 || l.longitude != 0.0);
            let at = convert::client_location(loc, "Missing GPS location")?;
            let mut reply = proto::VerifyLocationReply {
                gps_location_status: S::LocUnknown as i32,
                gps_location_accuracy_km: -1.0,
                ..Default::default()
            };
            let Some(network) = self.network_location(tables, ctx) else {
                return Ok(reply);
            };
            let (status, accuracy) = crate::location::verify(network.distance_km(&at));
            reply.gps_location_status = status as i32;
            reply.gps_location_accuracy_km = accuracy;
            Ok(reply)
        })
    }

    pub fn get_location(
        &self,
        req: &proto::GetLocationRequest,
        ctx: Ctx,
    ) -> Result<proto::GetLocationReply, ApiError> {
        use proto::get_location_reply::LocStatus;
        let cookie = &req.session_cookie;
        self.session(Method::GetLocation, cookie, ctx, |tables, _, _, _| {
            let mut reply = proto::GetLocationReply {
                status: LocStatus::LocUnknown as i32,
                carrier_name: req.carrier_name.clone(),
                ..Default::default()
            };
            if let Some(p) = self.network_location(tables, ctx) {
                reply.status = LocStatus::LocFound as i32;
                reply.network_location = Some(convert::loc(p));
            }
            Ok(reply)
        })
    }

    /// The device's location as the network sees it, from the configured source.
    fn network_location(&self, tables: &Tables, ctx: Ctx) -> Option<LatLon> {
        crate::location::network_location(&tables.network_location, self.geoip.as_deref(), ctx.peer)
    }

    /// The stub interceptor behaviour for RPCs this DME does not implement yet: the cookie is
    /// still checked first, as upstream's interceptor would.
    pub fn unimplemented(&self, method: Method, cookie: &str, ctx: Ctx) -> ApiError {
        let refuse = || ApiError::unimplemented(method.name());
        self.session::<()>(method, cookie, ctx, |_, _, _, _| Err(refuse()))
            .err()
            .unwrap_or_else(refuse)
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}
