//! The client side: a limiter for outbound calls that waits for a permit.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use palisade_core::BuildError;
use tower_layer::Layer;
use tower_service::Service;

use crate::limiter::{Limiter, LimiterClock};
use crate::quota::Quota;
use crate::store::WhenFull;

/// Waited longer than allowed for a permit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimited {
    /// How long a permit was still away.
    pub wait: Duration,
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the outbound rate limit has no permit for {:?}, longer than the longest wait",
            self.wait
        )
    }
}

impl std::error::Error for RateLimited {}

/// The error of a [`ClientRateLimit`] service: no permit in time, or the inner service's.
#[derive(Debug)]
pub enum ClientError<E> {
    /// No permit within the longest wait.
    Limited(RateLimited),
    /// The inner service failed.
    Inner(E),
}

impl<E: fmt::Display> fmt::Display for ClientError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Limited(limited) => limited.fmt(f),
            Self::Inner(error) => error.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ClientError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Limited(limited) => Some(limited),
            Self::Inner(error) => Some(error),
        }
    }
}

/// Limits outbound calls to a quota, waiting for a permit up to a longest wait, then failing
/// with [`RateLimited`]. Clones share the quota; a permit is taken when the call starts (not in
/// `poll_ready`), so a `Buffer` in front or many clones cannot hold permits they do not use.
///
/// ```
/// use std::time::Duration;
/// use palisade_ratelimit::{ClientRateLimitLayer, Quota};
///
/// let layer = ClientRateLimitLayer::new(Quota::per_second(50))
///     .max_wait(Duration::from_millis(200))
///     .build()
///     .unwrap();
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct ClientRateLimitLayer {
    limiter: Arc<Limiter>,
    max_wait: Duration,
}

impl fmt::Debug for ClientRateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRateLimitLayer")
            .field("limiter", &self.limiter)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

/// Builds a [`ClientRateLimitLayer`].
#[derive(Debug)]
#[must_use]
pub struct ClientRateLimitBuilder {
    quota: Quota,
    max_wait: Duration,
}

impl ClientRateLimitLayer {
    /// Calls at `quota`, waiting up to 1 s for a permit by default.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(quota: Quota) -> ClientRateLimitBuilder {
        ClientRateLimitBuilder {
            quota,
            max_wait: Duration::from_secs(1),
        }
    }
}

impl ClientRateLimitBuilder {
    /// The longest a call waits for a permit before failing.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Checks the quota and builds the layer.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for an invalid quota.
    pub fn build(self) -> Result<ClientRateLimitLayer, BuildError> {
        self.quota.check()?;
        Ok(ClientRateLimitLayer {
            limiter: Arc::new(Limiter::new(
                self.quota,
                64,
                WhenFull::AdmitUntracked,
                LimiterClock::real(),
            )),
            max_wait: self.max_wait,
        })
    }
}

impl<S> Layer<S> for ClientRateLimitLayer {
    type Service = ClientRateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientRateLimit {
            inner,
            limiter: self.limiter.clone(),
            max_wait: self.max_wait,
        }
    }
}

/// The service of [`ClientRateLimitLayer`].
#[derive(Clone)]
pub struct ClientRateLimit<S> {
    inner: S,
    limiter: Arc<Limiter>,
    max_wait: Duration,
}

impl<S: fmt::Debug> fmt::Debug for ClientRateLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The key of the one outbound bucket.
const OUTBOUND: u64 = 0;

impl<S, Req> Service<Req> for ClientRateLimit<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = ClientError<S::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ClientError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limiter = self.limiter.clone();
        let max_wait = self.max_wait;
        Box::pin(async move {
            let mut waited = Duration::ZERO;
            loop {
                let decision = limiter.check(OUTBOUND, 1, false);
                if decision.allowed {
                    break;
                }
                let wait = decision.retry_after.unwrap_or(Duration::from_millis(1));
                if waited + wait > max_wait {
                    return Err(ClientError::Limited(RateLimited { wait }));
                }
                tokio::time::sleep(wait).await;
                waited += wait;
            }
            inner.call(request).await.map_err(ClientError::Inner)
        })
    }
}
