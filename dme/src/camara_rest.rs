//! The CAMARA APIs over HTTP, on the DME's REST listener (and HTTP/3 with it): the specs' base
//! paths, bearer access tokens from the MC checked for the operation's scope, the
//! `x-correlator` header checked and echoed on every answer, CAMARA's error body. The
//! decisions are `crate::camara::handlers`'.
//!
//! Order of checks: the token (401/403) before anything about the request, so an
//! unauthenticated client learns nothing of what it sent; then the correlator, the media type,
//! the rate limit and the body (400/429); then the operation.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use edge_auth::camara::{X_CORRELATOR, valid_correlator};
use edge_auth::{AccessClaims, TokenError, VerifiedAccess, scopes};

use crate::camara::json::{self, Obj};
use crate::camara::{Camara, CamaraError, handlers};
use crate::service::{Ctx, Dme};
use crate::tables::Tables;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Clone, Copy, Debug)]
enum Op {
    ClosestZone,
    AppEndpoints,
    Verify,
    Retrieve,
}

impl Op {
    fn scope(self) -> &'static str {
        match self {
            Op::ClosestZone => scopes::SIMPLE_EDGE_DISCOVERY,
            Op::AppEndpoints => scopes::APP_ENDPOINT_DISCOVERY,
            Op::Verify => scopes::LOCATION_VERIFICATION,
            Op::Retrieve => scopes::LOCATION_RETRIEVAL,
        }
    }

    fn run(
        self,
        tables: &Tables,
        cam: &Camara,
        claims: &AccessClaims,
        body: &Obj,
        now: i64,
    ) -> Result<Vec<u8>, CamaraError> {
        match self {
            Op::ClosestZone => handlers::closest_zone(tables, cam, body, now),
            Op::AppEndpoints => handlers::app_endpoints(tables, cam, claims, body, now),
            Op::Verify => handlers::verify_location(cam, body, now).map(|v| v.to_string().into()),
            Op::Retrieve => {
                handlers::retrieve_location(cam, body, now).map(|v| v.to_string().into())
            }
        }
    }
}

/// The operations at their specs' base paths.
const ROUTES: [(&str, Op); 4] = [
    (
        "/simple-edge-discovery/v2/retrieve-closest-edge-cloud-zone",
        Op::ClosestZone,
    ),
    (
        "/application-endpoint-discovery/v0.1/retrieve-optimal-app-endpoints",
        Op::AppEndpoints,
    ),
    ("/location-verification/v3/verify", Op::Verify),
    ("/location-retrieval/v0.5/retrieve", Op::Retrieve),
];

/// The token's claims if it is valid and holds `scope`.
fn authorise(
    cam: &Camara,
    headers: &HeaderMap,
    scope: &str,
    now: i64,
) -> Result<Arc<VerifiedAccess>, CamaraError> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        CamaraError::unauthenticated("no access token: send Authorization: Bearer <token>")
    })?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .ok_or_else(|| {
            CamaraError::unauthenticated("the Authorization header is not `Bearer <token>`")
        })?;
    let verified = cam.keys.verify_access(token, now).map_err(|e| match e {
        TokenError::Expired { .. } => {
            CamaraError::unauthenticated("the access token has expired: get a new one")
        }
        other => CamaraError::unauthenticated(format!("the access token is not valid: {other}")),
    })?;
    if !verified.claims.has_scope(scope) {
        return Err(CamaraError::denied(format!(
            "the access token was not granted the scope {scope}"
        )));
    }
    Ok(verified)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

fn serve(front: &Front, peer: SocketAddr, headers: &HeaderMap, body: &[u8], op: Op) -> Response {
    let ctx = Ctx::now(Some(peer.ip()));
    let correlator = headers.get(X_CORRELATOR).map(|v| {
        v.to_str()
            .ok()
            .filter(|s| valid_correlator(s.as_bytes()))
            .map(|_| v.clone())
    });
    let echo = correlator.clone().flatten();
    let result = (|| {
        let verified = authorise(&front.camara, headers, op.scope(), ctx.now)?;
        if let Some(None) = correlator {
            return Err(CamaraError::invalid(
                "x-correlator must be at most 256 of letters, digits and -_:;./<>{}",
            ));
        }
        if !is_json(headers) {
            return Err(CamaraError::invalid(
                "the request body must be application/json",
            ));
        }
        if !front.dme.admit_peer(ctx) {
            return Err(CamaraError::too_many("rate limited: retry later"));
        }
        let body = json::body(body)?;
        op.run(
            &front.dme.tables(),
            &front.camara,
            &verified.claims,
            &body,
            ctx.now,
        )
    })();
    let mut resp = match result {
        Ok(answer) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            answer,
        )
            .into_response(),
        Err(e) => e.into_response(),
    };
    if let Some(v) = echo {
        resp.headers_mut().insert(X_CORRELATOR, v);
    }
    resp
}

struct Front {
    dme: Arc<Dme>,
    camara: Arc<Camara>,
}

/// The CAMARA routes over `dme`, ready to merge into the REST router.
pub fn router(dme: Arc<Dme>, camara: Arc<Camara>) -> Router {
    let front = Arc::new(Front { dme, camara });
    let mut router: Router<Arc<Front>> = Router::new();
    for (path, op) in ROUTES {
        router = router.route(
            path,
            post(
                move |State(front): State<Arc<Front>>,
                      ConnectInfo(peer): ConnectInfo<SocketAddr>,
                      headers: HeaderMap,
                      body: Result<Bytes, axum::extract::rejection::BytesRejection>| async move {
                    match body {
                        Ok(body) => serve(&front, peer, &headers, &body, op),
                        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => CamaraError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "PAYLOAD_TOO_LARGE",
                            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
                        )
                        .into_response(),
                        Err(e) => CamaraError::invalid(format!("cannot read the body: {}", e.body_text())).into_response(),
                    }
                },
            ),
        );
    }
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(front)
}
