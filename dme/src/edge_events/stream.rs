//! One stream's task: it alone reads the client's messages and its push queue and writes the
//! stream's events, through a bounded outbox that the transport drains. A client that stops
//! reading fills only its own outbox; the stream is then closed (`ResourceExhausted`) and
//! counted. A stream without a client message for the idle timeout is closed
//! (`DeadlineExceeded`). TERMINATE and the client's half-close end it with OK.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::bump;
use super::registry::Client;
use super::session::{Session, Step};
use crate::proto::{ClientEdgeEvent, ServerEdgeEvent};
use crate::service::{Ctx, Dme};

enum Out {
    Event(Box<ServerEdgeEvent>),
    End(Box<Status>),
}

/// The stream's events, as the transport reads them.
pub struct Outbox(mpsc::Receiver<Out>);

impl Stream for Outbox {
    type Item = Result<ServerEdgeEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|o| {
            o.map(|o| match o {
                Out::Event(e) => Ok(*e),
                Out::End(s) => Err(*s),
            })
        })
    }
}

/// Opens a stream: waits for INIT (within the idle timeout), checks it, registers the stream
/// and starts its task. Errors end the RPC with the status.
pub async fn open(
    dme: Arc<Dme>,
    req: Request<Streaming<ClientEdgeEvent>>,
) -> Result<Response<Outbox>, Status> {
    let peer = req.remote_addr().map(|a| a.ip());
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
    let (out_tx, out_rx) = mpsc::channel(cfg.outbox.max(1) + events.len() + 1);
    for e in events {
        bump(&dme.edge().events_sent);
        let _ = out_tx.try_send(Out::Event(Box::new(e)));
    }
    tokio::spawn(run(dme, session, inbound, out_tx));
    Ok(Response::new(Outbox(out_rx)))
}

/// Why a stream's loop ended.
enum End {
    /// Ends with OK (TERMINATE, half-close, the client went away).
    Ok,
    Status(Status),
}

async fn run(
    dme: Arc<Dme>,
    mut s: Session,
    mut inbound: Streaming<ClientEdgeEvent>,
    out: mpsc::Sender<Out>,
) {
    let idle = dme.config().edge_events.idle_timeout;
    let sleep = tokio::time::sleep(idle);
    tokio::pin!(sleep);
    let end = 'run: loop {
        let client = s.client().clone();
        let events: Vec<ServerEdgeEvent> = tokio::select! {
            biased;
            () = out.closed() => break End::Ok,
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
            // One slot stays free for the closing status.
            if out.capacity() <= 1 {
                break 'run overflow(&dme);
            }
            bump(&dme.edge().events_sent);
            let _ = out.try_send(Out::Event(Box::new(e)));
        }
    };
    s.client().close();
    dme.edge().registry.remove(s.client().id, s.group());
    if let End::Status(status) = end {
        let _ = out.try_send(Out::End(Box::new(status)));
    }
}

fn overflow(dme: &Dme) -> End {
    bump(&dme.edge().overflow_closed);
    End::Status(Status::resource_exhausted(
        "edge events: the client is not reading its events; stream closed",
    ))
}
