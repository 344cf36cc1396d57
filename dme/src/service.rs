//! The DME's RPCs, independent of transport: gRPC and REST both call these with the decoded
//! request and the client's address, and convert the result at their edge.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use geodata::{GeoIp, LatLon};
use serde::{Deserialize, Serialize};

use crate::convert;
use crate::cookie::{Claims, CookieLoc, KeyRing, Purpose, SessionKey, SessionKeyRef};
use crate::edge_cookie::{self, InstNames};
use crate::error::ApiError;
use crate::matcher::{self, Found};
use crate::proto;
use crate::ratelimit::RateLimiter;
use crate::session_cache::SessionCache;
use crate::tables::{AppKeyRef, AppTable, AuthKey, Tables};
use crate::token;

/// Lifetimes and pass-through settings.
#[derive(Clone, Debug)]
pub struct DmeConfig {
    pub session_cookie_lifetime: Duration,
    pub edge_events_cookie_lifetime: Duration,
    pub client_token_lifetime: Duration,
    pub token_server_uri: String,
    /// Verified session cookies kept (slots; 0: verify every request in full).
    pub session_cache: usize,
}

impl Default for DmeConfig {
    fn default() -> Self {
        Self {
            session_cookie_lifetime: Duration::from_secs(24 * 3600),
            edge_events_cookie_lifetime: Duration::from_secs(600),
            client_token_lifetime: Duration::from_secs(3600),
            token_server_uri: String::new(),
            session_cache: crate::session_cache::DEFAULT_CAPACITY,
        }
    }
}

/// Per-request facts from the transport.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub peer: Option<IpAddr>,
    /// Unix seconds.
    pub now: i64,
}

impl Ctx {
    pub fn now(peer: Option<IpAddr>) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Self {
            peer,
            now: i64::try_from(now).unwrap_or(i64::MAX),
        }
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
    geoip: Option<GeoIp>,
    limiter: RateLimiter,
    sessions: SessionCache,
}

/// The platform client token's claims (signed, unlike upstream's base64 JSON).
#[derive(Serialize, Deserialize)]
struct ClientTokenKey {
    #[serde(rename = "Location")]
    location: CookieLoc,
    #[serde(rename = "AppKey")]
    app_key: TokenAppKey,
}

#[derive(Serialize, Deserialize)]
struct TokenAppKey {
    organization: String,
    name: String,
    version: String,
}

impl Dme {
    pub fn new(tables: Tables, keys: KeyRing, config: DmeConfig, geoip: Option<GeoIp>) -> Self {
        Self {
            tables: ArcSwap::from_pointee(tables),
            keys,
            sessions: SessionCache::new(config.session_cache),
            config,
            geoip,
            limiter: RateLimiter::unlimited(),
        }
    }

    /// Sets request rate limits.
    pub fn with_rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = limiter;
        self
    }

    /// Admits one request of `method` from the client, or refuses it as upstream does
    /// (`ResourceExhausted`, HTTP 429).
    pub fn admit(&self, ctx: Ctx, method: &str) -> Result<(), ApiError> {
        if self.limiter.admit(ctx.peer) {
            return Ok(());
        }
        Err(ApiError::new(
            tonic::Code::ResourceExhausted,
            format!("Request for {method} rate limited, please retry later."),
        ))
    }

    /// Publishes a new snapshot; requests in flight finish on the old one.
    pub fn publish(&self, tables: Tables) {
        self.tables.store(Arc::new(tables));
    }

    pub fn tables(&self) -> Arc<Tables> {
        self.tables.load_full()
    }

    /// Verifies the session cookie and resolves its app in the current snapshot.
    fn session<R>(
        &self,
        cookie: &str,
        ctx: Ctx,
        f: impl FnOnce(&Tables, &Arc<AppTable>, &SessionKeyRef<'_>) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let tables = self.tables.load();
        let with_key = |key: &SessionKeyRef<'_>| {
            let app_key = AppKeyRef {
                organization: &key.orgname,
                name: &key.appname,
                version: &key.appvers,
            };
            let Some(app) = tables.app(&app_key) else {
                return Err(ApiError::unauthenticated(format!(
                    "app not found -- developer: {}, app: {}, version: {}",
                    key.orgname, key.appname, key.appvers
                )));
            };
            f(&tables, app, key)
        };
        if let Some(cached) = self.sessions.get(cookie, ctx.now) {
            return with_key(&cached.key());
        }
        self.keys
            .verify_session_claims(cookie, ctx.now, |claims| {
                self.sessions.insert(cookie, claims.exp, &claims.key);
                with_key(&claims.key)
            })
            .map_err(|e| ApiError::unauthenticated(e.to_string()))?
    }

    pub fn register_client(
        &self,
        req: &proto::RegisterClientRequest,
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
        let tables = self.tables.load();
        let key = AppKeyRef {
            organization: &req.org_name,
            name: &req.app_name,
            version: &req.app_vers,
        };
        let app = tables
            .app(&key)
            .ok_or_else(|| ApiError::not_found("app not found"))?;
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
        self.session(&req.session_cookie, ctx, |tables, app, _| {
            let at = convert::client_location(req.gps_location.as_ref(), "Missing GpsLocation")?;
            Ok(self.find_reply(tables, app, &req.carrier_name, at, ctx))
        })
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
        let mut reply = proto::FindCloudletReply {
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
        if let Some(best) = found.first() {
            reply.status = proto::find_cloudlet_reply::FindStatus::FindFound as i32;
            reply.fqdn = app.uri(best.inst).to_string();
            reply.ports = app.ports(best.inst).iter().map(convert::app_port).collect();
            reply.cloudlet_location = Some(convert::loc(best.inst.location));
            reply.edge_events_cookie = self.edge_events_cookie(app, best, at, ctx);
        }
        reply
    }

    fn edge_events_cookie(
        &self,
        app: &AppTable,
        found: &Found<'_>,
        at: LatLon,
        ctx: Ctx,
    ) -> String {
        let inst = found.inst;
        let names = || InstNames {
            name: found.name,
            organization: app.organization(inst),
            cluster: app.cluster(inst).unwrap_or_default(),
            cloudlet_org: &inst.cloudlet.key.organization,
            cloudlet: &inst.cloudlet.key.name,
        };
        let exp = ctx.now + secs(self.config.edge_events_cookie_lifetime);
        edge_cookie::sign(&self.keys, &inst.edge_prefix, names, at, ctx.now, exp)
    }

    pub fn platform_find_cloudlet(
        &self,
        req: &proto::PlatformFindCloudletRequest,
        ctx: Ctx,
    ) -> Result<proto::FindCloudletReply, ApiError> {
        self.session(&req.session_cookie, ctx, |tables, app, key| {
            require_platform(app, key)?;
            if req.client_token.is_empty() {
                return Err(ApiError::invalid("Missing ClientToken"));
            }
            let token = self
                .keys
                .verify_claims::<ClientTokenKey>(Purpose::ClientToken, &req.client_token, ctx.now)
                .map_err(|e| ApiError::invalid(format!("Invalid ClientToken: {e}")))?;
            let k = &token.app_key;
            if k.organization.is_empty() || k.name.is_empty() || k.version.is_empty() {
                return Err(ApiError::invalid("Invalid ClientToken: incomplete app key"));
            }
            let target = AppKeyRef {
                organization: &k.organization,
                name: &k.name,
                version: &k.version,
            };
            let target = tables
                .app(&target)
                .ok_or_else(|| ApiError::not_found("Requested app does not exist"))?;
            let at = LatLon::new(token.location.latitude, token.location.longitude)
                .map_err(|e| ApiError::invalid(format!("Invalid GpsLocation: {e}")))?;
            Ok(self.find_reply(tables, target, &req.carrier_name, at, ctx))
        })
    }

    pub fn get_app_inst_list(
        &self,
        req: &proto::AppInstListRequest,
        ctx: Ctx,
    ) -> Result<proto::AppInstListReply, ApiError> {
        self.session(&req.session_cookie, ctx, |tables, app, _| {
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
                    edge_events_cookie: self.edge_events_cookie(app, f, at, ctx),
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

    pub fn get_fqdn_list(
        &self,
        req: &proto::FqdnListRequest,
        ctx: Ctx,
    ) -> Result<proto::FqdnListReply, ApiError> {
        self.session(&req.session_cookie, ctx, |tables, app, key| {
            require_platform(app, key)?;
            let mut app_fqdns: Vec<proto::AppFqdn> = tables
                .apps()
                .filter(|a| !a.app.platform_app && !a.app.official_fqdn.is_empty())
                .map(|a| proto::AppFqdn {
                    app_name: a.app.key.name.clone(),
                    app_vers: a.app.key.version.clone(),
                    org_name: a.app.key.organization.clone(),
                    fqdns: a.app.official_fqdn.clone(),
                    android_package_name: a.app.android_package_name.clone(),
                    ..Default::default()
                })
                .collect();
            app_fqdns.sort_by(|a, b| {
                (&a.org_name, &a.app_name, &a.app_vers).cmp(&(
                    &b.org_name,
                    &b.app_name,
                    &b.app_vers,
                ))
            });
            Ok(proto::FqdnListReply {
                app_fqdns,
                status: proto::fqdn_list_reply::FlStatus::FlSuccess as i32,
                ..Default::default()
            })
        })
    }

    pub fn get_app_official_fqdn(
        &self,
        req: &proto::AppOfficialFqdnRequest,
        ctx: Ctx,
    ) -> Result<proto::AppOfficialFqdnReply, ApiError> {
        self.session(&req.session_cookie, ctx, |_, app, _| {
            let at = convert::client_location(req.gps_location.as_ref(), "Missing GpsLocation")?;
            let mut reply = proto::AppOfficialFqdnReply {
                status: proto::app_official_fqdn_reply::AofStatus::AofFail as i32,
                ..Default::default()
            };
            if app.app.official_fqdn.is_empty() {
                return Ok(reply);
            }
            let key = &app.app.key;
            let claims = Claims {
                iat: ctx.now,
                exp: ctx.now + secs(self.config.client_token_lifetime),
                key: ClientTokenKey {
                    location: CookieLoc {
                        latitude: at.lat(),
                        longitude: at.lon(),
                    },
                    app_key: TokenAppKey {
                        organization: key.organization.clone(),
                        name: key.name.clone(),
                        version: key.version.clone(),
                    },
                },
            };
            reply.app_official_fqdn = app.app.official_fqdn.join(",");
            reply.client_token = self.keys.sign_for(Purpose::ClientToken, &claims);
            reply.ports = app
                .app
                .access_ports
                .iter()
                .map(convert::unmapped_port)
                .collect();
            reply.status = proto::app_official_fqdn_reply::AofStatus::AofSuccess as i32;
            Ok(reply)
        })
    }

    pub fn verify_location(
        &self,
        req: &proto::VerifyLocationRequest,
        ctx: Ctx,
    ) -> Result<proto::VerifyLocationReply, ApiError> {
        use proto::verify_location_reply::GpsLocationStatus as S;
        self.session(&req.session_cookie, ctx, |tables, _, _| {
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
        self.session(&req.session_cookie, ctx, |tables, _, _| {
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
        crate::location::network_location(&tables.network_location, self.geoip.as_ref(), ctx.peer)
    }

    /// The stub interceptor behaviour for RPCs this DME does not implement yet: the cookie is
    /// still checked first, as upstream's interceptor would.
    pub fn unimplemented(&self, cookie: &str, ctx: Ctx, what: &str) -> ApiError {
        match self.session(cookie, ctx, |_, _, _| Ok(())) {
            Err(e) => e,
            Ok(()) => ApiError::unimplemented(what),
        }
    }
}

fn require_platform(app: &AppTable, key: &SessionKeyRef<'_>) -> Result<(), ApiError> {
    if app.app.platform_app {
        return Ok(());
    }
    Err(ApiError::permission_denied(format!(
        "API Not allowed for developer: {} app: {}",
        key.orgname, key.appname
    )))
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}
