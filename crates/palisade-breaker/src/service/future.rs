use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use palisade_core::{Classify, Outcome};
use pin_project_lite::pin_project;

use crate::{BoxError, BreakerOpen, CallPermit};

pin_project! {
    /// The response future of [`BreakerService`](super::BreakerService): the inner call, whose
    /// outcome is recorded when it ends, or the rejection. Dropping it before the end cancels
    /// the call, which counts nothing (and gives a half-open probe's place back).
    pub struct ResponseFuture<F, C> {
        #[pin]
        kind: Kind<F, C>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, C> {
        Called {
            #[pin]
            future: F,
            permit: Option<CallPermit>,
            classifier: C,
        },
        Rejected {
            error: Option<BreakerOpen>,
        },
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn called(future: F, permit: CallPermit, classifier: C) -> Self {
        Self {
            kind: Kind::Called {
                future,
                permit: Some(permit),
                classifier,
            },
        }
    }

    pub(crate) fn rejected(error: BreakerOpen) -> Self {
        Self {
            kind: Kind::Rejected { error: Some(error) },
        }
    }
}

impl<F, C> std::fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T, E>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called {
                future,
                permit,
                classifier,
            } => {
                let result = ready!(future.poll(cx));
                let outcome = match classifier.classify(result.as_ref()) {
                    // Without the body, trailers cannot be judged here: use `HttpBreakerLayer`,
                    // which judges them at the end of the body.
                    Outcome::Deferred => Outcome::Success,
                    outcome => outcome,
                };
                if let Some(permit) = permit.take() {
                    permit.complete(outcome);
                }
                Poll::Ready(result.map_err(Into::into))
            }
            KindProj::Rejected { error } => Poll::Ready(Err(error
                .take()
                .expect("ResponseFuture polled after completion")
                .into())),
        }
    }
}
