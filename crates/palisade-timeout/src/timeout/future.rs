use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::{BoxError, Elapsed};

pin_project! {
    /// The response future of [`Timeout`](super::Timeout).
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        response: F,
        #[pin]
        sleep: Sleep,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(response: F, sleep: Sleep) -> Self {
        Self { response, sleep }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The response first: one that is ready when the timer fires still wins.
        if let Poll::Ready(result) = this.response.poll(cx) {
            count("answered");
            return Poll::Ready(result.map_err(Into::into));
        }
        ready!(this.sleep.poll(cx));
        count("elapsed");
        Poll::Ready(Err(Elapsed::new().into()))
    }
}

/// `palisade_timeout_calls_total{outcome}`: `answered` (in time, success or error) or `elapsed`.
#[inline]
fn count(outcome: &'static str) {
    #[cfg(feature = "metrics")]
    palisade_core::__count_labelled!(
        "palisade_timeout_calls_total",
        "outcome",
        outcome,
        ["answered", "elapsed"]
    );
    #[cfg(not(feature = "metrics"))]
    let _ = outcome;
}
