//! The server-side HTTP timeout: a late request is answered with a problem response, not an
//! error, so axum users need no `HandleErrorLayer`.
//!
//! [`HttpTimeout`] gives each request a [`Deadline`]: now plus the timeout, or the caller's own
//! budget from a deadline header when [configured](HttpTimeoutBuilder::inbound_deadline), never
//! later than a deadline an outer layer already set. It stores that deadline in the request
//! extensions, where inner layers and handlers read it (and
//! [`PropagateDeadline`](crate::PropagateDeadline) passes it on to upstream calls). When the
//! deadline passes first, the response is `504 Gateway Timeout` (or `503`, or `408`) with an
//! RFC 9457 `application/problem+json` body, and the inner future is dropped.
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use http::{Request, StatusCode};
//! use palisade::timeout::{DeadlineHeader, HttpTimeoutLayer};
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//!
//! let timeout = HttpTimeoutLayer::builder(Duration::from_secs(2))
//!     .inbound_deadline(DeadlineHeader::grpc_timeout(), Duration::from_secs(2))
//!     .build()
//!     .unwrap();
//! let app = Router::new()
//!     .route("/slow", get(|| async {
//!         tokio::time::sleep(Duration::from_secs(60)).await;
//!         "never"
//!     }))
//!     .layer(timeout);
//!
//! // The caller gives us 20 ms.
//! let request = Request::get("/slow").header("grpc-timeout", "20m").body(axum::body::Body::empty()).unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! # }
//! ```
//!
//! Per-route timeouts work with axum's `route_layer`, and a per-route timeout nested inside a
//! global one keeps whichever deadline is earlier.

#[cfg(feature = "serde")]
mod config;
mod future;
mod layer;

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use palisade_core::{Deadline, Protocol, ResponseBody};
use tokio::time::Instant;
use tower_service::Service;

#[cfg(feature = "serde")]
pub use self::config::{HttpTimeoutConfig, InboundDeadlineConfig};
pub use self::future::ResponseFuture;
use self::layer::Config;
pub use self::layer::{HttpTimeoutBuilder, HttpTimeoutLayer};

/// Answers a request that misses its deadline with a problem response.
///
/// See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct HttpTimeout<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> HttpTimeout<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpTimeout<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let now = Instant::now();
        // Read now: the request is gone by the time the deadline passes.
        let protocol = Protocol::of(request.headers());
        let budget = match &self.config.inbound {
            Some(inbound) => match inbound.header.read(request.headers()) {
                Ok(Some(asked)) if asked < inbound.cap => {
                    asked.saturating_sub(crate::INBOUND_DEADLINE_MARGIN)
                }
                Ok(Some(_)) => inbound.cap,
                Ok(None) => self.config.timeout,
                Err(_) => {
                    tracing::debug!("rejected a malformed deadline header");
                    #[cfg(feature = "metrics")]
                    self.config.requests.increment(layer::INVALID_DEADLINE);
                    return ResponseFuture::answered(
                        self.config.invalid_deadline.clone(),
                        protocol,
                    );
                }
            },
            None => self.config.timeout,
        };
        let deadline = Deadline::after_from(now, budget).insert_earliest(request.extensions_mut());
        if deadline.has_passed_at(now) {
            // No time left: answer now, without calling the inner service.
            future::record_elapsed(&self.config);
            return ResponseFuture::answered(self.config.elapsed.clone(), protocol);
        }
        let response = self.inner.call(request);
        ResponseFuture::running(
            response,
            tokio::time::sleep_until(deadline.instant()),
            self.config.clone(),
            protocol,
        )
    }
}
