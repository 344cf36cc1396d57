//! How an RPC's result reads for the API counters, and under which app a request counts.

use std::sync::Arc;

use crate::api_stats::{AppStats, Outcome};
use crate::error::ApiError;
use crate::proto;
use crate::tables::AppTable;

/// A reply as the counters see it: OK, unless it says found / not found.
pub(crate) trait Counted {
    fn outcome(&self) -> Outcome {
        Outcome::Ok
    }
}

impl Counted for proto::FindCloudletReply {
    fn outcome(&self) -> Outcome {
        if self.status == proto::find_cloudlet_reply::FindStatus::FindFound as i32 {
            Outcome::Found
        } else {
            Outcome::NotFound
        }
    }
}

impl Counted for () {}
impl Counted for proto::RegisterClientReply {}
impl Counted for proto::VerifyLocationReply {}
impl Counted for proto::GetLocationReply {}
impl Counted for proto::AppInstListReply {}
impl Counted for proto::FqdnListReply {}
impl Counted for proto::AppOfficialFqdnReply {}

/// The outcome of an RPC: an error is a non-OK status, whatever the reply would have said.
pub(crate) fn outcome<R: Counted>(result: &Result<R, ApiError>) -> Outcome {
    match result {
        Ok(reply) => reply.outcome(),
        Err(_) => Outcome::Error,
    }
}

/// The app a request counts under: its session's app, unless the RPC is on behalf of another.
pub(crate) struct Tally<'t>(pub(crate) &'t Arc<AppStats>);

impl<'t> Tally<'t> {
    /// Counts the request under `app` instead: PlatformFindCloudlet counts under the app it
    /// finds a cloudlet for, as upstream's counters did, not under the platform app asking.
    pub(crate) fn count_under(&mut self, app: &'t AppTable) {
        self.0 = &app.stats;
    }
}
