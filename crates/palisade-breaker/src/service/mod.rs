//! Generic mode: a breaker around any tower [`Service`], inbound or outbound. A refused call
//! fails with [`BreakerOpen`](crate::BreakerOpen) at once; the inner service is not called.

mod future;
mod layer;

use std::task::{Context, Poll};

use palisade_core::Classify;
use tower_service::Service;

pub use self::future::ResponseFuture;
pub use self::layer::BreakerLayer;
use crate::{BoxError, Breaker};

/// A service guarded by a [`Breaker`]; built by [`BreakerLayer`].
///
/// Readiness is the inner service's: an open breaker does not make the service unready, it
/// fails each call at once, so callers learn why.
#[derive(Clone, Debug)]
pub struct BreakerService<S, C> {
    inner: S,
    breaker: Breaker,
    classifier: C,
}

impl<S, C> BreakerService<S, C> {
    /// Guards `inner` with `breaker`, judging calls with `classifier`.
    pub fn new(inner: S, breaker: Breaker, classifier: C) -> Self {
        Self {
            inner,
            breaker,
            classifier,
        }
    }

    /// The breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
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

impl<S, C, Request> Service<Request> for BreakerService<S, C>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.breaker.try_acquire() {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(request), permit, self.classifier.clone())
            }
            Err(open) => {
                tracing::debug!(breaker = self.breaker.name(), "call refused: circuit open");
                ResponseFuture::rejected(open)
            }
        }
    }
}
