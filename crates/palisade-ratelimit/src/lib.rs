//! Rate limits for tower services: keyed GCRA tiers on `governor`, bounded in memory, with
//! standard headers, shadow and penalty modes, run-time changes, a client-side limiter, and a
//! Redis backend shared by every instance.
//!
//! ```
//! use http::Method;
//! use palisade::{ClientIpLayer, TrustedProxies};
//! use palisade::ratelimit::{KeyBy, Quota, RateLimitLayer, Tier};
//!
//! # fn main() -> Result<(), palisade::BuildError> {
//! let limits = RateLimitLayer::builder()
//!     // 20 requests per second per client address, bursts of 40.
//!     .tier(Tier::new("ip", Quota::per_second(20).with_burst(40), KeyBy::client_ip()))
//!     // 1,000 per minute per authenticated caller.
//!     .tier(Tier::new("caller", Quota::per_minute(1000), KeyBy::identity()))
//!     // Exports are dear: 50 per minute per caller, each costing 5.
//!     .tier(
//!         Tier::new("export", Quota::per_minute(50), KeyBy::identity())
//!             .route(Some(Method::POST), "/export")
//!             .cost(5),
//!     )
//!     .headers_on_success(true)
//!     .build()?;
//! // The client address is resolved once, outside, through the trusted proxies only.
//! let client_ip = ClientIpLayer::new(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
//! # let _ = (limits, client_ip);
//! # Ok(()) }
//! ```
//!
//! # What a tier is
//!
//! A [`Tier`] is a [`Quota`] over a [`KeyBy`]: global, the client's network
//! ([`ClientIp`](palisade_core::ClientIp), which `ClientIpLayer` resolves through trusted proxies
//! only — never the leftmost `X-Forwarded-For`; an IPv4 address, or an IPv6 client's `/64`,
//! since one subscriber routinely holds a whole `/64`), the authenticated [`Identity`] (its
//! subject, source and issuer), a header, the matched route, the method, a custom function, or
//! a tuple of these ([`KeyBy::and`]). A request passes only if every tier that applies admits
//! it, and a request one tier refuses gets back what the in-process tiers before it charged, so
//! a noisy client refused by its own tier does not drain a global one (Redis tiers are checked
//! after the in-process ones, and what one charged stays charged). Tiers can be limited to one
//! route and charge a cost per request.
//!
//! No tier is ever silently unlimited: requests whose key cannot be formed (no `ClientIp`, no
//! `Identity` before authentication, no such header) share one bucket of the tier by default,
//! with an error logged once per tier and a counter; [`Keyless`] refuses them or lets them
//! through instead, when asked. `ClientIpLayer` finds the peer address where hyper, axum
//! (feature `axum`) and tonic (feature `tonic`) servers put it.
//!
//! [`Identity`]: palisade_core::Identity
//!
//! # Quotas say what they mean
//!
//! `Quota::per_second(100)` is 100 requests per second, with a burst of 100 unless
//! [`Quota::with_burst`] says otherwise; quotas are checked when the layer is built, parse from
//! strings (`"20/s burst 40"`, `"1000/min"`, `"50/10s"`), and can be replaced at run time
//! ([`RateLimitLayer::set_quota`]) with each key keeping the permits it has used.
//!
//! # Memory is bounded
//!
//! Each tier tracks at most [`RateLimitBuilder::capacity`] keys (100,000 by default; rounded up
//! to a multiple of 64), in 64 shards. Keys whose permits all came back are reclaimed as new
//! keys arrive — no background task to spawn. A new key finding the tier full of keys still
//! limited gets what [`WhenFull`] says: by default the least recently limited of a few sampled
//! keys is evicted (its state resets); `RejectNew` refuses the new key; `AdmitUntracked` lets it
//! through unlimited. With `metrics`, `palisade_ratelimit_keys{tier}` reports the count.
//!
//! # Metrics (feature `metrics`)
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `palisade_ratelimit_requests_total` | counter | `tier`, `outcome` | each tier's decision: `admitted`, `refused`, `shadow_refused` (admitted in shadow mode), `keyless_refused` ([`Keyless::Refuse`]), `unavailable` (a fail-closed backend failed) |
//! | `palisade_ratelimit_keyless_total` | counter | `tier` | requests without the tier's key (then decided as [`Keyless`] says) |
//! | `palisade_ratelimit_penalties_total` | counter | `tier` | failures a penalty tier charged |
//! | `palisade_ratelimit_backend_errors_total` | counter | `tier` | failed Redis checks |
//! | `palisade_ratelimit_keys` | gauge | `tier` | keys tracked in process (sampled: each of the first 256 checks, then every 4096) |
//! | `palisade_ratelimit_redis_seconds` | histogram | `tier` | one Redis check, answered or failed |
//! | `palisade_ratelimit_client_calls_total` | counter | `limiter`, `outcome` | [`ClientRateLimitLayer`] calls: `immediate`, `delayed`, `refused` |
//! | `palisade_ratelimit_client_wait_seconds` | histogram | `limiter` | the wait of each delayed client call |
//!
//! Each tier registers its metrics on its first request, with the recorder installed by then;
//! every request after adds to counters it already holds (no lookup, no allocation). A Redis
//! check runs in the span `palisade.ratelimit.redis`.
//!
//! # Responses
//!
//! A refused request gets `429` with an RFC 9457 problem naming the tier, `Retry-After` in
//! whole seconds rounded up, and `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-
//! ratelimit-headers: `"ip";q=20;w=1` and `"ip";r=0;t=2`); optionally the same headers on
//! admitted responses. A gRPC caller gets `RESOURCE_EXHAUSTED` with `grpc-retry-pushback-ms`.
//! [`Tier::shadow`] only logs and counts. [`Tier::penalty`] charges only responses a judge calls
//! failures (e.g. `401` per address, to slow credential stuffing) and refuses while the key's
//! failures exhausted the quota; [`Tier::penalty_classified`] judges with a palisade-core
//! [`Classify`](palisade_core::Classify) such as `HttpClassifier` or `GrpcClassifier`.
//!
//! # Client side
//!
//! [`ClientRateLimitLayer`] limits outbound calls, waiting for a permit up to a longest wait,
//! then failing with [`RateLimited`]; permits are taken when a call starts, so clones and a
//! `Buffer` share the quota correctly.
//!
//! # Redis (feature `redis`; `redis-cluster` for Redis Cluster)
//!
//! [`Tier::redis`] keeps a tier's state in Redis: one atomic Lua script per check on the
//! server's clock, one key per call (Cluster and Valkey work), keys expiring once recovered,
//! a per-call timeout and a failure policy, and a lease mode that cuts round trips by a batch
//! size. See the `redis` module.

#[cfg(feature = "__fuzz")]
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;
mod client;
#[cfg(feature = "serde")]
mod config;
pub mod headers;
mod key;
mod layer;
mod limiter;
mod quota;
#[cfg(feature = "redis")]
pub mod redis;
mod store;
mod tier_metrics;

pub use crate::client::{
    ClientError, ClientRateLimit, ClientRateLimitBuilder, ClientRateLimitLayer, RateLimited,
};
#[cfg(feature = "serde")]
pub use crate::config::TierConfig;
pub use crate::key::{KeyBy, RequestView};
pub use crate::layer::{
    Keyless, RATELIMIT, RATELIMIT_POLICY, RateLimit, RateLimitBuilder, RateLimitLayer,
    ResponseFuture, Tier,
};
pub use crate::limiter::{Decision, FakeClock};
pub use crate::quota::{Quota, QuotaParseError};
pub use crate::store::WhenFull;
