//! A timeout for any [`Service`], inbound or outbound.
//!
//! The error is a [`BoxError`]: an [`Elapsed`](crate::Elapsed) when the timeout fired, otherwise the inner
//! service's error, so callers tell the two apart with `err.is::<Elapsed>()`.
//!
//! ```
//! use std::time::Duration;
//! use palisade::timeout::{Elapsed, TimeoutLayer};
//! use tower::{service_fn, Layer, ServiceExt};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//!
//! let slow = service_fn(|()| async {
//!     tokio::time::sleep(Duration::from_secs(10)).await;
//!     Ok::<_, std::io::Error>("done")
//! });
//! let service = TimeoutLayer::new(Duration::from_millis(10)).layer(slow);
//! let err = service.oneshot(()).await.unwrap_err();
//! assert!(err.is::<Elapsed>());
//! # }
//! ```

mod future;
mod layer;

use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

pub use self::future::ResponseFuture;
pub use self::layer::TimeoutLayer;
use crate::BoxError;

/// Fails a call that takes longer than its timeout with [`Elapsed`](crate::Elapsed).
///
/// See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Timeout<S> {
    /// Wraps `inner` with `timeout`.
    pub fn new(inner: S, timeout: Duration) -> Self {
        Self { inner, timeout }
    }

    /// The timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
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

impl<S, Request> Service<Request> for Timeout<S>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Request) -> Self::Future {
        let response = self.inner.call(request);
        ResponseFuture::new(response, tokio::time::sleep(self.timeout))
    }
}
