//! `palisade-ratelimit` in the gateway: a per-IP limit before authentication (so refused
//! credentials count too), a per-caller limit after it, and a tighter one on `POST /v1/echo`.
//! `--redis` or `--redis-cluster` moves the per-caller tiers to Redis, shared by every
//! gateway instance; in-process is the default.

use http::Method;
use palisade::ratelimit::redis::RedisStore;
use palisade::ratelimit::{KeyBy, Quota, RateLimitLayer, Tier};
use palisade::{BuildError, ClientIpLayer, TrustedProxies};

/// The limits, as quotas.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Per client address, before authentication.
    pub per_ip: Quota,
    /// Per authenticated caller.
    pub per_caller: Quota,
    /// Per caller on `POST /v1/echo`.
    pub echo: Quota,
    /// Where the per-caller tiers keep their state (none: in-process).
    pub redis: Option<RedisStore>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_ip: Quota::per_second(20).with_burst(40),
            per_caller: Quota::per_minute(600).with_burst(100),
            echo: Quota::per_minute(30).with_burst(10),
            redis: None,
        }
    }
}

/// Resolves the client address once (through the trusted proxies) for every layer after it;
/// it finds the peer in axum's `ConnectInfo` (palisade's `axum` feature).
pub fn client_ip(trusted: TrustedProxies) -> ClientIpLayer {
    ClientIpLayer::new(trusted)
}

/// The per-IP limit, with `RateLimit` headers on every response.
///
/// # Errors
///
/// An invalid quota.
pub fn per_ip(limits: &Limits) -> Result<RateLimitLayer, BuildError> {
    RateLimitLayer::builder()
        .tier(Tier::new("ip", limits.per_ip, KeyBy::client_ip()))
        .headers_on_success(true)
        .build()
}

/// The per-caller limits (after authentication).
///
/// # Errors
///
/// An invalid quota.
pub fn per_caller(limits: &Limits) -> Result<RateLimitLayer, BuildError> {
    let mut caller = Tier::new("caller", limits.per_caller, KeyBy::identity());
    let mut echo =
        Tier::new("echo", limits.echo, KeyBy::identity()).route(Some(Method::POST), "/v1/echo");
    if let Some(store) = &limits.redis {
        caller = caller.redis(store.clone());
        echo = echo.redis(store.clone());
    }
    RateLimitLayer::builder()
        .tier(caller)
        .tier(echo)
        .headers_on_success(true)
        .build()
}
