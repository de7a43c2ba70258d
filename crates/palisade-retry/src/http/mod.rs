//! HTTP mode: retries for an HTTP client that know which requests are safe to repeat, what the
//! server asked for (`Retry-After`), how much time the request has left (its
//! [`Deadline`]), and how to send a streamed body again.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use palisade::retry::{Backoff, HttpRetryLayer};
//! use tower::{service_fn, Layer, ServiceExt};
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//!
//! // An upstream that is busy once, then answers.
//! let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
//! let seen = calls.clone();
//! let upstream = service_fn(move |_req: Request<_>| {
//!     let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
//!     async move {
//!         let status = if n == 0 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
//!         Ok::<_, std::convert::Infallible>(Response::builder().status(status).body(()).unwrap())
//!     }
//! });
//! let client = HttpRetryLayer::new(Backoff::exponential(Duration::from_millis(50)).build().unwrap())
//!     .layer(upstream);
//!
//! let request = Request::get("http://upstream/items").body(Full::new(Bytes::new())).unwrap();
//! let response = client.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
//! # }
//! ```

mod body;

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use http::header::{DATE, HeaderName, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use palisade_core::{Classify, Deadline, Outcome};
use tower_layer::Layer;
use tower_service::Service;

use self::body::Replayer;
pub use self::body::{BodyStillSending, ReplayBody};
use crate::backoff::{Backoff, MakeSchedule};
use crate::config::Shared;
use crate::future::{Hint, ResponseFuture, Template};

/// The `Idempotency-Key` header: a request that carries it may be retried whatever its method.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The default most bytes of a request body kept for a retry.
pub const DEFAULT_REPLAY_LIMIT: usize = 64 * 1024;

/// The HTTP default of what to retry: transport errors and timeouts (any error), `502`, `503`,
/// `504` and `429`. Never another status: a `4xx` will fail again, and a `500` may have done
/// half its work. Never a call a layer inside refused before sending it
/// ([`RefusedLocally`](palisade_core::RefusedLocally): an open circuit breaker), which would
/// only be refused again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpRetryClassifier;

impl<B, E: 'static> Classify<Response<B>, E> for HttpRetryClassifier {
    fn classify(&self, result: Result<&Response<B>, &E>) -> Outcome {
        match result {
            Err(error) if palisade_core::refused_locally(error) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
            Ok(response) => match response.status() {
                StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
                | StatusCode::TOO_MANY_REQUESTS => Outcome::Failure,
                _ => Outcome::Success,
            },
        }
    }
}

/// Whether requests with `method` may be repeated (RFC 9110 section 9.2.2): `GET`, `HEAD`,
/// `OPTIONS`, `TRACE`, `PUT` and `DELETE`.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Retries an HTTP client's calls; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct HttpRetryLayer<C = HttpRetryClassifier, M = Backoff> {
    shared: Arc<Shared<M>>,
    classifier: C,
    http: HttpSettings,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct HttpSettings {
    pub(crate) replay_limit: usize,
    pub(crate) any_method: bool,
    /// gRPC: each retry says how many attempts came before (`grpc-previous-rpc-attempts`).
    pub(crate) grpc: bool,
}

impl HttpRetryLayer {
    /// Retries on `backoff`'s schedule with the default budget, for idempotent requests and
    /// requests with an `Idempotency-Key`, bodies up to 64 KiB.
    pub fn new(backoff: Backoff) -> Self {
        Self {
            shared: Arc::new(Shared::from_backoff(backoff)),
            classifier: HttpRetryClassifier,
            http: HttpSettings {
                replay_limit: DEFAULT_REPLAY_LIMIT,
                any_method: false,
                grpc: false,
            },
        }
    }
}

#[cfg(feature = "backoff")]
impl<B> HttpRetryLayer<HttpRetryClassifier, crate::FromBackoffCrate<B>> {
    /// Retries on a schedule from the `backoff` crate (unmaintained upstream: prefer
    /// [`HttpRetryLayer::new`]), for at most 3 attempts unless
    /// [`max_attempts`](Self::max_attempts) says otherwise.
    pub fn from_backoff_crate(backoff: B) -> Self {
        Self {
            shared: Arc::new(Shared::new(crate::FromBackoffCrate(backoff), 3)),
            classifier: HttpRetryClassifier,
            http: HttpSettings {
                replay_limit: DEFAULT_REPLAY_LIMIT,
                any_method: false,
                grpc: false,
            },
        }
    }
}

impl<C, M> HttpRetryLayer<C, M> {
    /// Judges calls with `classifier` instead: a [`Failure`](Outcome::Failure) is retried.
    pub fn classify_with<C2>(self, classifier: C2) -> HttpRetryLayer<C2, M> {
        HttpRetryLayer {
            shared: self.shared,
            classifier,
            http: self.http,
        }
    }

    /// The most bytes of a request body kept to send it again (default 64 KiB). A larger body
    /// is sent once and not retried; a `debug` event says so.
    #[must_use]
    pub fn replay_limit(mut self, bytes: usize) -> Self {
        self.http.replay_limit = bytes;
        self
    }

    /// Retries requests of every method, `POST` and `PATCH` without an `Idempotency-Key`
    /// included. Only when the upstream makes every request safe to repeat.
    #[must_use]
    pub fn retry_any_method(mut self) -> Self {
        self.http.any_method = true;
        self
    }
}

impl<C, M: Clone> HttpRetryLayer<C, M> {
    crate::config::retry_settings!();
}

impl<S, C: Clone, M: Clone> Layer<S> for HttpRetryLayer<C, M> {
    type Service = HttpRetry<S, C, M>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpRetry {
            inner,
            shared: self.shared.clone(),
            classifier: self.classifier.clone(),
            http: self.http,
            hint: RetryAfterHint,
        }
    }
}

/// The service of [`HttpRetryLayer`] (and of `GrpcRetryLayer`, with the gRPC hint). The inner
/// service gets `Request<ReplayBody<B>>`. A clone is the inner service's clone and one reference
/// count.
#[derive(Clone, Debug)]
pub struct HttpRetry<S, C, M, H = RetryAfterHint> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<M>>,
    pub(crate) classifier: C,
    pub(crate) http: HttpSettings,
    pub(crate) hint: H,
}

impl<S, C, M, H> HttpRetry<S, C, M, H> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// What a retry of an HTTP request is made from: its head, and the recording of its body.
pub struct HttpTemplate<B> {
    method: Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
    extensions: http::Extensions,
    body: Replayer<B>,
    deadline: Option<Deadline>,
    grpc: bool,
}

/// `grpc-previous-rpc-attempts` (gRFC A6): on a retry, how many attempts came before.
pub static GRPC_PREVIOUS_RPC_ATTEMPTS: HeaderName =
    HeaderName::from_static("grpc-previous-rpc-attempts");

impl<B> std::fmt::Debug for HttpTemplate<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTemplate")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl<B> Template<Request<ReplayBody<B>>> for HttpTemplate<B> {
    fn attempt(&self, previous: u32) -> Option<Request<ReplayBody<B>>> {
        let body = self.body.replay()?;
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        *request.extensions_mut() = self.extensions.clone();
        if self.grpc {
            request
                .headers_mut()
                .insert(GRPC_PREVIOUS_RPC_ATTEMPTS.clone(), previous.into());
        }
        Some(request)
    }

    fn deadline(&self) -> Option<Deadline> {
        self.deadline
    }
}

/// Reads `Retry-After` on `429` and `503` answers.
#[derive(Clone, Copy, Debug, Default)]
pub struct RetryAfterHint;

impl<B> Hint<Response<B>> for RetryAfterHint {
    fn retry_after(&self, response: &Response<B>) -> Option<Duration> {
        if !matches!(
            response.status(),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            return None;
        }
        let value = response.headers().get(RETRY_AFTER)?;
        // An HTTP-date is read against the response's own `Date` when it has one, so the
        // clocks of the two machines need not agree.
        let now = response
            .headers()
            .get(DATE)
            .and_then(|date| crate::retry_after::http_date(date.as_bytes(), SystemTime::now()))
            .unwrap_or_else(SystemTime::now);
        crate::retry_after::parse(value.as_bytes(), now)
    }
}

impl<S, C, M, H, B, ResB> Service<Request<B>> for HttpRetry<S, C, M, H>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<ResB>> + Clone,
    B: http_body::Body,
    C: Classify<S::Response, S::Error> + Clone,
    M: MakeSchedule + Clone,
    H: crate::future::Hint<S::Response> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S, Request<ReplayBody<B>>, HttpTemplate<B>, C, H, M>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if let Some(budget) = &self.shared.budget {
            budget.deposit();
        }
        crate::record_attempt();
        let retryable = self.http.any_method
            || is_idempotent(request.method())
            || request.headers().contains_key(&IDEMPOTENCY_KEY);
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        if !retryable {
            // Never retried: nothing is copied or recorded.
            let request = request.map(ReplayBody::passthrough);
            return ResponseFuture::new(
                ready.call(request),
                ready,
                None,
                self.classifier.clone(),
                self.hint.clone(),
                None,
            );
        }
        let (parts, body) = request.into_parts();
        let (body, replayer) = ReplayBody::record(body, self.http.replay_limit);
        let template = HttpTemplate {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
            extensions: parts.extensions.clone(),
            deadline: Deadline::from_extensions(&parts.extensions),
            body: replayer,
            grpc: self.http.grpc,
        };
        let future = ready.call(Request::from_parts(parts, body));
        ResponseFuture::new(
            future,
            ready,
            Some(template),
            self.classifier.clone(),
            self.hint.clone(),
            Some(self.shared.clone()),
        )
    }
}
