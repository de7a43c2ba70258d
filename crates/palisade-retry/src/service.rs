//! Generic mode: retries for any tower [`Service`] whose requests can be cloned.

use std::sync::Arc;
use std::task::{Context, Poll};

use palisade_core::{Classify, Deadline, ErrorClassifier};
use tower_layer::Layer;
use tower_service::Service;

use crate::backoff::{Backoff, MakeSchedule};
use crate::config::Shared;
use crate::future::{NoHint, ResponseFuture, Template};

/// Retries calls to any service whose requests are `Clone`, on a [`Backoff`] schedule within
/// a [`RetryBudget`](crate::RetryBudget).
///
/// Calls are judged by a [`Classify`]: by default [`ErrorClassifier`] (every error is retried,
/// every response returned); a closure `Fn(Result<&Res, &Err>) -> Outcome` says otherwise
/// ([`Failure`](palisade_core::Outcome::Failure) means "retry"). For HTTP clients use
/// [`HttpRetryLayer`](crate::HttpRetryLayer), which also knows idempotency, `Retry-After`,
/// deadlines and request bodies.
#[derive(Clone, Debug)]
pub struct RetryLayer<C = ErrorClassifier, M = Backoff> {
    shared: Arc<Shared<M>>,
    classifier: C,
}

impl RetryLayer {
    /// Retries on `backoff`'s schedule, with the default [`RetryBudget`](crate::RetryBudget).
    pub fn new(backoff: Backoff) -> Self {
        Self {
            shared: Arc::new(Shared::from_backoff(backoff)),
            classifier: ErrorClassifier,
        }
    }
}

#[cfg(feature = "backoff")]
impl<B> RetryLayer<ErrorClassifier, crate::FromBackoffCrate<B>> {
    /// Retries on a schedule from the `backoff` crate (unmaintained upstream: prefer
    /// [`RetryLayer::new`]), for at most 3 attempts unless
    /// [`max_attempts`](Self::max_attempts) says otherwise.
    pub fn from_backoff_crate(backoff: B) -> Self {
        Self {
            shared: Arc::new(Shared::new(crate::FromBackoffCrate(backoff), 3)),
            classifier: ErrorClassifier,
        }
    }
}

impl<C, M> RetryLayer<C, M> {
    /// Judges calls with `classifier` instead: a [`Failure`](palisade_core::Outcome::Failure)
    /// is retried.
    pub fn classify_with<C2>(self, classifier: C2) -> RetryLayer<C2, M> {
        RetryLayer {
            shared: self.shared,
            classifier,
        }
    }
}

impl<C, M: Clone> RetryLayer<C, M> {
    crate::config::retry_settings!();
}

impl<S, C: Clone, M: Clone> Layer<S> for RetryLayer<C, M> {
    type Service = Retry<S, C, M>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            shared: self.shared.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// The service of [`RetryLayer`]. A clone is the inner service's clone and one reference count.
#[derive(Clone, Debug)]
pub struct Retry<S, C, M> {
    inner: S,
    shared: Arc<Shared<M>>,
    classifier: C,
}

impl<S, C, M> Retry<S, C, M> {
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

/// A copy of a clonable request.
#[derive(Debug)]
pub struct CloneTemplate<Req>(Req);

impl<Req: Clone> Template<Req> for CloneTemplate<Req> {
    fn attempt(&self, _previous: u32) -> Option<Req> {
        Some(self.0.clone())
    }

    fn deadline(&self) -> Option<Deadline> {
        None
    }
}

impl<S, C, M, Req> Service<Req> for Retry<S, C, M>
where
    S: Service<Req> + Clone,
    Req: Clone,
    C: Classify<S::Response, S::Error> + Clone,
    M: MakeSchedule + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S, Req, CloneTemplate<Req>, C, NoHint, M>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if let Some(budget) = &self.shared.budget {
            budget.deposit();
        }
        crate::record_attempt();
        let template = CloneTemplate(request.clone());
        // The service made ready is the one called; the future keeps it for the retries, and
        // this service goes on with a fresh clone (tower's readiness rule).
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let future = ready.call(request);
        ResponseFuture::new(
            future,
            ready,
            Some(template),
            self.classifier.clone(),
            NoHint,
            Some(self.shared.clone()),
        )
    }
}
