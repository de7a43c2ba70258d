use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use pin_project_lite::pin_project;

use crate::grpc::{self, GRPC_RETRY_PUSHBACK_MS, GrpcCode, Protocol};
use crate::problem::problem_response;
use crate::{Problem, ResponseBody};

/// A problem response rendered once, when a layer is built, and answered many times.
///
/// Cloning is one reference-count increment, so a layer under a flood of bad requests does not
/// serialise JSON per request. Both forms are rendered up front: the problem+json response for
/// HTTP callers and the trailers-only response for gRPC callers (see [`crate::grpc`]);
/// [`to_response_for`](Self::to_response_for) picks one.
///
/// ```
/// use http::StatusCode;
/// use palisade::{Problem, Rejection, ResponseBody};
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

#[derive(Debug, Clone)]
struct Inner {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    grpc_status: GrpcCode,
    grpc_message: HeaderValue,
    /// `grpc-retry-pushback-ms`, from a `retry-after` header of delta-seconds.
    pushback: Option<HeaderValue>,
}

impl Rejection {
    /// Renders `problem`.
    pub fn new(problem: &Problem) -> Self {
        Self {
            inner: Arc::new(Inner {
                status: problem.status(),
                headers: Vec::new(),
                body: problem.to_json(),
                grpc_status: GrpcCode::for_rejection(problem.status()),
                grpc_message: problem.grpc_message(),
                pushback: None,
            }),
        }
    }

    /// Adds a header to every response, HTTP and gRPC alike (for example `WWW-Authenticate`).
    /// A `Retry-After` of delta-seconds also sets gRPC's `grpc-retry-pushback-ms`.
    #[must_use]
    pub fn with_header(self, name: HeaderName, value: HeaderValue) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| (*shared).clone());
        if name == RETRY_AFTER {
            inner.pushback = grpc::pushback_for(&value);
        }
        inner.headers.push((name, value));
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Replaces the `grpc-status` a gRPC caller gets (by default the one the
    /// [table](crate::grpc) gives for the status).
    #[must_use]
    pub fn with_grpc_status(self, code: GrpcCode) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| (*shared).clone());
        inner.grpc_status = code;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The `grpc-status` a gRPC caller gets.
    pub fn grpc_status(&self) -> GrpcCode {
        self.inner.grpc_status
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The rendered problem document.
    pub fn body(&self) -> &Bytes {
        &self.inner.body
    }

    /// The problem+json response, for an HTTP caller.
    pub fn to_response<B>(&self) -> Response<ResponseBody<B>> {
        self.to_response_for(Protocol::Http)
    }

    /// The response for a caller speaking `protocol`: problem+json, or a trailers-only gRPC
    /// response with the same headers.
    pub fn to_response_for<B>(&self, protocol: Protocol) -> Response<ResponseBody<B>> {
        let mut response = match protocol {
            Protocol::Http => problem_response(
                self.inner.status,
                ResponseBody::problem(self.inner.body.clone()),
            ),
            Protocol::Grpc => grpc::trailers_only(
                self.inner.grpc_status,
                self.inner.grpc_message.clone(),
                ResponseBody::empty(),
            ),
        };
        let headers = response.headers_mut();
        for (name, value) in &self.inner.headers {
            headers.append(name.clone(), value.clone());
        }
        if let (Protocol::Grpc, Some(pushback)) = (protocol, &self.inner.pushback) {
            headers.insert(GRPC_RETRY_PUSHBACK_MS.clone(), pushback.clone());
        }
        response
    }

    /// [`to_response_for`](Self::to_response_for), telling the caller when to try again:
    /// `Retry-After` in whole seconds (rounded up, so the caller never comes back early) and,
    /// for gRPC, `grpc-retry-pushback-ms`. For rejections whose wait changes per request, such
    /// as an open circuit breaker or a rate limit.
    pub fn to_response_retry_after<B>(
        &self,
        protocol: Protocol,
        wait: std::time::Duration,
    ) -> Response<ResponseBody<B>> {
        let mut response = self.to_response_for(protocol);
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let headers = response.headers_mut();
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        if protocol == Protocol::Grpc {
            // Rounded up, like `Retry-After`: a refusal never says "retry now".
            let millis = u64::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
            headers.insert(GRPC_RETRY_PUSHBACK_MS.clone(), HeaderValue::from(millis));
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
        Rejected { rejection: Option<Rejection>, protocol: Protocol },
    }
}

impl<F> ResponseFuture<F> {
    /// Waits for the inner service's response.
    pub fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    /// Answers with `rejection`, rendered for a caller speaking `protocol` (take it from the
    /// request with [`Protocol::of`]).
    pub fn rejected(rejection: Rejection, protocol: Protocol) -> Self {
        Self {
            kind: Kind::Rejected {
                rejection: Some(rejection),
                protocol,
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
            KindProj::Rejected {
                rejection,
                protocol,
            } => Poll::Ready(Ok(rejection
                .take()
                .expect("ResponseFuture polled after completion")
                .to_response_for(*protocol))),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
    use http_body::Body as _;

    use super::*;
    use crate::grpc::{GRPC_MESSAGE, GRPC_STATUS};

    type Reply = Response<ResponseBody<String>>;

    #[test]
    fn grpc_callers_get_a_trailers_only_response_with_the_headers_that_matter() {
        let rejection = Rejection::new(
            &Problem::new(StatusCode::TOO_MANY_REQUESTS).with_detail("at most 5 per second"),
        )
        .with_header(RETRY_AFTER, HeaderValue::from_static("2"))
        .with_header(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        let grpc: Reply = rejection.to_response_for(Protocol::Grpc);
        assert_eq!(grpc.status(), StatusCode::OK);
        assert_eq!(grpc.headers()[CONTENT_TYPE], "application/grpc");
        assert_eq!(grpc.headers()[&GRPC_STATUS], "8");
        assert_eq!(grpc.headers()[&GRPC_MESSAGE], "at most 5 per second");
        assert_eq!(grpc.headers()[RETRY_AFTER], "2");
        assert_eq!(grpc.headers()[&GRPC_RETRY_PUSHBACK_MS], "2000");
        assert_eq!(grpc.headers()[WWW_AUTHENTICATE], "Bearer");
        assert!(grpc.body().is_end_stream(), "no body: trailers-only");

        let http: Reply = rejection.to_response_for(Protocol::Http);
        assert_eq!(http.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(http.headers()[CONTENT_TYPE], "application/problem+json");
        assert!(!http.headers().contains_key(&GRPC_STATUS));
        assert!(!http.headers().contains_key(&GRPC_RETRY_PUSHBACK_MS));
        assert_eq!(http.headers()[RETRY_AFTER], "2");
    }

    #[test]
    fn the_message_is_the_detail_or_the_title_and_the_code_can_be_chosen() {
        let untitled = Rejection::new(&Problem::new(StatusCode::SERVICE_UNAVAILABLE));
        let reply: Reply = untitled.to_response_for(Protocol::Grpc);
        assert_eq!(reply.headers()[&GRPC_STATUS], "14");
        assert_eq!(reply.headers()[&GRPC_MESSAGE], "Service Unavailable");
        assert!(!reply.headers().contains_key(&GRPC_RETRY_PUSHBACK_MS));

        let aborted = untitled.with_grpc_status(GrpcCode::Aborted);
        assert_eq!(aborted.grpc_status(), GrpcCode::Aborted);
        let reply: Reply = aborted.to_response_for(Protocol::Grpc);
        assert_eq!(reply.headers()[&GRPC_STATUS], "10");
    }

    #[test]
    fn a_wait_known_per_request_becomes_retry_after_and_pushback() {
        let rejection = Rejection::new(&Problem::new(StatusCode::SERVICE_UNAVAILABLE));
        let wait = std::time::Duration::from_millis(1500);
        let http: Reply = rejection.to_response_retry_after(Protocol::Http, wait);
        assert_eq!(http.headers()[RETRY_AFTER], "2", "rounded up");
        assert!(!http.headers().contains_key(&GRPC_RETRY_PUSHBACK_MS));
        let grpc: Reply = rejection.to_response_retry_after(Protocol::Grpc, wait);
        assert_eq!(grpc.headers()[RETRY_AFTER], "2");
        assert_eq!(grpc.headers()[&GRPC_RETRY_PUSHBACK_MS], "1500");
        let exact: Reply =
            rejection.to_response_retry_after(Protocol::Http, std::time::Duration::from_secs(3));
        assert_eq!(exact.headers()[RETRY_AFTER], "3");
        assert_eq!(exact.headers().get_all(RETRY_AFTER).iter().count(), 1);
    }

    #[tokio::test]
    async fn the_future_renders_for_the_callers_protocol() {
        let rejection = Rejection::new(&Problem::new(StatusCode::UNAUTHORIZED));
        let future = ResponseFuture::<std::future::Ready<Result<Response<String>, ()>>>::rejected(
            rejection.clone(),
            Protocol::Grpc,
        );
        let reply = future.await.unwrap();
        assert_eq!(reply.headers()[&GRPC_STATUS], "16");
        let future = ResponseFuture::<std::future::Ready<Result<Response<String>, ()>>>::rejected(
            rejection,
            Protocol::Http,
        );
        assert_eq!(future.await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
}
