//! What a request that arrived in QUIC 0-RTT may do: the replay policy, per method, free of I/O.
//!
//! 0-RTT data can be replayed by anyone who captured it (RFC 9001 §9.2, RFC 8470). Tickets are
//! single-use (see [`super`]), so a replayed flight is refused its early data by this DME, but
//! another DME of the region or a future bug could still run it; so only requests that are safe
//! to run twice are served early:
//! - lookups (RegisterClient, FindCloudlet, PlatformFindCloudlet, VerifyLocation, GetLocation,
//!   the lists, GetQosPositionKpi, `/metrics`, health and reflection) run at once; their side
//!   effects, the API counters, wait until the handshake is confirmed (`api_stats::deferring`);
//! - everything else (QoS sessions, AddUserToGroup, the edge-events stream, whose INIT registers
//!   the client, and any path not named here) is refused as Too Early (HTTP 425; gRPC
//!   `UNAVAILABLE`, which clients may retry) until the handshake is confirmed.
//!
//! Unknown paths are refused rather than allowed, so a route added later is safe until someone
//! decides it is idempotent.

/// What to do with a request that may have arrived in 0-RTT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Early {
    /// Safe to replay: serve it now, count it once the handshake is confirmed.
    Serve,
    /// State-changing or unknown: answer Too Early.
    TooEarly,
}

/// RPCs that only read, by their gRPC method name (the last path segment; the same names under
/// `MatchEngineApi` and the split services).
const IDEMPOTENT_RPCS: [&str; 9] = [
    "RegisterClient",
    "FindCloudlet",
    "PlatformFindCloudlet",
    "VerifyLocation",
    "GetLocation",
    "GetAppInstList",
    "GetFqdnList",
    "GetAppOfficialFqdn",
    "GetQosPositionKpi",
];

/// The gRPC services whose methods all only read.
const IDEMPOTENT_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The policy for a request with this HTTP method and path.
pub fn early(method: &http::Method, path: &str) -> Early {
    if *method == http::Method::GET || *method == http::Method::HEAD {
        // Only `/metrics` answers GET; the rest is a 404 either way.
        return Early::Serve;
    }
    if *method == http::Method::OPTIONS {
        // CORS preflight: no side effect.
        return Early::Serve;
    }
    if *method != http::Method::POST {
        return Early::TooEarly;
    }
    if let Some(rpc) = path.strip_prefix("/v1/") {
        // REST: the RPC's name in lower case.
        return serve_if(IDEMPOTENT_RPCS.iter().any(|r| r.eq_ignore_ascii_case(rpc)));
    }
    // gRPC: `/package.Service/Method`.
    let Some((service, rpc)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
        return Early::TooEarly;
    };
    let dme_service =
        service.starts_with("distributed_match_engine.") && IDEMPOTENT_RPCS.contains(&rpc);
    serve_if(dme_service || IDEMPOTENT_SERVICES.contains(&service))
}

fn serve_if(ok: bool) -> Early {
    if ok { Early::Serve } else { Early::TooEarly }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn lookups_are_served_early_under_every_name() {
        for path in [
            "/v1/findcloudlet",
            "/v1/registerclient",
            "/v1/verifylocation",
            "/v1/getlocation",
            "/v1/getappinstlist",
            "/v1/getfqdnlist",
            "/v1/getappofficialfqdn",
            "/v1/platformfindcloudlet",
            "/distributed_match_engine.MatchEngineApi/FindCloudlet",
            "/distributed_match_engine.Session/RegisterClient",
            "/distributed_match_engine.Location/VerifyLocation",
            "/grpc.health.v1.Health/Check",
        ] {
            assert_eq!(early(&Method::POST, path), Early::Serve, "{path}");
        }
        assert_eq!(early(&Method::GET, "/metrics"), Early::Serve);
    }

    #[test]
    fn state_changes_and_unknown_paths_are_too_early() {
        for path in [
            "/v1/qosprioritysessioncreate",
            "/v1/qosprioritysessiondelete",
            "/v1/addusertogroup",
            "/v1/streamedgeevent",
            "/distributed_match_engine.MatchEngineApi/StreamEdgeEvent",
            "/distributed_match_engine.MatchEngineApi/QosPrioritySessionCreate",
            "/distributed_match_engine.QualityOfService/QosPrioritySessionDelete",
            "/distributed_match_engine.MatchEngineApi/AddUserToGroup",
            "/other.Service/FindCloudlet",
            "/v1/",
            "/v1/findcloudlet/extra",
            "/",
            "",
            "/nosuchpath",
        ] {
            assert_eq!(early(&Method::POST, path), Early::TooEarly, "{path:?}");
        }
        assert_eq!(
            early(&Method::PUT, "/v1/findcloudlet"),
            Early::TooEarly,
            "only POST runs an RPC"
        );
        assert_eq!(early(&Method::DELETE, "/metrics"), Early::TooEarly);
    }
}
