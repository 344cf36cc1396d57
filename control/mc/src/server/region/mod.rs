//! The region API: the MC in front of the regions' controllers. Every call is authorised
//! against the caller's grants ([`authz`]), forwarded to the region's controller over mutual
//! TLS with `x-edgeplane-caller` naming whom the MC speaks for, and its answer filtered to
//! what the caller may view. Two faces, one path ([`forward`]):
//!
//! # REST: `POST /api/v1/auth/ctrl/<Method>` ([`rest`])
//! Body `{"region": "eu", "<object>": {...}}` with the object in the controller's proto JSON
//! (pbjson: proto field names, enums by name; the REST mirror's shapes), upstream's object
//! names: `app`, `appinst`, `clusterinst`, `cloudlet`, `cloudletinfo`, `operatorcode`,
//! `flavor`, `settings` (the proto names `app_inst`, ... work too). Methods:
//! - `Create|Update|Delete|Show` + `App`, `AppInst`, `ClusterInst`, `Cloudlet`,
//!   `OperatorCode`, `Flavor`; `ShowCloudletInfo`; `CreateSettings` (the region's settings
//!   exist once created), `UpdateSettings`, `ShowSettings`;
//!   `RequestAppInstLatency` (`{"region", "appinst": {"key": ...}}`: the controller's Relay).
//! - Update takes the fields to change beside the object: `"fields": ["image_path"]`
//!   (snake_case names, as the controller's update mask). Delete reads the object's key.
//! - Mutations answer `200 application/x-ndjson`, one JSON object per line:
//!   `{"data":{"message":"..."}}` per progress line, then `{"result":{"message":"...",
//!   "code":200,"revision":N}}`, or on failure `{"result":{"message":"...","code":4xx|5xx}}`
//!   (the controller's gRPC code as its HTTP status). A failure before anything is streamed
//!   (authorisation, a bad body, an unknown region, the controller unreachable) is a plain
//!   status with `{"message"}`.
//! - Shows answer a JSON array of the visible objects (the inner object, e.g. the apps
//!   themselves). The object in a show's body is a filter: every field it sets must match.
//!   Showing a kind the caller may view in no organisation is 403; otherwise objects of
//!   organisations the caller may not view are left out.
//! - Statuses: 400 bad body, unknown method or region (named), unknown organisation, wrong
//!   organisation type; 401 no or a bad token; 403 a missing permission or another
//!   organisation's app; 502 the region's controller unreachable (with the cause); the
//!   controller's own refusals as grpc-gateway maps them (404, 409, ...).
//!
//! # gRPC: `edgeplane.v1.Controller` on the MC's listener ([`grpc`])
//! The controller's own service, so `edgectl` works through the MC unchanged: the token in
//! `authorization: Bearer <token>` metadata, the region in `x-edgeplane-region` (default: the
//! only region, when exactly one is registered). The same authorisation and filtering; 401 and
//! 403 become UNAUTHENTICATED and PERMISSION_DENIED with the same messages.
//!
//! Every mutation is recorded in the audit log (user, organisations, redacted request, final
//! status) when it ends.

pub mod authz;
pub mod forward;
pub mod grpc;
pub mod rest;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edge_api::pb::{self, controller_client::ControllerClient};
use edge_tls::mtls::MtlsClient;
use futures::StreamExt;
use tonic::transport::Channel;

use crate::model::Controller;
use crate::server::error::ApiError;
use crate::server::state::McState;
use crate::store::McStore;

/// How long dialling a controller may take before the call fails (502).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The regions' controllers: looked up in the store's registry on every call (so a
/// registration or removal takes effect at once), with one channel per address kept for
/// reuse.
pub struct Regions {
    store: Arc<dyn McStore>,
    tls: Option<MtlsClient>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl Regions {
    /// `tls`: the MC's client certificate towards the controllers; `None` dials plaintext
    /// (tests on loopback).
    pub fn new(store: Arc<dyn McStore>, tls: Option<MtlsClient>) -> Regions {
        Regions {
            store,
            tls,
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// The registered controller of `region` (400 naming an unknown one).
    pub async fn controller(&self, region: &str) -> Result<Controller, ApiError> {
        if region.is_empty() {
            return Err(ApiError::bad_request("\"region\" is required"));
        }
        self.store
            .controller(region)
            .await?
            .ok_or_else(|| ApiError::bad_request(format!("region {region:?} not found")))
    }

    /// The one registered region, for callers that name none (400 unless exactly one).
    pub async fn only_region(&self) -> Result<String, ApiError> {
        let mut list = self.store.list_controllers().await?;
        match list.len() {
            1 => Ok(list.remove(0).region),
            0 => Err(ApiError::bad_request("no region is registered")),
            _ => Err(ApiError::bad_request(format!(
                "name a region (x-edgeplane-region): {} are registered",
                list.iter()
                    .map(|c| c.region.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// A client of `c`'s controller (the channel connects on first use).
    pub fn client(&self, c: &Controller) -> Result<ControllerClient<Channel>, ApiError> {
        let mut channels = self
            .channels
            .lock()
            .map_err(|_| ApiError::internal("channel cache poisoned"))?;
        if let Some(ch) = channels.get(&c.address) {
            return Ok(ControllerClient::new(ch.clone()));
        }
        let ep = edge_tls::grpc::endpoint(&c.address, CONNECT_TIMEOUT).map_err(|e| {
            ApiError::bad_request(format!(
                "region {}: bad controller address {:?}: {e}",
                c.region, c.address
            ))
        })?;
        let ch = edge_tls::grpc::channel_lazy(&ep, self.tls.as_ref());
        channels.insert(c.address.clone(), ch.clone());
        Ok(ControllerClient::new(ch))
    }

    /// The regions that still hold objects of `org`, with how many. An unreachable
    /// controller is an error (502), never "not in use".
    pub async fn org_in_use(&self, org: &str) -> Result<Vec<(String, usize)>, ApiError> {
        let mut out = Vec::new();
        for c in self.store.list_controllers().await? {
            let req = pb::ShowRequest {
                organization: org.to_string(),
                ..Default::default()
            };
            let call = tonic::Request::new(req);
            let mut client = self.client(&c)?;
            let stream = client
                .show(forward::with_caller(call, "mc:org-delete"))
                .await
                .map_err(|s| forward::upstream_error(&c, &s))?;
            let mut stream = stream.into_inner();
            let mut n = 0;
            while let Some(item) = stream.next().await {
                item.map_err(|s| forward::upstream_error(&c, &s))?;
                n += 1;
            }
            out.push((c.region, n));
        }
        Ok(out)
    }
}

pub fn routes() -> axum::Router<Arc<McState>> {
    use axum::routing::post;
    axum::Router::new()
        .route("/api/v1/auth/ctrl/{method}", post(rest::handle))
        .route("/edgeplane.v1.Controller/{method}", post(grpc::handle))
}
