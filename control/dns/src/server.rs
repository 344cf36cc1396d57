//! The authoritative server: hickory-server's UDP and TCP front end with this crate's request
//! handler, which answers every query from the zone the [`Embedded`] provider holds at that
//! moment (one lock-free load per query, so a publish never waits for readers or they for it).
//!
//! Until the first zone is published every query gets SERVFAIL: resolvers then ask another
//! server instead of caching a wrong negative answer.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::DNSClass;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

use crate::provider::Embedded;

mod records;

pub use records::{RECORD_TTL, Reply, SOA_MINIMUM, reply};

/// A TCP client that sends nothing for this long is disconnected.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 16;
/// The EDNS version this server speaks.
const EDNS_VERSION: u8 = 0;

/// Why the server stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("DNS server: {0}")]
    Server(String),
}

/// Serves `zone` on `udp` and `tcp` until `shutdown` resolves, then closes both (open TCP
/// connections included) and returns. An error means a socket failed while serving.
pub async fn serve(
    udp: UdpSocket,
    tcp: TcpListener,
    zone: Arc<Embedded>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let mut server = Server::new(Handler { zone });
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE, TCP_RESPONSE_BUFFER);
    let ended = tokio::select! {
        () = shutdown => None,
        r = server.block_until_done() => Some(r),
    };
    let result = match ended {
        Some(r) => r,
        None => server.shutdown_gracefully().await,
    };
    result.map_err(|e| ServeError::Server(e.to_string()))
}

struct Handler {
    zone: Arc<Embedded>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e.set_version(EDNS_VERSION);
            e
        });
        let bad_version = request
            .edns
            .as_ref()
            .is_some_and(|e| e.version() > EDNS_VERSION);
        let reply = if bad_version {
            Reply::error(ResponseCode::BADVERS)
        } else {
            self.reply(request)
        };
        send(request, &reply, edns, response_handle).await
    }
}

impl Handler {
    fn reply(&self, request: &Request) -> Reply {
        let meta = &request.metadata;
        if meta.message_type != MessageType::Query {
            return Reply::error(ResponseCode::FormErr);
        }
        if meta.op_code != OpCode::Query {
            return Reply::error(ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            // Not exactly one question.
            return Reply::error(ResponseCode::FormErr);
        };
        let query = info.query;
        if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
            return Reply::error(ResponseCode::Refused);
        }
        let Some(zone) = self.zone.current() else {
            return Reply::error(ResponseCode::ServFail);
        };
        reply(&zone, query.original().name(), query.query_type())
    }
}

async fn send<R: ResponseHandler>(
    request: &Request,
    reply: &Reply,
    mut edns: Option<Edns>,
    mut response_handle: R,
) -> ResponseInfo {
    let mut meta = Metadata::response_from_request(&request.metadata);
    meta.authoritative = reply.authoritative;
    meta.response_code = reply.code;
    if let Some(e) = edns.as_mut() {
        // Codes above 15 (BADVERS) carry their high bits in EDNS.
        e.set_rcode_high(reply.code.high());
    }
    let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
        meta,
        reply.answers.iter(),
        reply.authority.iter(),
        std::iter::empty(),
        reply.additionals.iter(),
    );
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(error) => {
            tracing::debug!(%error, "failed to send a DNS response");
            let mut meta = Metadata::response_from_request(&request.metadata);
            meta.response_code = ResponseCode::ServFail;
            ResponseInfo::from(hickory_server::proto::op::Header {
                metadata: meta,
                counts: Default::default(),
            })
        }
    }
}
