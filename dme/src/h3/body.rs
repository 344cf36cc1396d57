//! Bodies between h3 streams and `http` services: a request body read from the stream as the
//! service asks for it (so a gRPC stream's messages reach the handler one by one while the
//! response is being written), and a response written frame by frame as the service yields it.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use h3::server::RequestStream;
use http_body::{Body, Frame};
use http_body_util::BodyExt;

/// The receive half of a request stream, as an `http_body::Body`.
pub(super) struct RecvBody {
    stream: RequestStream<h3_quinn::RecvStream, Bytes>,
    state: State,
}

#[derive(PartialEq)]
enum State {
    Data,
    Trailers,
    Done,
}

impl RecvBody {
    pub(super) fn new(stream: RequestStream<h3_quinn::RecvStream, Bytes>) -> Self {
        Self {
            stream,
            state: State::Data,
        }
    }
}

impl Body for RecvBody {
    type Data = Bytes;
    type Error = h3::error::StreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.state == State::Data {
            match ready!(this.stream.poll_recv_data(cx)) {
                Ok(Some(mut buf)) => {
                    let data = buf.copy_to_bytes(buf.remaining());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(None) => this.state = State::Trailers,
                Err(e) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        if this.state == State::Trailers {
            let trailers = ready!(this.stream.poll_recv_trailers(cx));
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
    Stream(#[from] h3::error::StreamError),
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
