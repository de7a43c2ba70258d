//! HTTP server mode: a refused request is answered `503 Service Unavailable` with a problem
//! body and `Retry-After` (for a gRPC request, `UNAVAILABLE` with `grpc-retry-pushback-ms`),
//! and outcomes that are only known at the end of a response body (gRPC trailers) are judged
//! there.
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use http::{Request, StatusCode};
//! use palisade::breaker::{Breaker, HttpBreakerLayer};
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//!
//! let breaker = Breaker::builder().name("reports").build().unwrap();
//! let app = Router::new()
//!     .route("/report", get(|| async { "done" }))
//!     .layer(HttpBreakerLayer::new(breaker.clone()));
//!
//! breaker.force_open();
//! let response = app
//!     .oneshot(Request::get("/report").body(axum::body::Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use palisade_core::problem::types;
use palisade_core::{
    Classify, HttpClassifier, Outcome, Problem, Protocol, Rejection, ResponseBody,
};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::{Breaker, CallPermit};

/// Guards an HTTP service with a [`Breaker`], answering refused requests itself; see the
/// [module documentation](self).
///
/// Calls are judged by [`HttpClassifier`] by default (5xx and errors fail; 4xx do not), or by
/// [`GrpcClassifier`](palisade_core::GrpcClassifier) for a gRPC server.
#[derive(Clone, Debug)]
pub struct HttpBreakerLayer<C = HttpClassifier> {
    breaker: Breaker,
    classifier: C,
    rejection: Rejection,
}

impl HttpBreakerLayer {
    /// Guards with `breaker`, judging calls with [`HttpClassifier`].
    pub fn new(breaker: Breaker) -> Self {
        let rejection = Rejection::new(
            &Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                .with_type(types::UNAVAILABLE)
                .with_title("Service unavailable")
                .with_detail(
                    "the service is failing and is not taking requests for a while; retry \
                     after the time Retry-After gives",
                ),
        );
        Self {
            breaker,
            classifier: HttpClassifier::default(),
            rejection,
        }
    }
}

impl<C> HttpBreakerLayer<C> {
    /// Judges calls with `classifier` instead.
    pub fn classify_with<C2>(self, classifier: C2) -> HttpBreakerLayer<C2> {
        HttpBreakerLayer {
            breaker: self.breaker,
            classifier,
            rejection: self.rejection,
        }
    }

    /// Answers refused requests with `rejection` instead of the default `503` problem (its
    /// `Retry-After` is still set from the breaker's wait).
    #[must_use]
    pub fn rejection(mut self, rejection: Rejection) -> Self {
        self.rejection = rejection;
        self
    }
}

impl<S, C: Clone> Layer<S> for HttpBreakerLayer<C> {
    type Service = HttpBreaker<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpBreaker {
            inner,
            shared: Arc::new(HttpShared {
                breaker: self.breaker.clone(),
                classifier: self.classifier.clone(),
                rejection: self.rejection.clone(),
            }),
        }
    }
}

/// The service of [`HttpBreakerLayer`]. A clone is the inner service's clone and one reference
/// count.
#[derive(Debug)]
pub struct HttpBreaker<S, C> {
    inner: S,
    shared: Arc<HttpShared<C>>,
}

/// What every clone of one [`HttpBreaker`] shares.
#[derive(Debug)]
struct HttpShared<C> {
    breaker: Breaker,
    classifier: C,
    rejection: Rejection,
}

impl<S: Clone, C> Clone for HttpBreaker<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, C> HttpBreaker<S, C> {
    /// The breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.shared.breaker
    }

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

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for HttpBreaker<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
    C: Classify<Response<ResBody>, S::Error> + Clone,
{
    type Response = Response<BreakerBody<ResBody, C>>;
    type Error = S::Error;
    type Future = HttpResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let shared = &*self.shared;
        match shared.breaker.try_acquire() {
            Ok(permit) => HttpResponseFuture {
                kind: HttpKind::Called {
                    future: self.inner.call(request),
                    permit: Some(permit),
                    classifier: shared.classifier.clone(),
                },
            },
            Err(open) => {
                tracing::debug!(
                    breaker = shared.breaker.name(),
                    "request refused: circuit open"
                );
                HttpResponseFuture {
                    kind: HttpKind::Rejected {
                        refusal: Some(Refusal {
                            rejection: shared.rejection.clone(),
                            wait: open.remaining(),
                            protocol: Protocol::of(request.headers()),
                        }),
                    },
                }
            }
        }
    }
}

/// What a refused request is answered with, rendered when the future is polled.
struct Refusal {
    rejection: Rejection,
    wait: Option<std::time::Duration>,
    protocol: Protocol,
}

impl Refusal {
    fn respond<B, C>(self) -> Response<BreakerBody<B, C>> {
        let response = match self.wait {
            Some(wait) => self.rejection.to_response_retry_after(self.protocol, wait),
            None => self.rejection.to_response_for(self.protocol),
        };
        response.map(|body| BreakerBody {
            body,
            pending: None,
        })
    }
}

pin_project! {
    /// The response future of [`HttpBreaker`].
    pub struct HttpResponseFuture<F, C> {
        #[pin]
        kind: HttpKind<F, C>,
    }
}

pin_project! {
    #[project = HttpKindProj]
    enum HttpKind<F, C> {
        Called {
            #[pin]
            future: F,
            permit: Option<CallPermit>,
            classifier: C,
        },
        Rejected {
            refusal: Option<Refusal>,
        },
    }
}

impl<F, C> std::fmt::Debug for HttpResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponseFuture").finish_non_exhaustive()
    }
}

impl<F, C, B, E> Future for HttpResponseFuture<F, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
    C: Classify<Response<B>, E> + Clone,
{
    type Output = Result<Response<BreakerBody<B, C>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            HttpKindProj::Called {
                future,
                permit,
                classifier,
            } => {
                let result = ready!(future.poll(cx));
                let outcome = classifier.classify(result.as_ref());
                let permit = permit.take();
                Poll::Ready(result.map(|response| {
                    let pending = match (outcome, permit) {
                        // A body that is over before it starts has no trailers to wait for.
                        (Outcome::Deferred, Some(permit)) if response.body().is_end_stream() => {
                            permit.complete(classifier.classify_trailers(None));
                            None
                        }
                        // Judged at the end of the body, from its trailers.
                        (Outcome::Deferred, Some(permit)) => Some((permit, classifier.clone())),
                        (outcome, Some(permit)) => {
                            permit.complete(outcome);
                            None
                        }
                        (_, None) => None,
                    };
                    response.map(|body| BreakerBody {
                        body: ResponseBody::inner(body),
                        pending,
                    })
                }))
            }
            HttpKindProj::Rejected { refusal } => Poll::Ready(Ok(refusal
                .take()
                .expect("HttpResponseFuture polled after completion")
                .respond())),
        }
    }
}

pin_project! {
    /// The response body of [`HttpBreaker`]: the inner body (whose trailers decide a deferred
    /// outcome when it ends) or the rejection's problem document.
    pub struct BreakerBody<B, C> {
        #[pin]
        body: ResponseBody<B>,
        pending: Option<(CallPermit, C)>,
    }
}

impl<B, C> std::fmt::Debug for BreakerBody<B, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerBody")
            .field("deferred", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl<B, C> BreakerBody<B, C> {
    /// Records the deferred outcome from the trailers (`None` at the end without any).
    fn settle<E>(pending: &mut Option<(CallPermit, C)>, trailers: Option<&HeaderMap>)
    where
        C: Classify<Response<B>, E>,
    {
        if let Some((permit, classifier)) = pending.take() {
            permit.complete(classifier.classify_trailers(trailers));
        }
    }
}

impl<B, C> Body for BreakerBody<B, C>
where
    B: Body<Data = bytes::Bytes>,
    C: Classify<Response<B>, B::Error>,
{
    type Data = bytes::Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.body.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref() {
                    Self::settle(this.pending, Some(trailers));
                }
            }
            Some(Err(_)) => {
                if let Some((permit, _)) = this.pending.take() {
                    permit.complete(Outcome::Failure);
                }
            }
            None => Self::settle(this.pending, None),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
