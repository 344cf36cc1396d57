//! The RPCs of platform apps (PlatformFindCloudlet, GetFqdnList) and the client token that
//! GetAppOfficialFqdn hands out for PlatformFindCloudlet.

use geodata::LatLon;
use serde::{Deserialize, Serialize};

use super::{Ctx, Dme, secs};
use crate::api_stats::Method;
use crate::convert;
use crate::cookie::{Claims, CookieLoc, Purpose, SessionKeyRef};
use crate::error::ApiError;
use crate::proto;
use crate::tables::{AppKeyRef, AppTable};

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
    /// Counted under the app the client token names once it is found (the platform app's
    /// until then).
    pub fn platform_find_cloudlet(
        &self,
        req: &proto::PlatformFindCloudletRequest,
        ctx: Ctx,
    ) -> Result<proto::FindCloudletReply, ApiError> {
        let cookie = &req.session_cookie;
        let method = Method::PlatformFindCloudlet;
        self.session(method, cookie, ctx, |tables, app, key, tally| {
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
            tally.count_under(target);
            let at = LatLon::new(token.location.latitude, token.location.longitude)
                .map_err(|e| ApiError::invalid(format!("Invalid GpsLocation: {e}")))?;
            Ok(self.find_reply(tables, target, &req.carrier_name, at, ctx))
        })
    }

    pub fn get_fqdn_list(
        &self,
        req: &proto::FqdnListRequest,
        ctx: Ctx,
    ) -> Result<proto::FqdnListReply, ApiError> {
        let cookie = &req.session_cookie;
        self.session(Method::GetFqdnList, cookie, ctx, |tables, app, key, _| {
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
        let cookie = &req.session_cookie;
        self.session(Method::GetAppOfficialFqdn, cookie, ctx, |_, app, _, _| {
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
