//! Retries for gRPC clients (feature `tonic`): [`GrpcRetryLayer`] wraps a tonic `Channel` (or
//! any service of `http::Request<tonic::body::Body>`) as it is, and follows gRPC's retry
//! semantics (gRFC A6):
//!
//! - **What is retried**: a call that ended with a retryable status, `UNAVAILABLE` by default
//!   ([`retryable`](GrpcRetryLayer::retryable) sets others), in a trailers-only response (or
//!   a non-gRPC answer a proxy wrote, read as gRPC clients read it), and a transport error. A
//!   response whose status comes at the end of a streamed body has started: it is never
//!   retried. A call a layer inside refused before sending it (an open breaker) is never
//!   retried either.
//! - **Pushback**: the server's `grpc-retry-pushback-ms` sets the wait (a longer wait than the
//!   schedule's); a negative or malformed one means "do not retry", as A6 says.
//! - **Attempts**: each retry carries `grpc-previous-rpc-attempts`.
//! - **Any method**: gRPC calls are all `POST`s, so the method says nothing; the status does.
//!   Retry only what the server makes safe to repeat (`UNAVAILABLE` means the call was not
//!   processed).
//!
//! Everything else is the HTTP layer's: the same backoff schedules, a shared budget, the
//! request's [`Deadline`](palisade_core::Deadline), bodies replayed up to 64 KiB (one message
//! of a unary call, or a client stream that fits).
//!
//! ```
//! use std::time::Duration;
//! use palisade::retry::{Backoff, GrpcRetryLayer};
//! use tower::{Layer, ServiceBuilder};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), palisade::BuildError> {
//! let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
//! let retry = GrpcRetryLayer::new(Backoff::exponential(Duration::from_millis(50)).build()?)
//!     .max_attempts(3);
//! let stack = ServiceBuilder::new().layer(retry).service(channel);
//! // Your generated client over it: `GreeterClient::new(stack)`.
//! # let _ = stack;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use palisade_core::grpc::{GRPC_STATUS, GrpcCode};
use palisade_core::{Classify, Outcome};
use tower_layer::Layer;
use tower_service::Service;

use crate::backoff::Backoff;
use crate::config::Shared;
use crate::future::Hint;
use crate::http::{DEFAULT_REPLAY_LIMIT, HttpRetry, HttpSettings, ReplayBody};

/// `grpc-retry-pushback-ms`: the server's wait before a retry, in milliseconds.
pub static GRPC_RETRY_PUSHBACK_MS: http::HeaderName =
    http::HeaderName::from_static("grpc-retry-pushback-ms");

/// What a gRPC call is retried for: a status among the retryable ones (by default only
/// `UNAVAILABLE`), a transport error; never a response whose status is in streamed trailers,
/// never a call refused before it was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcRetryClassifier {
    /// Retryable codes, one bit per code number.
    codes: u32,
}

impl Default for GrpcRetryClassifier {
    fn default() -> Self {
        Self::new([GrpcCode::Unavailable])
    }
}

impl GrpcRetryClassifier {
    /// Retries the calls that end with one of `codes` (`OK` is never retried).
    pub fn new(codes: impl IntoIterator<Item = GrpcCode>) -> Self {
        let codes = codes
            .into_iter()
            .filter(|code| *code != GrpcCode::Ok)
            .fold(0, |bits, code| bits | 1 << code.as_u32());
        Self { codes }
    }

    fn retryable(self, code: GrpcCode) -> bool {
        self.codes & (1 << code.as_u32()) != 0
    }
}

impl<B, E: 'static> Classify<Response<B>, E> for GrpcRetryClassifier {
    fn classify(&self, result: Result<&Response<B>, &E>) -> Outcome {
        let response = match result {
            Err(error) if palisade_core::refused_locally(error) => return Outcome::Ignored,
            Err(_) => return Outcome::Failure,
            Ok(response) => response,
        };
        let code = if response.status() == http::StatusCode::OK {
            // A trailers-only response has its status in the headers; otherwise the status
            // comes in trailers, after the response began: not a retry any more.
            response
                .headers()
                .get(&GRPC_STATUS)
                .and_then(|value| GrpcCode::parse(value.as_bytes()))
        } else {
            Some(GrpcCode::from_http_status(response.status()))
        };
        match code {
            Some(code) if self.retryable(code) => Outcome::Failure,
            _ => Outcome::Success,
        }
    }
}

/// Reads `grpc-retry-pushback-ms`: a wait in milliseconds, or, when negative or malformed,
/// "do not retry" (a wait longer than any cap).
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcPushback;

impl<B> Hint<Response<B>> for GrpcPushback {
    fn retry_after(&self, response: &Response<B>) -> Option<Duration> {
        let value = response.headers().get(&GRPC_RETRY_PUSHBACK_MS)?;
        let text = value.to_str().ok().map(str::trim);
        Some(
            text.filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse::<u64>().ok())
                .map_or(Duration::MAX, Duration::from_millis),
        )
    }
}

/// Retries a gRPC client's calls; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct GrpcRetryLayer<M = Backoff> {
    shared: Arc<Shared<M>>,
    classifier: GrpcRetryClassifier,
    replay_limit: usize,
}

impl GrpcRetryLayer {
    /// Retries `UNAVAILABLE` and transport errors on `backoff`'s schedule, within the default
    /// budget, messages up to 64 KiB.
    pub fn new(backoff: Backoff) -> Self {
        Self {
            shared: Arc::new(Shared::from_backoff(backoff)),
            classifier: GrpcRetryClassifier::default(),
            replay_limit: DEFAULT_REPLAY_LIMIT,
        }
    }
}

impl<M> GrpcRetryLayer<M> {
    /// The status codes retried (default: `UNAVAILABLE` only).
    #[must_use]
    pub fn retryable(mut self, codes: impl IntoIterator<Item = GrpcCode>) -> Self {
        self.classifier = GrpcRetryClassifier::new(codes);
        self
    }

    /// The most bytes of a call's request body kept to send it again (default 64 KiB).
    #[must_use]
    pub fn replay_limit(mut self, bytes: usize) -> Self {
        self.replay_limit = bytes;
        self
    }
}

impl<M: Clone> GrpcRetryLayer<M> {
    crate::config::retry_settings!();
}

impl<S, M: Clone> Layer<S> for GrpcRetryLayer<M> {
    type Service = HttpRetry<TonicBody<S>, GrpcRetryClassifier, M, GrpcPushback>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpRetry {
            inner: TonicBody { inner },
            shared: self.shared.clone(),
            classifier: self.classifier,
            http: HttpSettings {
                replay_limit: self.replay_limit,
                any_method: true,
                grpc: true,
            },
            hint: GrpcPushback,
        }
    }
}

/// Hands a retried call's replayable body to a tonic client as a `tonic::body::Body`.
#[derive(Clone, Debug)]
pub struct TonicBody<S> {
    inner: S,
}

impl<S> TonicBody<S> {
    /// The tonic service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S> Service<Request<ReplayBody<tonic::body::Body>>> for TonicBody<S>
where
    S: Service<Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReplayBody<tonic::body::Body>>) -> Self::Future {
        self.inner.call(request.map(tonic::body::Body::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailers_only(code: &str) -> Response<()> {
        Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", code)
            .body(())
            .unwrap()
    }

    #[test]
    fn what_is_retried() {
        let classifier = GrpcRetryClassifier::default();
        let judge = |response: &Response<()>| {
            Classify::<_, std::io::Error>::classify(&classifier, Ok(response))
        };
        assert_eq!(judge(&trailers_only("14")), Outcome::Failure, "UNAVAILABLE");
        assert_eq!(
            judge(&trailers_only("4")),
            Outcome::Success,
            "DEADLINE_EXCEEDED"
        );
        assert_eq!(judge(&trailers_only("0")), Outcome::Success);
        let streamed = Response::builder()
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        assert_eq!(judge(&streamed), Outcome::Success, "the response began");
        let proxy = Response::builder().status(503).body(()).unwrap();
        assert_eq!(
            judge(&proxy),
            Outcome::Failure,
            "a proxy's 503 is UNAVAILABLE"
        );
        let error = std::io::Error::other("reset");
        assert_eq!(
            Classify::<Response<()>, _>::classify(&classifier, Err(&error)),
            Outcome::Failure
        );
        let wider = GrpcRetryClassifier::new([GrpcCode::Unavailable, GrpcCode::ResourceExhausted]);
        assert_eq!(
            Classify::<_, std::io::Error>::classify(&wider, Ok(&trailers_only("8"))),
            Outcome::Failure
        );
    }

    #[test]
    fn pushback() {
        let with = |value: &str| {
            let response = Response::builder()
                .header("grpc-retry-pushback-ms", value)
                .body(())
                .unwrap();
            GrpcPushback.retry_after(&response)
        };
        assert_eq!(with("250"), Some(Duration::from_millis(250)));
        assert_eq!(with("-1"), Some(Duration::MAX), "negative: do not retry");
        assert_eq!(with("soon"), Some(Duration::MAX));
        assert_eq!(
            GrpcPushback.retry_after(&Response::new(())),
            None,
            "no pushback: the schedule decides"
        );
    }
}
