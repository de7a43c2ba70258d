use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::Response;
use palisade_core::{Protocol, Rejection, ResponseBody};
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::layer::Config;

pin_project! {
    /// The response future of [`HttpTimeout`](super::HttpTimeout).
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Running {
            #[pin]
            response: F,
            #[pin]
            sleep: Sleep,
            config: Arc<Config>,
            protocol: Protocol,
        },
        Answered {
            rejection: Option<Rejection>,
            protocol: Protocol,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn running(
        response: F,
        sleep: Sleep,
        config: Arc<Config>,
        protocol: Protocol,
    ) -> Self {
        Self {
            kind: Kind::Running {
                response,
                sleep,
                config,
                protocol,
            },
        }
    }

    pub(super) fn answered(rejection: Rejection, protocol: Protocol) -> Self {
        Self {
            kind: Kind::Answered {
                rejection: Some(rejection),
                protocol,
            },
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Running {
                response,
                sleep,
                config,
                protocol,
            } => {
                if let Poll::Ready(result) = response.poll(cx) {
                    #[cfg(feature = "metrics")]
                    config.requests.increment(super::layer::ANSWERED);
                    return Poll::Ready(result.map(|r| r.map(ResponseBody::inner)));
                }
                ready!(sleep.poll(cx));
                record_elapsed(config);
                Poll::Ready(Ok(config.elapsed.to_response_for(*protocol)))
            }
            KindProj::Answered {
                rejection,
                protocol,
            } => Poll::Ready(Ok(rejection
                .take()
                .expect("ResponseFuture polled after completion")
                .to_response_for(*protocol))),
        }
    }
}

/// Logs and counts a request whose deadline passed.
pub(super) fn record_elapsed(config: &Config) {
    tracing::debug!(
        status = config.elapsed.status().as_u16(),
        "request timed out before its deadline"
    );
    #[cfg(feature = "metrics")]
    config.requests.increment(super::layer::ELAPSED);
}
