//! Request bodies that can be sent again: the first attempt's bytes are recorded as they go
//! out, up to a limit, and a retry replays them (then whatever of the original body the first
//! attempt did not read).
//!
//! Recording keeps the body's own `Bytes` chunks (reference counts, no copy), so a buffered body
//! such as `Full<Bytes>` is replayed for the cost of one chunk handle. A body larger than the
//! limit stops being recorded at the chunk that crosses it: the request goes out whole, once,
//! and is not retried.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::BoxError;

/// What attempts read and what later ones replay.
pub(crate) struct Recording<B> {
    chunks: Vec<Bytes>,
    recorded: usize,
    /// The original body while no attempt holds it (`None` once it ended).
    original: Option<Pin<Box<B>>>,
    ended: bool,
    trailers: Option<HeaderMap>,
    /// Recording stopped (the body was too large, or failed): no replay is possible.
    spoiled: bool,
    /// What the original said of its size before anything was read.
    original_hint: SizeHint,
}

type Shared<B> = Arc<Mutex<Recording<B>>>;

fn lock<B>(shared: &Shared<B>) -> std::sync::MutexGuard<'_, Recording<B>> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The original body while one attempt reads it; handed back if that attempt is dropped
/// before the end, so the next attempt can go on from where it stopped.
struct Holding<B> {
    shared: Shared<B>,
    body: Option<Pin<Box<B>>>,
}

impl<B> Drop for Holding<B> {
    fn drop(&mut self) {
        if let Some(body) = self.body.take() {
            lock(&self.shared).original = Some(body);
        }
    }
}

pin_project! {
    /// The request body of an HTTP request under [`HttpRetry`](super::HttpRetry): the caller's
    /// body, recorded for a retry when the request may be retried, passed through untouched
    /// when it may not.
    pub struct ReplayBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Passthrough { #[pin] body: B },
        Recorded {
            shared: Shared<B>,
            // Chunks of the recording this attempt has yielded.
            position: usize,
            holding: Option<Holding<B>>,
            trailers_sent: bool,
            limit: usize,
        },
        Empty,
    }
}

impl<B> std::fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Passthrough { .. } => "passthrough",
            Kind::Recorded { .. } => "recorded",
            Kind::Empty => "empty",
        };
        f.debug_struct("ReplayBody").field("kind", &kind).finish()
    }
}

/// A retry's body could not go on: an earlier attempt still holds the rest of the original.
#[derive(Debug)]
pub struct BodyStillSending;

impl std::fmt::Display for BodyStillSending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body is still being sent by an earlier attempt")
    }
}

impl std::error::Error for BodyStillSending {}

impl<B: Body> ReplayBody<B> {
    /// The body as it is, never recorded (a request that is never retried).
    pub(crate) fn passthrough(body: B) -> Self {
        Self {
            kind: Kind::Passthrough { body },
        }
    }

    /// Records `body` up to `limit` bytes: the first attempt's body, and the handle retries
    /// replay from.
    pub(crate) fn record(body: B, limit: usize) -> (Self, Replayer<B>) {
        if body.is_end_stream() {
            return (Self { kind: Kind::Empty }, Replayer::Empty);
        }
        let original_hint = body.size_hint();
        let shared = Arc::new(Mutex::new(Recording {
            chunks: Vec::new(),
            recorded: 0,
            original: Some(Box::pin(body)),
            ended: false,
            trailers: None,
            spoiled: false,
            original_hint,
        }));
        let replayer = Replayer::Recorded { shared, limit };
        (replayer.body(), replayer)
    }
}

/// Makes the body of each retry.
pub(crate) enum Replayer<B> {
    /// The body was empty: so is every retry's.
    Empty,
    Recorded {
        shared: Shared<B>,
        limit: usize,
    },
}

impl<B> Replayer<B> {
    /// A body for the next attempt, or `None` when the recording cannot replay the request.
    pub(crate) fn replay(&self) -> Option<ReplayBody<B>> {
        match self {
            Self::Empty => Some(ReplayBody { kind: Kind::Empty }),
            Self::Recorded { shared, .. } => (!lock(shared).spoiled).then(|| self.body()),
        }
    }

    fn body(&self) -> ReplayBody<B> {
        match self {
            Self::Empty => ReplayBody { kind: Kind::Empty },
            Self::Recorded { shared, limit } => ReplayBody {
                kind: Kind::Recorded {
                    shared: shared.clone(),
                    position: 0,
                    holding: None,
                    trailers_sent: false,
                    limit: *limit,
                },
            },
        }
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Passthrough { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Empty => Poll::Ready(None),
            KindProj::Recorded {
                shared,
                position,
                holding,
                trailers_sent,
                limit,
            } => {
                if holding.is_none() {
                    let mut recording = lock(shared);
                    // First what earlier attempts recorded.
                    if let Some(chunk) = recording.chunks.get(*position) {
                        *position += 1;
                        return Poll::Ready(Some(Ok(Frame::data(chunk.clone()))));
                    }
                    if recording.ended {
                        if !*trailers_sent {
                            *trailers_sent = true;
                            if let Some(trailers) = recording.trailers.clone() {
                                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                            }
                        }
                        return Poll::Ready(None);
                    }
                    // Then the rest of the original, which this attempt takes over.
                    let Some(original) = recording.original.take() else {
                        return Poll::Ready(Some(Err(BodyStillSending.into())));
                    };
                    *holding = Some(Holding {
                        shared: shared.clone(),
                        body: Some(original),
                    });
                }
                let held = holding.as_mut().expect("taken over above");
                let original = held.body.as_mut().expect("held while reading");
                let frame = match original.as_mut().poll_frame(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(frame) => frame,
                };
                let mut recording = lock(shared);
                match &frame {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            if recording.spoiled {
                            } else if recording.recorded + data.len() <= *limit {
                                recording.recorded += data.len();
                                recording.chunks.push(data.clone());
                                *position = recording.chunks.len();
                            } else {
                                recording.spoiled = true;
                                recording.chunks = Vec::new();
                                tracing::debug!(
                                    limit = *limit,
                                    "request body larger than the replay buffer: it will not be retried"
                                );
                            }
                        } else if let Some(trailers) = frame.trailers_ref() {
                            recording.trailers = Some(trailers.clone());
                            *trailers_sent = true;
                        }
                    }
                    Some(Err(_)) => recording.spoiled = true,
                    None => {
                        recording.ended = true;
                        // Fully read: nothing to hand back.
                        if let Some(mut held) = holding.take() {
                            held.body = None;
                        }
                    }
                }
                drop(recording);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Passthrough { body } => body.is_end_stream(),
            Kind::Empty => true,
            Kind::Recorded {
                shared,
                position,
                holding,
                trailers_sent,
                ..
            } => {
                holding.is_none() && {
                    let recording = lock(shared);
                    recording.ended
                        && *position >= recording.chunks.len()
                        && (recording.trailers.is_none() || *trailers_sent)
                }
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Passthrough { body } => body.size_hint(),
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Recorded {
                shared, position, ..
            } => {
                let recording = lock(shared);
                let sent: usize = recording
                    .chunks
                    .iter()
                    .take(*position)
                    .map(Bytes::len)
                    .sum();
                let sent = u64::try_from(sent).unwrap_or(u64::MAX);
                let mut hint = SizeHint::new();
                hint.set_lower(recording.original_hint.lower().saturating_sub(sent));
                if let Some(upper) = recording.original_hint.upper() {
                    hint.set_upper(upper.saturating_sub(sent));
                }
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use http_body_util::{BodyExt, Full};

    use super::*;

    /// A streamed body of several chunks, one frame per poll.
    struct Chunks(VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
        }
    }

    fn chunks(parts: &[&'static str]) -> Chunks {
        Chunks(
            parts
                .iter()
                .map(|p| Bytes::from_static(p.as_bytes()))
                .collect(),
        )
    }

    async fn read<B>(body: B) -> Vec<u8>
    where
        B: Body<Data = Bytes>,
        B::Error: std::fmt::Debug,
    {
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn a_buffered_body_replays_whole() {
        let (first, replayer) = ReplayBody::record(Full::new(Bytes::from_static(b"hello")), 64);
        assert_eq!(first.size_hint().exact(), Some(5));
        assert_eq!(read(first).await, b"hello");
        let again = replayer.replay().unwrap();
        assert_eq!(again.size_hint().exact(), Some(5));
        assert_eq!(read(again).await, b"hello");
        assert_eq!(read(replayer.replay().unwrap()).await, b"hello");
    }

    #[tokio::test]
    async fn a_streamed_body_replays_byte_for_byte() {
        let (first, replayer) = ReplayBody::record(chunks(&["ab", "cd", "ef"]), 64);
        assert_eq!(read(first).await, b"abcdef");
        assert_eq!(read(replayer.replay().unwrap()).await, b"abcdef");
    }

    #[tokio::test]
    async fn a_retry_goes_on_where_a_dropped_attempt_stopped() {
        let (mut first, replayer) = ReplayBody::record(chunks(&["ab", "cd", "ef"]), 64);
        let frame = first.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "ab");
        // The server answered before the body was sent: the attempt is dropped mid-body.
        drop(first);
        assert_eq!(read(replayer.replay().unwrap()).await, b"abcdef");
    }

    #[tokio::test]
    async fn a_retry_started_while_an_attempt_still_sends_fails_instead_of_truncating() {
        let (mut first, replayer) = ReplayBody::record(chunks(&["ab", "cd"]), 64);
        let _ = first.frame().await;
        let mut second = replayer.replay().unwrap();
        assert_eq!(
            second.frame().await.unwrap().unwrap().into_data().unwrap(),
            "ab"
        );
        let err = second.frame().await.unwrap().unwrap_err();
        assert!(err.is::<BodyStillSending>());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_sent_once_and_not_replayed() {
        let (first, replayer) = ReplayBody::record(chunks(&["1234", "5678", "9"]), 8);
        assert_eq!(read(first).await, b"123456789", "sent whole");
        assert!(replayer.replay().is_none());
    }

    #[tokio::test]
    async fn an_empty_body_replays_empty() {
        let (first, replayer) = ReplayBody::record(Full::new(Bytes::new()), 64);
        assert!(first.is_end_stream());
        assert!(replayer.replay().unwrap().is_end_stream());
    }
}
