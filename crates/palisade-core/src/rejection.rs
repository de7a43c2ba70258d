use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Response, StatusCode};
use pin_project_lite::pin_project;

use crate::problem::problem_response;
use crate::{Problem, ResponseBody};

/// A problem response rendered once, when a layer is built, and answered many times.
///
/// Cloning is one reference-count increment, so a layer under a flood of bad requests does not
/// serialise JSON per request.
///
/// ```
/// use http::StatusCode;
/// use palisade_core::{Problem, Rejection, ResponseBody};
///
/// let missing = Rejection::new(&Problem::new(StatusCode::UNAUTHORIZED).with_detail("no key"))
///     .with_header(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
/// let response: http::Response<ResponseBody<String>> = missing.to_response();
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(response.headers()["www-authenticate"], "Bearer");
/// ```
#[derive(Clone, Debug)]
pub struct Rejection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl Rejection {
    /// Renders `problem`.
    pub fn new(problem: &Problem) -> Self {
        Self {
            inner: Arc::new(Inner {
                status: problem.status(),
                headers: Vec::new(),
                body: problem.to_json(),
            }),
        }
    }

    /// Adds a header to every response (for example `WWW-Authenticate`).
    #[must_use]
    pub fn with_header(self, name: HeaderName, value: HeaderValue) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            status: shared.status,
            headers: shared.headers.clone(),
            body: shared.body.clone(),
        });
        inner.headers.push((name, value));
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The rendered problem document.
    pub fn body(&self) -> &Bytes {
        &self.inner.body
    }

    /// The response.
    pub fn to_response<B>(&self) -> Response<ResponseBody<B>> {
        let mut response = problem_response(
            self.inner.status,
            ResponseBody::problem(self.inner.body.clone()),
        );
        let headers = response.headers_mut();
        for (name, value) in &self.inner.headers {
            headers.append(name.clone(), value.clone());
        }
        response
    }
}

pin_project! {
    /// The response future of a layer that either calls its inner service or answers with a
    /// [`Rejection`] at once.
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
        Inner { #[pin] future: F },
        Rejected { rejection: Option<Rejection> },
    }
}

impl<F> ResponseFuture<F> {
    /// Waits for the inner service's response.
    pub fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    /// Answers with `rejection`.
    pub fn rejected(rejection: Rejection) -> Self {
        Self {
            kind: Kind::Rejected {
                rejection: Some(rejection),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future
                .poll(cx)
                .map(|result| result.map(|r| r.map(ResponseBody::inner))),
            KindProj::Rejected { rejection } => Poll::Ready(Ok(rejection
                .take()
                .expect("ResponseFuture polled after completion")
                .to_response())),
        }
    }
}
