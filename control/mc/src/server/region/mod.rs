//! PLACEHOLDER: the region proxy (`/api/v1/auth/ctrl/<Method>`) replaces this file.

use std::sync::Arc;

use crate::server::state::McState;
use crate::store::McStore;

pub struct Regions;

impl Regions {
    pub fn new(store: Arc<dyn McStore>, tls: Option<edge_tls::mtls::MtlsClient>) -> Regions {
        let _ = (store, tls);
        Regions
    }

    /// The regions that still hold objects of `org`, with how many.
    pub async fn org_in_use(
        &self,
        org: &str,
    ) -> Result<Vec<(String, usize)>, crate::server::error::ApiError> {
        let _ = org;
        Ok(vec![])
    }
}

pub fn routes() -> axum::Router<Arc<McState>> {
    axum::Router::new()
}
