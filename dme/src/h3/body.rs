//! Bodies between h3 streams and `http` services: a request body read from the stream as the
//! service asks for it (so a gRPC stream's messages reach the handler one by one while the
//! response is being written), and a response written frame by frame as the service yields it.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use h3::error::StreamError;
use h3::server::RequestStream;
use http_body::{Body, Frame};
use http_body_util::BodyExt;

/// The receive half of an h3 request stream, server's or client's.
pub trait RecvHalf: Send + Unpin + 'static {
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, StreamError>>;
    fn poll_trailers(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<http::HeaderMap>, StreamError>>;
}

impl RecvHalf for RequestStream<h3_quinn::RecvStream, Bytes> {
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, StreamError>> {
        self.poll_recv_data(cx)
            .map_ok(|b| b.map(|mut b| b.copy_to_bytes(b.remaining())))
    }

    fn poll_trailers(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<http::HeaderMap>, StreamError>> {
        self.poll_recv_trailers(cx)
    }
}

impl RecvHalf for h3::client::RequestStream<h3_quinn::RecvStream, Bytes> {
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, StreamError>> {
        self.poll_recv_data(cx)
            .map_ok(|b| b.map(|mut b| b.copy_to_bytes(b.remaining())))
    }

    fn poll_trailers(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<http::HeaderMap>, StreamError>> {
        self.poll_recv_trailers(cx)
    }
}

/// The receive half of a request stream (a request's body on the server, a response's on the
/// client), as an `http_body::Body`: data frames, then trailers if any.
pub struct RecvBody<S> {
    stream: S,
    state: State,
}

#[derive(PartialEq)]
enum State {
    Data,
    Trailers,
    Done,
}

impl<S: RecvHalf> RecvBody<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            state: State::Data,
        }
    }
}

impl<S: RecvHalf> Body for RecvBody<S> {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.state == State::Data {
            match ready!(this.stream.poll_data(cx)) {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(None) => this.state = State::Trailers,
                Err(e) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        if this.state == State::Trailers {
            let trailers = ready!(this.stream.poll_trailers(cx));
            this.state = State::Done;
            return Poll::Ready(match trailers {
                Ok(Some(t)) => Some(Ok(Frame::trailers(t))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            });
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }
}

/// Why a response could not be written in full.
#[derive(Debug, thiserror::Error)]
pub(super) enum SendError {
    #[error("stream: {0}")]
    Stream(#[from] StreamError),
    #[error("response body: {0}")]
    Body(String),
}

/// Writes `resp` to the send half of a request stream: headers, every data frame as the body
/// yields it, trailers if any, then the end of the stream.
pub(super) async fn send<B>(
    stream: &mut RequestStream<h3_quinn::SendStream<Bytes>, Bytes>,
    resp: http::Response<B>,
) -> Result<(), SendError>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let (parts, body) = resp.into_parts();
    stream
        .send_response(http::Response::from_parts(parts, ()))
        .await?;
    let mut body = std::pin::pin!(body);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| SendError::Body(e.to_string()))?;
        match frame.into_data() {
            Ok(data) if data.is_empty() => {}
            Ok(data) => stream.send_data(data).await?,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    stream.send_trailers(trailers).await?;
                }
            }
        }
    }
    stream.finish().await?;
    Ok(())
}
