//! Outbound deadline propagation: tell the next service how much time is left.
//!
//! [`PropagateDeadline`] wraps an HTTP or gRPC client. For a request that carries a [`Deadline`]
//! (set by [`HttpTimeout`](crate::HttpTimeout) on the inbound request and copied onto the
//! outbound one, or set by hand), it writes the time left into the configured header, unless
//! the header already holds a shorter budget (which is kept: the earliest deadline wins), and
//! fails the call with [`Elapsed`](crate::Elapsed) when the earlier of the two passes.
//!
//! The callee (and a client stack below this layer that enforces the header itself, as tonic's
//! `Channel` does with `grpc-timeout`, answering `CANCELLED`) may give up when the budget it was
//! handed runs out, a moment before this layer's own timer fires. An error that arrives once
//! that handed-down budget has run out is therefore reported as `Elapsed` too: the deadline is
//! what failed the call.
//! A request whose deadline has already passed is not sent at all. Requests without a deadline
//! pass through untouched.
//!
//! ```
//! use std::time::Duration;
//! use http::{Request, Response};
//! use palisade::Deadline;
//! use palisade::timeout::{DeadlineHeader, PropagateDeadlineLayer};
//! use tower::{service_fn, Layer, ServiceExt};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//!
//! // A stand-in for the HTTP client: it echoes the header it was sent.
//! let client = service_fn(|req: Request<()>| async move {
//!     Ok::<_, std::io::Error>(Response::new(req.headers()["grpc-timeout"].clone()))
//! });
//! let client = PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()).layer(client);
//!
//! let mut request = Request::new(());
//! Deadline::after(Duration::from_millis(250)).insert_earliest(request.extensions_mut());
//! let sent = client.oneshot(request).await.unwrap().into_body();
//! let budget = DeadlineHeader::grpc_timeout().parse(sent.as_bytes()).unwrap();
//! assert!(budget <= Duration::from_millis(250) && budget > Duration::ZERO);
//! # }
//! ```

mod future;
mod layer;

use std::task::{Context, Poll};

use http::Request;
use palisade_core::Deadline;
use tokio::time::Instant;
use tower_service::Service;

pub use self::future::ResponseFuture;
pub use self::layer::PropagateDeadlineLayer;
use crate::{BoxError, DeadlineHeader};

/// Writes the time left before the request's [`Deadline`] into a header, and enforces it.
///
/// See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct PropagateDeadline<S> {
    inner: S,
    header: DeadlineHeader,
}

impl<S> PropagateDeadline<S> {
    /// Wraps `inner`, writing budgets into `header`.
    pub fn new(inner: S, header: DeadlineHeader) -> Self {
        Self { inner, header }
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

impl<S, B> Service<Request<B>> for PropagateDeadline<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let Some(deadline) = Deadline::from_extensions(request.extensions()) else {
            return ResponseFuture::unbounded(self.inner.call(request));
        };
        let now = Instant::now();
        let remaining = deadline.remaining_from(now);
        if remaining.is_zero() {
            tracing::debug!("deadline passed before the request was sent");
            return ResponseFuture::expired();
        }
        // A shorter budget the caller already wrote (tonic's `Request::set_timeout` writes
        // `grpc-timeout`) is kept and enforced: the earliest deadline wins.
        let (budget, handed_down) = match self.header.read(request.headers()) {
            Ok(Some(asked)) if asked < remaining => (asked, asked),
            _ => {
                let (value, rounded) = self.header.encode_rounded(remaining);
                request
                    .headers_mut()
                    .insert(self.header.name().clone(), value);
                (remaining, rounded)
            }
        };
        ResponseFuture::bounded(
            self.inner.call(request),
            tokio::time::sleep_until(now + budget),
            now + handed_down,
        )
    }
}
