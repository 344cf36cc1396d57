//! `StreamEdgeEvent` streams, above the DME's service (they match and sign through it) and
//! the edge-events hub below it (`crate::edge_events`: registry, pushes, queues, statistics).
//!
//! - `session`: one stream's state and decisions, free of I/O: a client message or a push in,
//!   the event to send (if any) out.
//! - here: the stream's task.
//!
//! One stream's task: it alone reads the client's messages and its push queue and writes the
//! stream's events, through a bounded outbox that the transport drains. A client that stops
//! reading fills only its own outbox; the stream is then closed (`ResourceExhausted`) and
//! counted. A stream without a client message for the idle timeout is closed
//! (`DeadlineExceeded`). TERMINATE and the client's half-close end it with OK.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tonic::{Request, Response, Status, Streaming};

mod session;

use crate::edge_events::bump;
use crate::edge_events::outbox::{Outbox, Writer, outbox};
use crate::edge_events::registry::Client;
use crate::proto::{ClientEdgeEvent, ServerEdgeEvent};
use crate::service::{Ctx, Dme};
use session::{Session, Step};

/// Opens a stream: waits for INIT (within the idle timeout), checks it, registers the stream
/// and starts its task. Errors end the RPC with the status.
pub async fn open(
    dme: Arc<Dme>,
    req: Request<Streaming<ClientEdgeEvent>>,
) -> Result<Response<Outbox>, Status> {
    let peer = edge_tls::serve::remote_addr(&req).map(|a| a.ip());
    let mut inbound = req.into_inner();
    let cfg = dme.config().edge_events.clone();
    let refuse = |dme: &Dme, s: Status| {
        bump(&dme.edge().refused);
        s
    };
    let first = match tokio::time::timeout(cfg.idle_timeout, inbound.message()).await {
        Err(_) => return Err(refuse(&dme, Status::deadline_exceeded("no INIT received"))),
        Ok(Err(s)) => return Err(refuse(&dme, s)),
        Ok(Ok(None)) => {
            return Err(refuse(
                &dme,
                Status::invalid_argument("Initial message is nil"),
            ));
        }
        Ok(Ok(Some(m))) => m,
    };
    let ctx = Ctx::now(peer);
    let id = dme.edge().next_id.fetch_add(1, Ordering::Relaxed);
    let started = Session::init(&dme, &first, ctx, |at| Arc::new(Client::new(id, at)));
    let (session, events) = started.map_err(|e| refuse(&dme, e.into()))?;
    bump(&dme.edge().opened);
    let (out, reader) = outbox(cfg.outbox.max(1) + events.len());
    for e in events {
        bump(&dme.edge().events_sent);
        out.send(e);
    }
    tokio::spawn(run(dme, session, inbound, out));
    Ok(Response::new(reader))
}

/// Why a stream's loop ended.
enum End {
    /// Ends with OK (TERMINATE, half-close, the client went away).
    Ok,
    Status(Status),
}

async fn run(dme: Arc<Dme>, mut s: Session, mut inbound: Streaming<ClientEdgeEvent>, out: Writer) {
    let idle = dme.config().edge_events.idle_timeout;
    let sleep = tokio::time::sleep(idle);
    tokio::pin!(sleep);
    let end = 'run: loop {
        let client = s.client().clone();
        let events: Vec<ServerEdgeEvent> = tokio::select! {
            biased;
            () = out.reader_gone() => break End::Ok,
            () = client.woken() => {
                let pushes = client.take();
                let now = Ctx::now(None);
                pushes.into_iter().filter_map(|p| s.on_push(&dme, p, now)).collect()
            }
            m = inbound.message() => match m {
                Ok(Some(msg)) => {
                    sleep.as_mut().reset(tokio::time::Instant::now() + idle);
                    match s.on_message(&dme, &msg, Ctx::now(None)) {
                        Step::Reply(e) => vec![*e],
                        Step::Nothing => Vec::new(),
                        Step::End => break End::Ok,
                    }
                }
                Ok(None) | Err(_) => break End::Ok,
            },
            () = &mut sleep => {
                bump(&dme.edge().idle_closed);
                break End::Status(Status::deadline_exceeded(format!(
                    "edge events stream idle for {} s",
                    idle.as_secs()
                )));
            }
        };
        let resync = client.take_missed().then(|| s.resync(&dme)).flatten();
        for e in events.into_iter().chain(resync) {
            if !out.send(e) {
                break 'run overflow(&dme);
            }
            bump(&dme.edge().events_sent);
        }
    };
    s.client().close();
    dme.edge().registry.remove(s.client().id, s.group());
    out.end(match end {
        End::Status(status) => Some(status),
        End::Ok => None,
    });
}

fn overflow(dme: &Dme) -> End {
    bump(&dme.edge().overflow_closed);
    End::Status(Status::resource_exhausted(
        "edge events: the client is not reading its events; stream closed",
    ))
}
