//! The one async driver of a notify subscription: connects to the controller (cycling through
//! its addresses, backing off between attempts), subscribes, keeps the stream alive with HTTP/2
//! pings, feeds what arrives to the [`Session`] in batches, lets the subscriber publish, sends
//! the acknowledgements and the subscriber's reports, and reconnects when the stream ends.
//! While disconnected the subscriber keeps serving what it last published.

use std::future::Future;
use std::time::Duration;

use edge_model::Object;
use futures::{FutureExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::session::{Apply, Session, Step};
use crate::notify::{Notice, Progress, SubscriberMessage, Subscription};
use crate::pb;

/// Where and as whom to subscribe, and how to keep the connection.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Controller notify addresses (`host:port`), tried in turn.
    pub addrs: Vec<String>,
    pub subscription: Subscription,
    pub connect_timeout: Duration,
    /// Interval of HTTP/2 pings on the stream.
    pub keepalive: Duration,
    /// A ping unanswered this long ends the connection (a controller behind a silent partition).
    pub keepalive_timeout: Duration,
    /// Largest notice accepted (a snapshot notice carries one object; big apps are big).
    pub max_message: usize,
    /// Messages to the controller (acks, reports) queued before the subscriber waits.
    pub outbox: usize,
    /// Mutual TLS with the controller (its notify endpoint requires it when it has a
    /// region CA); `None`: plaintext.
    pub tls: Option<edge_tls::MtlsClient>,
}

impl DriverConfig {
    pub fn new(addrs: Vec<String>, subscription: Subscription) -> Self {
        Self {
            addrs,
            subscription,
            connect_timeout: Duration::from_secs(3),
            keepalive: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            max_message: 64 << 20,
            outbox: 256,
            tls: None,
        }
    }
}

/// Why the subscriber woke up on its own (not for a notice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// It may have reports to send: [`Subscriber::reports`] is asked.
    Report,
    /// It has no more use for the subscription: the driver returns.
    Stop,
}

/// What a subscriber does with its notify stream; the driver does the rest.
pub trait Subscriber: Send {
    /// What it keeps of the region, changed by the session.
    type Target: Apply;

    fn target(&mut self) -> &mut Self::Target;

    /// Builds from [`Self::target`] what `version` calls for and publishes it. The driver
    /// acknowledges `version` when this returns.
    fn publish(&mut self, version: u64) -> impl Future<Output = ()> + Send;

    /// A connection began: forget what was reported on the last one.
    fn connected(&mut self) {}

    /// Objects to report to the controller now. Asked after every answered batch and every
    /// [`Wake::Report`], never during a snapshot.
    fn reports(&mut self) -> Vec<Object> {
        Vec::new()
    }

    /// Progress lines to send now (before [`Self::reports`], so that the reason of a failure
    /// arrives before the state that reports it). Asked when reports are.
    fn progress(&mut self) -> Vec<Progress> {
        Vec::new()
    }

    /// Resolves when the subscriber wants to report or stop. Must be cancel-safe: it is raced
    /// against the stream.
    fn wake(&mut self) -> impl Future<Output = Wake> + Send {
        std::future::pending()
    }

    /// Whether the subscriber has no more use for the subscription (checked between batches).
    fn done(&self) -> bool {
        false
    }

    /// An operator's request relayed by the controller, in stream order with the objects.
    fn request(&mut self, _request: &crate::notify::Request) {}
}

/// Hands one notice to the session, or a request to the subscriber.
fn deliver<S: Subscriber>(session: &mut Session, sub: &mut S, n: Notice) {
    match n {
        Notice::Request(r) => sub.request(&r),
        n => session.notice(n, sub.target()),
    }
}

/// Why one connection ended.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("bad address: {0}")]
    Address(String),
    #[error("connect: {0}")]
    Connect(String),
    #[error("stream: {0}")]
    Stream(String),
    #[error("bad notice: {0}")]
    Notice(#[from] crate::ConvertError),
    #[error("the stream ended")]
    Ended,
}

// tonic's errors say "transport error" and keep the cause (a refused certificate, a closed
// port) in their sources: the log line needs all of it.
impl From<tonic::transport::Error> for ConnError {
    fn from(e: tonic::transport::Error) -> Self {
        ConnError::Connect(error_chain(&e))
    }
}

impl From<tonic::Status> for ConnError {
    fn from(s: tonic::Status) -> Self {
        let mut text = s.to_string();
        if let Some(source) = std::error::Error::source(&s) {
            text = format!("{text}: {}", error_chain(source));
        }
        ConnError::Stream(text)
    }
}

/// `e: cause: cause's cause ...`
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !text.contains(&s) {
            text = format!("{text}: {s}");
        }
        cur = c.source();
    }
    text
}

/// Subscribes until the subscriber is done (or forever), reconnecting with [`Backoff`].
pub async fn run<S: Subscriber>(config: DriverConfig, mut sub: S) {
    let mut session = Session::new();
    let mut backoff = Backoff::default();
    if config.addrs.is_empty() {
        tracing::error!("no controller address to subscribe to");
        return;
    }
    for addr in config.addrs.iter().cycle() {
        if sub.done() {
            return;
        }
        let started = tokio::time::Instant::now();
        match connection(&config, addr, &mut session, &mut sub).await {
            Ok(()) => return,
            Err(e) => {
                // A plaintext subscriber talking to a mutual-TLS controller only sees its
                // HTTP/2 preface rejected: say what that probably means.
                let hint = refusal_hint(config.tls.is_some(), &e.to_string());
                tracing::warn!(
                    %addr, role = %config.subscription.role, error = %e,
                    "notify session ended{hint}; serving what was last published"
                )
            }
        }
        tokio::time::sleep(backoff.after_session(started.elapsed())).await;
    }
}

/// What a failed connection probably means, when the error itself does not say: a
/// plaintext subscriber talking to a mutual-TLS controller only sees its HTTP/2 preface
/// rejected, and a TLS 1.3 client whose certificate the controller refused only sees the
/// connection close (the controller's log says why).
fn refusal_hint(tls: bool, error: &str) -> &'static str {
    if !tls && error.contains("protocol error") {
        " (if the controller requires mutual TLS, give --mtls-ca, --mtls-cert and --mtls-key)"
    } else if tls && (error.contains("broken pipe") || error.contains("connection reset")) {
        " (the controller closed the connection: it may have refused this certificate, its log says why)"
    } else {
        ""
    }
}

/// What woke the connection loop.
// Lives for one turn of the loop, on the stack: boxing the notice would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Event {
    Notice(Option<Result<pb::Notice, tonic::Status>>),
    Wake(Wake),
}

/// One connection: `Ok` when the subscriber is done, `Err` when the connection ended.
async fn connection<S: Subscriber>(
    config: &DriverConfig,
    addr: &str,
    session: &mut Session,
    sub: &mut S,
) -> Result<(), ConnError> {
    let endpoint = edge_tls::grpc::endpoint(addr, config.connect_timeout)
        .map_err(|e| ConnError::Address(e.to_string()))?
        .http2_keep_alive_interval(config.keepalive)
        .keep_alive_timeout(config.keepalive_timeout);
    let channel = edge_tls::grpc::channel(endpoint, config.tls.as_ref()).await?;
    let mut client =
        pb::notify_client::NotifyClient::new(channel).max_decoding_message_size(config.max_message);
    let (tx, rx) = mpsc::channel::<pb::SubscriberMessage>(config.outbox.max(1));
    let out = Outbox(tx);
    out.send(SubscriberMessage::Subscribe(config.subscription.clone()))
        .await?;
    let mut inbound = client.stream(ReceiverStream::new(rx)).await?.into_inner();
    session.connected();
    sub.connected();
    tracing::info!(%addr, role = %config.subscription.role, "subscribed to the controller");
    loop {
        let event = tokio::select! {
            n = inbound.next() => Event::Notice(n),
            w = sub.wake() => Event::Wake(w),
        };
        match event {
            Event::Wake(Wake::Stop) => return Ok(()),
            Event::Wake(Wake::Report) => {}
            Event::Notice(first) => {
                // Apply everything that has arrived, then answer once: changes are coalesced.
                let first = first.ok_or(ConnError::Ended)??;
                deliver(session, sub, Notice::try_from(first)?);
                while let Some(next) = inbound.next().now_or_never() {
                    let n = next.ok_or(ConnError::Ended)??;
                    deliver(session, sub, Notice::try_from(n)?);
                }
                if sub.done() {
                    return Ok(());
                }
                let answered = match session.step() {
                    Step::Wait => None,
                    Step::Ack { version } => Some(version),
                    Step::Publish { version } => {
                        sub.publish(version).await;
                        Some(version)
                    }
                };
                if let Some(version) = answered {
                    out.send(SubscriberMessage::Ack { version }).await?;
                }
                // Publishing may have shown the subscriber it has no more use for the stream
                // (e.g. a CRM whose cloudlet does not exist).
                if sub.done() {
                    return Ok(());
                }
            }
        }
        if !session.in_snapshot() {
            for p in sub.progress() {
                out.send(SubscriberMessage::Progress(p)).await?;
            }
            for object in sub.reports() {
                out.send(SubscriberMessage::Report(object)).await?;
            }
        }
    }
}

/// The stream's outgoing half.
struct Outbox(mpsc::Sender<pb::SubscriberMessage>);

impl Outbox {
    async fn send(&self, m: SubscriberMessage) -> Result<(), ConnError> {
        self.0
            .send(pb::SubscriberMessage::from(&m))
            .await
            .map_err(|_| ConnError::Ended)
    }
}

/// When a subscriber reconnects after its stream ended: 100 ms, doubling up to 5 s; a session
/// that lasted more than 10 s starts over from 100 ms (the controller was up, so it is probably
/// a restart). Shared by every subscriber so they back off alike.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);
    const RESET_AFTER: Duration = Duration::from_secs(10);

    /// The delay before the next attempt, after a session that lasted `lasted`.
    pub fn after_session(&mut self, lasted: Duration) -> Duration {
        if lasted > Self::RESET_AFTER {
            self.next = Self::FIRST;
        }
        let delay = self.next;
        self.next = (delay * 2).min(Self::MAX);
        delay
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}
