//! One QUIC connection: its HTTP/3 requests, each in its own task, dispatched to the REST router
//! or the gRPC routes, under the 0-RTT policy ([`super::policy`]).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use bytes::Bytes;
use futures::FutureExt;
use futures::future::Shared;
use h3::server::{RequestResolver, RequestStream};
use http::{HeaderValue, StatusCode, header};
use tokio::sync::watch;
use tower::ServiceExt;

use super::body::{self, RecvBody};
use super::policy::{self, Early};
use super::{MAX_HEADER_BYTES, Services};
use crate::api_stats;
use crate::error::ApiError;

type Confirmed = Shared<quinn::ZeroRttAccepted>;

/// Serves one incoming connection until it closes or the server shuts down.
pub(super) async fn serve(
    incoming: quinn::Incoming,
    services: Services,
    mut shutdown: watch::Receiver<bool>,
) {
    let connecting = match incoming.accept() {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "QUIC connection refused");
            return;
        }
    };
    // On the server side this always succeeds: requests may arrive in 0-RTT, and the future
    // resolves (true) once the handshake is complete, false if it never completes.
    let (conn, confirmed) = match connecting.into_0rtt() {
        Ok((conn, accepted)) => (conn, accepted.shared()),
        Err(connecting) => {
            tracing::debug!(remote = %connecting.remote_address(), "QUIC: no 0.5-RTT");
            return;
        }
    };
    let mut h3 = match h3::server::builder()
        .max_field_section_size(MAX_HEADER_BYTES)
        .build::<_, Bytes>(h3_quinn::Connection::new(conn.clone()))
        .await
    {
        Ok(h3) => h3,
        Err(e) => {
            tracing::debug!(error = %e, "HTTP/3 connection setup failed");
            return;
        }
    };
    loop {
        tokio::select! {
            accepted = h3.accept() => match accepted {
                Ok(Some(resolver)) => {
                    // Decided when the request is accepted: a request read after the
                    // handshake completed was sent by a client that holds the keys, whether
                    // its bytes travelled in 0-RTT or not. (While the connection lives, the
                    // future resolves only when the handshake completes.)
                    let early = confirmed.clone().now_or_never().is_none();
                    let req = Request { services: services.clone(), conn: conn.clone(), early, confirmed: confirmed.clone() };
                    tokio::spawn(req.serve(resolver));
                }
                Ok(None) => break,
                Err(e) => {
                    if !e.is_h3_no_error() {
                        tracing::debug!(error = %e, "HTTP/3 connection ended");
                    }
                    break;
                }
            },
            () = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                // GOAWAY: requests already accepted finish; the client goes elsewhere for more.
                let _ = tokio::time::timeout(Duration::from_secs(1), h3.shutdown(0)).await;
                break;
            }
        }
    }
}

struct Request {
    services: Services,
    conn: quinn::Connection,
    early: bool,
    confirmed: Confirmed,
}

impl Request {
    async fn serve(self, resolver: RequestResolver<h3_quinn::Connection, Bytes>) {
        let (req, stream) = match resolver.resolve_request().await {
            Ok(r) => r,
            Err(e) => {
                // Malformed or oversized headers: h3 has answered (431) or reset the stream.
                tracing::debug!(error = %e, "HTTP/3 request refused");
                return;
            }
        };
        let (mut send, recv) = stream.split();
        let grpc = is_grpc(req.headers());
        if self.early && policy::early(req.method(), req.uri().path()) == Early::TooEarly {
            let resp = too_early(grpc);
            if let Err(e) = body::send(&mut send, resp).await {
                tracing::debug!(error = %e, "HTTP/3: writing 425 failed");
            }
            return;
        }
        let mut req = req.map(|()| axum::body::Body::new(RecvBody::new(recv)));
        // The client's address now: it changes when the client migrates.
        let remote = self.conn.remote_address();
        let ext = req.extensions_mut();
        ext.insert(ConnectInfo(remote));
        ext.insert(tonic::transport::server::TcpConnectInfo {
            local_addr: self.conn.local_ip().map(|ip| SocketAddr::new(ip, 0)),
            remote_addr: Some(remote),
        });
        let service = if grpc {
            self.services.grpc.clone()
        } else {
            self.services.rest.clone()
        };
        let call = async move { service.oneshot(req).await.unwrap_or_else(|e| match e {}) };
        if !self.early {
            let resp = call.await;
            write(&mut send, resp).await;
            return;
        }
        let (resp, deferred) = api_stats::deferring(call).await;
        write(&mut send, resp).await;
        // Counted only if the handshake completes: a replayed flight never completes it.
        // The future resolves when the handshake completes and when the connection dies
        // without completing it (its value says whether 0-RTT was accepted, on the client
        // side only), so ask TLS: keying material exists only after the client's Finished.
        let _ = self.confirmed.await;
        if self
            .conn
            .export_keying_material(&mut [0; 1], b"edgeplane 0-rtt confirm", b"")
            .is_ok()
        {
            deferred.commit();
        }
    }
}

async fn write(
    send: &mut RequestStream<h3_quinn::SendStream<Bytes>, Bytes>,
    resp: axum::response::Response,
) {
    if let Err(e) = body::send(send, resp).await {
        tracing::debug!(error = %e, "HTTP/3: writing the response failed");
    }
}

fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// RFC 8470's answer to a request that must not run in 0-RTT. gRPC has no 425: it gets
/// `UNAVAILABLE`, the status gRPC clients may retry, with the reason.
fn too_early(grpc: bool) -> axum::response::Response {
    const WHY: &str = "Too Early: this call changes state and arrived in TLS early data (0-RTT); retry once the handshake is complete";
    if grpc {
        let mut resp = tonic::Status::unavailable(WHY).into_http::<axum::body::Body>();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        return resp;
    }
    (
        StatusCode::TOO_EARLY,
        ApiError::new(tonic::Code::Unavailable, WHY),
    )
        .into_response()
}
