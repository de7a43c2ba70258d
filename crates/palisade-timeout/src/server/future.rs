use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use palisade_core::ResponseBody;
use palisade_core::problem::CONTENT_TYPE_PROBLEM_JSON;
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
        },
        Answered {
            rejection: Option<Rejection>,
        },
    }
}

/// A response the layer answers without waiting for the inner service.
pub(super) enum Rejection {
    Elapsed(Arc<Config>),
    InvalidDeadline(Arc<Config>),
}

impl<F> ResponseFuture<F> {
    pub(super) fn running(response: F, sleep: Sleep, config: Arc<Config>) -> Self {
        Self {
            kind: Kind::Running {
                response,
                sleep,
                config,
            },
        }
    }

    pub(super) fn answered(rejection: Rejection) -> Self {
        Self {
            kind: Kind::Answered {
                rejection: Some(rejection),
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
            } => {
                if let Poll::Ready(result) = response.poll(cx) {
                    return Poll::Ready(result.map(|r| r.map(ResponseBody::inner)));
                }
                ready!(sleep.poll(cx));
                Poll::Ready(Ok(Rejection::Elapsed(config.clone()).into_response()))
            }
            KindProj::Answered { rejection } => Poll::Ready(Ok(rejection
                .take()
                .expect("ResponseFuture polled after completion")
                .into_response())),
        }
    }
}

impl Rejection {
    fn into_response<B>(self) -> Response<ResponseBody<B>> {
        let (status, body, close) = match &self {
            Self::Elapsed(config) => {
                tracing::debug!(
                    status = config.status.as_u16(),
                    "request timed out before its deadline"
                );
                #[cfg(feature = "metrics")]
                metrics::counter!("palisade_timeout_elapsed_total").increment(1);
                (
                    config.status,
                    config.elapsed_body.clone(),
                    config.status == StatusCode::REQUEST_TIMEOUT,
                )
            }
            Self::InvalidDeadline(config) => {
                tracing::debug!("rejected a malformed deadline header");
                (
                    StatusCode::BAD_REQUEST,
                    config.invalid_deadline_body.clone(),
                    false,
                )
            }
        };
        let mut response = Response::new(ResponseBody::problem(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE_PROBLEM_JSON),
        );
        if close {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
