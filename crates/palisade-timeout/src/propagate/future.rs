use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::{BoxError, Elapsed};

pin_project! {
    /// The response future of [`PropagateDeadline`](super::PropagateDeadline).
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F> {
        Unbounded { #[pin] response: F },
        Bounded { #[pin] response: F, #[pin] sleep: Sleep },
        Expired,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn unbounded(response: F) -> Self {
        Self {
            kind: Kind::Unbounded { response },
        }
    }

    pub(super) fn bounded(response: F, sleep: Sleep) -> Self {
        Self {
            kind: Kind::Bounded { response, sleep },
        }
    }

    pub(super) fn expired() -> Self {
        Self {
            kind: Kind::Expired,
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Unbounded { response } => response.poll(cx).map_err(Into::into),
            KindProj::Bounded { response, sleep } => {
                if let Poll::Ready(result) = response.poll(cx) {
                    return Poll::Ready(result.map_err(Into::into));
                }
                ready!(sleep.poll(cx));
                Poll::Ready(Err(Elapsed::new().into()))
            }
            KindProj::Expired => Poll::Ready(Err(Elapsed::new().into())),
        }
    }
}
