//! The four CAMARA operations on one snapshot: request body (already a JSON object) in, answer
//! or [`CamaraError`] out. Token and scope checks happen before these run.

use axum::http::StatusCode;
use edge_auth::AccessClaims;
use edge_model::camara_id;
use geodata::LatLon;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::Camara;
use super::area::{self, Area, Verdict};
use super::device::{self, Identifier, PortRange};
use super::error::CamaraError;
use super::json::{Obj, number, opt_int, opt_str, req_array, req_obj};
use super::locator::{Fix, LocateError};
use crate::matcher;
use crate::tables::{Tables, Zone};

/// The device the body named (already parsed), located; with the identifier used.
fn locate(
    cam: &Camara,
    device: Option<Identifier>,
    now: i64,
) -> Result<(Identifier, Fix), CamaraError> {
    let Some(id) = device else {
        return Err(CamaraError::unprocessable(
            "MISSING_IDENTIFIER",
            "the device cannot be identified from the access token: name it in `device`",
        ));
    };
    match cam.locator.locate(&id, now) {
        Ok(fix) => Ok((id, fix)),
        Err(LocateError::NotFound) => Err(CamaraError::unknown_device(
            "the network does not know the device",
        )),
        Err(LocateError::Unsupported(why)) => {
            Err(CamaraError::unprocessable("UNSUPPORTED_IDENTIFIER", why))
        }
    }
}

/// Simple Edge Discovery's answer: the zone's own members (as [`Zone`] names them), then the
/// device.
#[derive(Serialize)]
struct ClosestZone<'a> {
    #[serde(flatten)]
    zone: &'a Zone,
    device: &'a Identifier,
}

/// One of Application Endpoint Discovery's endpoints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint<'a> {
    fqdn: &'a str,
    port: i32,
    /// The zone as its cloudlet record carries it, encoded once per snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    edge_cloud_zone: Option<&'a RawValue>,
}

/// Application Endpoint Discovery's answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Endpoints<'a, E: Serialize> {
    application_endpoints: E,
    app_id: &'a str,
    application_server_provider_name: &'a str,
    device: &'a Identifier,
}

/// The endpoints, written as they are produced (no list is collected first).
struct EndpointList<'a> {
    fqdn: &'a str,
    ports: &'a [edge_model::AppPort],
    zone: Option<&'a RawValue>,
}

impl Serialize for EndpointList<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.ports.iter().map(|p| Endpoint {
            fqdn: self.fqdn,
            port: p.public_port.clamp(0, 65535),
            edge_cloud_zone: self.zone,
        }))
    }
}

/// Room for a typical answer, so encoding does not grow the buffer step by step.
const ANSWER_CAPACITY: usize = 512;

fn encode<T: Serialize>(answer: &T) -> Result<Vec<u8>, CamaraError> {
    let mut out = Vec::with_capacity(ANSWER_CAPACITY);
    serde_json::to_writer(&mut out, answer)
        .map(|()| out)
        .map_err(|e| {
            CamaraError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                format!("encoding the answer: {e}"),
            )
        })
}

/// `POST /simple-edge-discovery/v2/retrieve-closest-edge-cloud-zone`: the active zone nearest
/// the device's network location, on the operator's network.
pub fn closest_zone(
    tables: &Tables,
    cam: &Camara,
    body: &Obj,
    now: i64,
) -> Result<Vec<u8>, CamaraError> {
    let (id, fix) = locate(cam, device::parse(body, PortRange(1024))?, now)?;
    let operator = cam.operator.as_deref();
    let (zone, _) = tables
        .zones
        .nearest(fix.center, operator)
        .ok_or_else(|| CamaraError::not_found("no edge cloud zone is available for the device"))?;
    encode(&ClosestZone { zone, device: &id })
}

/// `POST /application-endpoint-discovery/v0.1/retrieve-optimal-app-endpoints`: FindCloudlet
/// for a device the network locates: the nearest usable instance of the app for the operator's
/// subscribers, one endpoint per port.
pub fn app_endpoints(
    tables: &Tables,
    cam: &Camara,
    claims: &AccessClaims,
    body: &Obj,
    now: i64,
) -> Result<Vec<u8>, CamaraError> {
    let uuid = |field: &'static str| -> Result<Option<(&str, u128)>, CamaraError> {
        opt_str(body, field, field)?
            .map(|v| {
                camara_id::parse(v)
                    .map(|id| (v, id))
                    .ok_or_else(|| CamaraError::invalid(format!("{field} must be a UUID")))
            })
            .transpose()
    };
    let app_id = uuid("appId")?;
    let list_id = uuid("applicationEndpointsId")?;
    // The device too is checked before anything is looked up: a malformed body is a 400.
    let device = device::parse(body, PortRange(0))?;
    let Some((app_id, app_uuid)) = app_id else {
        if list_id.is_some() {
            return Err(CamaraError::not_found(
                "application endpoint lists (Application Endpoint Registration) are not served \
                 here: give appId",
            ));
        }
        return Err(CamaraError::invalid(
            "appId or applicationEndpointsId is required",
        ));
    };
    let (id, fix) = locate(cam, device, now)?;
    let unknown = || CamaraError::not_found(format!("no application {app_id}"));
    // An app of another organisation is as unknown as a missing one: ids do not leak.
    let app = tables
        .zones
        .app(app_uuid)
        .filter(|a| a.key.organization == claims.org)
        .ok_or_else(unknown)?;
    let key = &app.key;
    let table = tables
        .app(&crate::tables::AppKeyRef {
            organization: &key.organization,
            name: &key.name,
            version: &key.version,
        })
        .ok_or_else(unknown)?;
    let carrier = tables.translate_carrier(cam.operator.as_deref().unwrap_or(""));
    let found = if table.app.platform_app {
        Default::default()
    } else {
        matcher::find(
            table,
            &tables.settings,
            carrier,
            fix.center,
            1,
            &mut rand::rng(),
        )
    };
    let best = found.first().ok_or_else(|| {
        CamaraError::not_found("no instance of the application is available for the device")
    })?;
    let ports = table.ports(best.inst);
    if ports.is_empty() {
        return Err(CamaraError::not_found(
            "the application's instance exposes no port",
        ));
    }
    encode(&Endpoints {
        application_endpoints: EndpointList {
            fqdn: table.uri(best.inst),
            ports,
            zone: best.inst.cloudlet.zone.as_deref(),
        },
        app_id,
        application_server_provider_name: &app.provider,
        device: &id,
    })
}

/// The request's `maxAge` (seconds; read before the device is located, so a malformed body
fn read_max_age(body: &Obj) -> Result<Option<i64>, CamaraError> {
    opt_int(body, "maxAge", "maxAge")
}

/// Refuses a location older than `max` seconds. Every location is older than a negative age,
/// so that is refused the same way (the schema allows any integer).
fn check_age(max: Option<i64>, fix: &Fix, now: i64, code: &'static str) -> Result<(), CamaraError> {
    let Some(max) = max else {
        return Ok(());
    };
    let age = now.saturating_sub(fix.at).max(0);
    if age > max {
        return Err(CamaraError::unprocessable(
            code,
            format!("the device's last known location is {age} s old, more than maxAge {max} s"),
        ));
    }
    Ok(())
}

fn point(o: &Obj, field: &str) -> Result<LatLon, CamaraError> {
    let lat = number(o, "latitude", &format!("{field}.latitude"), -90.0, 90.0)?;
    let lon = number(o, "longitude", &format!("{field}.longitude"), -180.0, 180.0)?;
    LatLon::new(lat, lon).map_err(|e| CamaraError::invalid(format!("{field}: {e}")))
}

/// The request's `area`: a CIRCLE (3.0), or a POLYGON of 3-15 points (the retrieval API's
/// shape, accepted here too).
fn parse_area(body: &Obj) -> Result<Area, CamaraError> {
    let area = req_obj(body, "area", "area")?;
    match opt_str(area, "areaType", "area.areaType")? {
        Some("CIRCLE") => {
            let center = point(req_obj(area, "center", "area.center")?, "area.center")?;
            let radius_m = number(area, "radius", "area.radius", 1.0, f64::MAX)?;
            Ok(Area::Circle { center, radius_m })
        }
        Some("POLYGON") => {
            let boundary = req_array(area, "boundary", "area.boundary")?;
            if !(3..=15).contains(&boundary.len()) {
                return Err(CamaraError::invalid(
                    "area.boundary must have 3 to 15 points",
                ));
            }
            let points = boundary
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let field = format!("area.boundary[{i}]");
                    match p {
                        Value::Object(o) => point(o, &field),
                        _ => Err(CamaraError::invalid(format!("{field} must be an object"))),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Area::Polygon(points))
        }
        Some(other) => Err(CamaraError::invalid(format!(
            "area.areaType {other:?} is not CIRCLE or POLYGON"
        ))),
        None => Err(CamaraError::invalid("area.areaType is required")),
    }
}

/// `POST /location-verification/v3/verify`.
pub fn verify_location(cam: &Camara, body: &Obj, now: i64) -> Result<Value, CamaraError> {
    let area = parse_area(body)?;
    let max_age = read_max_age(body)?;
    let (id, fix) = locate(cam, device::parse(body, PortRange(0))?, now)?;
    check_age(
        max_age,
        &fix,
        now,
        "LOCATION_VERIFICATION.UNABLE_TO_FULFILL_MAX_AGE",
    )?;
    let verdict = area::verify(&area, &fix)
        .map_err(|e| CamaraError::unprocessable("LOCATION_VERIFICATION.INVALID_AREA", e.0))?;
    let mut answer = json!({
        "lastLocationTime": rfc3339(fix.at),
        "device": id.to_json(),
    });
    match verdict {
        Verdict::True => answer["verificationResult"] = json!("TRUE"),
        Verdict::False => answer["verificationResult"] = json!("FALSE"),
        Verdict::Partial(rate) => {
            answer["verificationResult"] = json!("PARTIAL");
            answer["matchRate"] = json!(rate);
        }
    }
    Ok(answer)
}

/// `POST /location-retrieval/v0.5/retrieve`: the device's network location as a circle.
pub fn retrieve_location(cam: &Camara, body: &Obj, now: i64) -> Result<Value, CamaraError> {
    let max_surface = match opt_int(body, "maxSurface", "maxSurface")? {
        Some(s) if s < 1 => return Err(CamaraError::invalid("maxSurface must be at least 1")),
        other => other,
    };
    let max_age = read_max_age(body)?;
    let (id, fix) = locate(cam, device::parse(body, PortRange(0))?, now)?;
    check_age(
        max_age,
        &fix,
        now,
        "LOCATION_RETRIEVAL.UNABLE_TO_FULFILL_MAX_AGE",
    )?;
    let surface = std::f64::consts::PI * fix.radius_m * fix.radius_m;
    if let Some(max) = max_surface
        && surface > max as f64
    {
        return Err(CamaraError::unprocessable(
            "LOCATION_RETRIEVAL.UNABLE_TO_FULFILL_MAX_SURFACE",
            format!(
                "the device's location is known within {surface:.0} m², more than maxSurface {max} m²"
            ),
        ));
    }
    Ok(json!({
        "lastLocationTime": rfc3339(fix.at),
        "area": {
            "areaType": "CIRCLE",
            "center": {"latitude": fix.center.lat(), "longitude": fix.center.lon()},
            "radius": fix.radius_m,
        },
        "device": id.to_json(),
    }))
}

/// Unix seconds as an RFC 3339 UTC date-time (`2026-12-06T23:57:24Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian; Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::camara::locator::DeviceLocator;

    /// Knows one phone, located an hour before `NOW`.
    struct OnePhone;
    const NOW: i64 = 1_800_000_000;

    impl DeviceLocator for OnePhone {
        fn locate(&self, id: &Identifier, _: i64) -> Result<Fix, LocateError> {
            match id {
                Identifier::Phone(p) if p == "+4917012345678" => Ok(Fix {
                    center: LatLon::new(52.52, 13.405).unwrap(),
                    radius_m: 500.0,
                    at: NOW - 3600,
                }),
                _ => Err(LocateError::NotFound),
            }
        }
        fn describe(&self) -> String {
            "one phone".into()
        }
    }

    fn cam() -> Camara {
        Camara {
            keys: edge_auth::KeySource::fixed(edge_auth::Verifier::default()),
            locator: Arc::new(OnePhone),
            operator: None,
        }
    }

    fn body(v: Value) -> Obj {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn max_age_is_checked_before_and_after_locating() {
        let c = cam();
        let known = json!({"phoneNumber": "+4917012345678"});
        let unknown = json!({"phoneNumber": "+4917000000000"});
        // A malformed maxAge is a 400 even for an unknown device.
        let e = retrieve_location(&c, &body(json!({"device": unknown, "maxAge": "1"})), NOW);
        assert_eq!(e.unwrap_err().code, "INVALID_ARGUMENT");
        let e = retrieve_location(&c, &body(json!({"device": unknown})), NOW);
        assert_eq!(e.unwrap_err().code, "IDENTIFIER_NOT_FOUND");
        // An hour-old location: fine for maxAge 3600, too old for 60 or a negative age.
        assert!(
            retrieve_location(&c, &body(json!({"device": known, "maxAge": 3600})), NOW).is_ok()
        );
        for max in [60, -5] {
            let e = retrieve_location(&c, &body(json!({"device": known, "maxAge": max})), NOW);
            assert_eq!(
                e.unwrap_err().code,
                "LOCATION_RETRIEVAL.UNABLE_TO_FULFILL_MAX_AGE"
            );
        }
        let area = json!({"areaType": "CIRCLE", "center": {"latitude": 52.52, "longitude": 13.405}, "radius": 1000});
        let e = verify_location(
            &c,
            &body(json!({"device": known, "area": area, "maxAge": 0})),
            NOW,
        );
        assert_eq!(
            e.unwrap_err().code,
            "LOCATION_VERIFICATION.UNABLE_TO_FULFILL_MAX_AGE"
        );
        let ok = verify_location(&c, &body(json!({"device": known, "area": area})), NOW).unwrap();
        assert_eq!(ok["verificationResult"], "TRUE");
        assert_eq!(ok["lastLocationTime"], rfc3339(NOW - 3600));
    }

    #[test]
    fn discovery_answers_are_written_in_the_specs_member_order() {
        use crate::fixture::{self, Builder};
        let app = fixture::app_key();
        let doc = Builder::new()
            .app(fixture::app(app.clone()))
            .site(&app, "telekom", "berlin", 52.52, 13.405)
            .build();
        let tables = Tables::from_deployment(&doc, 1).unwrap();
        let c = Camara {
            operator: Some("telekom".into()),
            ..cam()
        };
        let zone_id = camara_id::zone_id(&fixture::cloudlet_key("telekom", "berlin"));
        let zone = format!(
            r#"{{"edgeCloudZoneId":"{zone_id}","edgeCloudZoneName":"berlin","edgeCloudProvider":"telekom"}}"#
        );
        let device = r#"{"phoneNumber":"+4917012345678"}"#;
        let sed = closest_zone(
            &tables,
            &c,
            &body(json!({"device": {"phoneNumber": "+4917012345678"}})),
            NOW,
        )
        .unwrap();
        let sed_want = format!(r#"{},"device":{device}}}"#, zone.trim_end_matches('}'));
        assert_eq!(String::from_utf8(sed).unwrap(), sed_want);

        let app_id = camara_id::app_id(&app);
        let claims = AccessClaims {
            iss: "https://mc".into(),
            sub: "k".into(),
            client_id: "k".into(),
            org: "devorg".into(),
            scope: String::new(),
            iat: NOW,
            exp: NOW + 60,
            jti: "j".into(),
        };
        let req = body(json!({"appId": app_id, "device": {"phoneNumber": "+4917012345678"}}));
        let aed = app_endpoints(&tables, &c, &claims, &req, NOW).unwrap();
        let aed_want = format!(
            r#"{{"applicationEndpoints":[{{"fqdn":"berlin.berlin-telekom.local.edge.example.net","port":443,"edgeCloudZone":{zone}}}],"appId":"{app_id}","applicationServerProviderName":"devorg","device":{device}}}"#
        );
        assert_eq!(String::from_utf8(aed).unwrap(), aed_want);
        // Another organisation's token does not see the app.
        let other = AccessClaims {
            org: "otherorg".into(),
            ..claims
        };
        let e = app_endpoints(&tables, &c, &other, &req, NOW).unwrap_err();
        assert_eq!(e.code, "NOT_FOUND");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_601_444), "2026-12-06T23:57:24Z");
    }
}
