//! `ServiceBuilder` methods for Palisade's layers.

#[cfg(feature = "timeout")]
use std::time::Duration;

use tower::ServiceBuilder;
use tower_layer::Stack;

mod sealed {
    pub trait Sealed {}
}

impl<L> sealed::Sealed for ServiceBuilder<L> {}

/// Palisade's layers as [`ServiceBuilder`] methods.
///
/// Sealed: implemented for `ServiceBuilder` only, so methods can be added without breaking
/// anyone.
///
/// One builder per stack, outermost first, as tower-http's `ServiceBuilderExt` does for its
/// layers (axum re-boxes every `Router::layer` call: one builder is cheaper than several).
/// Names that tower's `ServiceBuilder` already has (`timeout`, `retry`, `rate_limit`) are
/// `attempt_timeout`, `http_retry` and `rate_limits` here.
///
/// ```
/// # #[cfg(all(feature = "full", feature = "ratelimit-redis"))] {
/// use std::time::Duration;
/// use palisade::ServiceBuilderExt;
/// use palisade::TrustedProxies;
/// use palisade::apikey::{ApiKeyLayer, KeySet, KeyStore};
/// use palisade::breaker::Breaker;
/// use palisade::json::JsonLayer;
/// use palisade::ratelimit::{KeyBy, Quota, RateLimitLayer, Tier};
/// use palisade::retry::{Backoff, HttpRetryLayer};
/// use palisade::timeout::DeadlineHeader;
/// use tower::ServiceBuilder;
///
/// # fn main() -> Result<(), palisade::BuildError> {
/// // A server: client address, total timeout, per-IP limit, API key, scopes, strict JSON.
/// let per_ip = RateLimitLayer::builder()
///     .tier(Tier::new("ip", Quota::per_second(20).with_burst(40), KeyBy::client_ip()))
///     .build()?;
/// let server = ServiceBuilder::new()
///     .client_ip(TrustedProxies::none())
///     .http_timeout(Duration::from_secs(2))
///     .rate_limits(per_ip)
///     .api_key(KeyStore::new(KeySet::default()))
///     .require_scopes(["orders:write"])
///     .strict_json(JsonLayer::new());
/// // A client: retries, a breaker, a timeout per attempt, the deadline sent along.
/// let client = ServiceBuilder::new()
///     .http_retry(HttpRetryLayer::new(Backoff::exponential(Duration::from_millis(50)).build()?))
///     .breaker(Breaker::builder().name("billing").build()?)
///     .attempt_timeout(Duration::from_millis(500))
///     .propagate_deadline(DeadlineHeader::grpc_timeout());
/// # let _ = (server, client, ApiKeyLayer::new(KeyStore::new(KeySet::default())));
/// # Ok(()) }
/// # }
/// ```
pub trait ServiceBuilderExt<L>: sealed::Sealed + Sized {
    /// Adds [`ApiKeyLayer::new`](palisade_apikey::ApiKeyLayer::new) over `store`.
    #[cfg(feature = "apikey")]
    fn api_key(
        self,
        store: palisade_apikey::KeyStore,
    ) -> ServiceBuilder<Stack<palisade_apikey::ApiKeyLayer, L>>;

    /// Adds [`require_scopes`](palisade_core::require_scopes).
    fn require_scopes<I, S>(
        self,
        scopes: I,
    ) -> ServiceBuilder<Stack<palisade_core::RequireScopesLayer, L>>
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>;

    /// Adds [`HttpTimeoutLayer::new`](palisade_timeout::HttpTimeoutLayer::new): late requests
    /// are answered `504` with a problem body.
    #[cfg(feature = "timeout")]
    fn http_timeout(
        self,
        timeout: Duration,
    ) -> ServiceBuilder<Stack<palisade_timeout::HttpTimeoutLayer, L>>;

    /// Adds a configured [`HttpTimeoutLayer`](palisade_timeout::HttpTimeoutLayer).
    #[cfg(feature = "timeout")]
    fn http_timeout_layer(
        self,
        layer: palisade_timeout::HttpTimeoutLayer,
    ) -> ServiceBuilder<Stack<palisade_timeout::HttpTimeoutLayer, L>>;

    /// Adds [`PropagateDeadlineLayer`](palisade_timeout::PropagateDeadlineLayer) to a client.
    #[cfg(feature = "timeout")]
    fn propagate_deadline(
        self,
        header: palisade_timeout::DeadlineHeader,
    ) -> ServiceBuilder<Stack<palisade_timeout::PropagateDeadlineLayer, L>>;
    /// Adds [`ClientIpLayer::new`](palisade_core::ClientIpLayer::new): the client address,
    /// resolved once through `trusted` proxies, for every layer after it. Put it outermost.
    fn client_ip(
        self,
        trusted: palisade_core::TrustedProxies,
    ) -> ServiceBuilder<Stack<palisade_core::ClientIpLayer, L>>;

    /// Adds [`TraceContextLayer::new`](palisade_core::TraceContextLayer::new): the caller's
    /// W3C trace continued (or a new one) in the request's extensions.
    fn trace_context(self) -> ServiceBuilder<Stack<palisade_core::TraceContextLayer, L>>;

    /// Adds [`PropagateTraceLayer::new`](palisade_core::PropagateTraceLayer::new): an outbound
    /// request's trace written as `traceparent` and `tracestate`.
    fn propagate_trace(self) -> ServiceBuilder<Stack<palisade_core::PropagateTraceLayer, L>>;

    /// Adds a configured [`ApiKeyLayer`](palisade_apikey::ApiKeyLayer).
    #[cfg(feature = "apikey")]
    fn api_key_layer(
        self,
        layer: palisade_apikey::ApiKeyLayer,
    ) -> ServiceBuilder<Stack<palisade_apikey::ApiKeyLayer, L>>;

    /// Adds a [`JwtLayer`](palisade_jwt::JwtLayer).
    #[cfg(feature = "jwt")]
    fn jwt<T>(
        self,
        layer: palisade_jwt::JwtLayer<T>,
    ) -> ServiceBuilder<Stack<palisade_jwt::JwtLayer<T>, L>>;

    /// Adds [`AnyCredentialLayer::new`](crate::AnyCredentialLayer::new): an API key or a JWT.
    #[cfg(all(feature = "apikey", feature = "jwt"))]
    fn any_credential<T>(
        self,
        apikey: palisade_apikey::ApiKeyLayer,
        jwt: palisade_jwt::JwtLayer<T>,
    ) -> ServiceBuilder<Stack<crate::AnyCredentialLayer<T>, L>>;

    /// Adds a [`RateLimitLayer`](palisade_ratelimit::RateLimitLayer).
    #[cfg(feature = "ratelimit")]
    fn rate_limits(
        self,
        layer: palisade_ratelimit::RateLimitLayer,
    ) -> ServiceBuilder<Stack<palisade_ratelimit::RateLimitLayer, L>>;

    /// Adds a [`ClientRateLimitLayer`](palisade_ratelimit::ClientRateLimitLayer) to a client.
    #[cfg(feature = "ratelimit")]
    fn client_rate_limit(
        self,
        layer: palisade_ratelimit::ClientRateLimitLayer,
    ) -> ServiceBuilder<Stack<palisade_ratelimit::ClientRateLimitLayer, L>>;

    /// Adds a [`JsonLayer`](palisade_json::JsonLayer): strict JSON request bodies.
    #[cfg(feature = "json")]
    fn strict_json(
        self,
        layer: palisade_json::JsonLayer,
    ) -> ServiceBuilder<Stack<palisade_json::JsonLayer, L>>;

    /// Adds [`BreakerLayer::new`](palisade_breaker::BreakerLayer::new) to a client: a `5xx`, a
    /// timeout or a transport error counts against `breaker`.
    #[cfg(feature = "breaker")]
    fn breaker(
        self,
        breaker: palisade_breaker::Breaker,
    ) -> ServiceBuilder<Stack<palisade_breaker::BreakerLayer, L>>;

    /// Adds [`HttpBreakerLayer::new`](palisade_breaker::HttpBreakerLayer::new) to a server:
    /// `503` with `Retry-After` while `breaker` is open.
    #[cfg(feature = "breaker")]
    fn http_breaker(
        self,
        breaker: palisade_breaker::Breaker,
    ) -> ServiceBuilder<Stack<palisade_breaker::HttpBreakerLayer, L>>;

    /// Adds a configured [`HttpRetryLayer`](palisade_retry::HttpRetryLayer) to a client.
    #[cfg(feature = "retry")]
    fn http_retry<C, M>(
        self,
        layer: palisade_retry::HttpRetryLayer<C, M>,
    ) -> ServiceBuilder<Stack<palisade_retry::HttpRetryLayer<C, M>, L>>;

    /// Adds [`TimeoutLayer::new`](palisade_timeout::TimeoutLayer::new): a timeout for any
    /// service (a client's attempt, say), failing with `Elapsed`.
    #[cfg(feature = "timeout")]
    fn attempt_timeout(
        self,
        timeout: Duration,
    ) -> ServiceBuilder<Stack<palisade_timeout::TimeoutLayer, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    #[cfg(feature = "apikey")]
    fn api_key(
        self,
        store: palisade_apikey::KeyStore,
    ) -> ServiceBuilder<Stack<palisade_apikey::ApiKeyLayer, L>> {
        self.layer(palisade_apikey::ApiKeyLayer::new(store))
    }

    fn require_scopes<I, S>(
        self,
        scopes: I,
    ) -> ServiceBuilder<Stack<palisade_core::RequireScopesLayer, L>>
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        self.layer(palisade_core::require_scopes(scopes))
    }

    #[cfg(feature = "timeout")]
    fn http_timeout(
        self,
        timeout: Duration,
    ) -> ServiceBuilder<Stack<palisade_timeout::HttpTimeoutLayer, L>> {
        self.layer(palisade_timeout::HttpTimeoutLayer::new(timeout))
    }

    #[cfg(feature = "timeout")]
    fn http_timeout_layer(
        self,
        layer: palisade_timeout::HttpTimeoutLayer,
    ) -> ServiceBuilder<Stack<palisade_timeout::HttpTimeoutLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "timeout")]
    fn propagate_deadline(
        self,
        header: palisade_timeout::DeadlineHeader,
    ) -> ServiceBuilder<Stack<palisade_timeout::PropagateDeadlineLayer, L>> {
        self.layer(palisade_timeout::PropagateDeadlineLayer::new(header))
    }

    fn client_ip(
        self,
        trusted: palisade_core::TrustedProxies,
    ) -> ServiceBuilder<Stack<palisade_core::ClientIpLayer, L>> {
        self.layer(palisade_core::ClientIpLayer::new(trusted))
    }

    fn trace_context(self) -> ServiceBuilder<Stack<palisade_core::TraceContextLayer, L>> {
        self.layer(palisade_core::TraceContextLayer::new())
    }

    fn propagate_trace(self) -> ServiceBuilder<Stack<palisade_core::PropagateTraceLayer, L>> {
        self.layer(palisade_core::PropagateTraceLayer::new())
    }

    #[cfg(feature = "apikey")]
    fn api_key_layer(
        self,
        layer: palisade_apikey::ApiKeyLayer,
    ) -> ServiceBuilder<Stack<palisade_apikey::ApiKeyLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "jwt")]
    fn jwt<T>(
        self,
        layer: palisade_jwt::JwtLayer<T>,
    ) -> ServiceBuilder<Stack<palisade_jwt::JwtLayer<T>, L>> {
        self.layer(layer)
    }

    #[cfg(all(feature = "apikey", feature = "jwt"))]
    fn any_credential<T>(
        self,
        apikey: palisade_apikey::ApiKeyLayer,
        jwt: palisade_jwt::JwtLayer<T>,
    ) -> ServiceBuilder<Stack<crate::AnyCredentialLayer<T>, L>> {
        self.layer(crate::AnyCredentialLayer::new(apikey, jwt))
    }

    #[cfg(feature = "ratelimit")]
    fn rate_limits(
        self,
        layer: palisade_ratelimit::RateLimitLayer,
    ) -> ServiceBuilder<Stack<palisade_ratelimit::RateLimitLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "ratelimit")]
    fn client_rate_limit(
        self,
        layer: palisade_ratelimit::ClientRateLimitLayer,
    ) -> ServiceBuilder<Stack<palisade_ratelimit::ClientRateLimitLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "json")]
    fn strict_json(
        self,
        layer: palisade_json::JsonLayer,
    ) -> ServiceBuilder<Stack<palisade_json::JsonLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "breaker")]
    fn breaker(
        self,
        breaker: palisade_breaker::Breaker,
    ) -> ServiceBuilder<Stack<palisade_breaker::BreakerLayer, L>> {
        self.layer(palisade_breaker::BreakerLayer::new(breaker))
    }

    #[cfg(feature = "breaker")]
    fn http_breaker(
        self,
        breaker: palisade_breaker::Breaker,
    ) -> ServiceBuilder<Stack<palisade_breaker::HttpBreakerLayer, L>> {
        self.layer(palisade_breaker::HttpBreakerLayer::new(breaker))
    }

    #[cfg(feature = "retry")]
    fn http_retry<C, M>(
        self,
        layer: palisade_retry::HttpRetryLayer<C, M>,
    ) -> ServiceBuilder<Stack<palisade_retry::HttpRetryLayer<C, M>, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "timeout")]
    fn attempt_timeout(
        self,
        timeout: Duration,
    ) -> ServiceBuilder<Stack<palisade_timeout::TimeoutLayer, L>> {
        self.layer(palisade_timeout::TimeoutLayer::new(timeout))
    }
}
