use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

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
        Bounded {
            #[pin]
            response: F,
            #[pin]
            sleep: Sleep,
            // When the budget written into the outbound header runs out.
            handed_down: Instant,
        },
        Expired,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn unbounded(response: F) -> Self {
        Self {
            kind: Kind::Unbounded { response },
        }
    }

    pub(super) fn bounded(response: F, sleep: Sleep, handed_down: Instant) -> Self {
        Self {
            kind: Kind::Bounded {
                response,
                sleep,
                handed_down,
            },
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
            KindProj::Bounded {
                response,
                sleep,
                handed_down,
            } => {
                if let Poll::Ready(result) = response.poll(cx) {
                    return Poll::Ready(result.map_err(|err| {
                        if Instant::now() >= *handed_down {
                            tracing::debug!("the call failed once its deadline had passed");
                            Elapsed::new().into()
                        } else {
                            err.into()
                        }
                    }));
                }
                ready!(sleep.poll(cx));
                Poll::Ready(Err(Elapsed::new().into()))
            }
            KindProj::Expired => Poll::Ready(Err(Elapsed::new().into())),
        }
    }
}
