//! Palisade: small tower layers that make an HTTP service, or an outbound client, secure and
//! resilient.
//!
//! Add one crate and one `.layer(...)`. Each layer lives in its own crate and is re-exported here
//! behind a feature of the same name (`full` enables them all), so a service pays only for the
//! layers it uses:
//!
//! | feature | module | what it does |
//! |---|---|---|
//! | `timeout` | [`timeout`] | timeouts with deadlines: 504 problem responses, `grpc-timeout`, propagation |
//! | `apikey` | [`apikey`] | constant-time API keys, hashed at rest, checksummed, rotatable |
//! | `breaker` | [`breaker`] | circuit breaking: count/time windows, slow calls, bounded half-open, keyed |
//! | `retry` | [`retry`] | retries: jittered backoff, a shared budget, `Retry-After`, idempotency, body replay |
//! | `json` | [`json`] | strict JSON: one-pass RFC 8259 check with limits and no duplicate keys, typed extractor |
//! | `jwt` | [`jwt`] | JWT/JWKS: key-pinned algorithms, RFC 8725 checks, JWKS cache, OIDC, several issuers |
//! | `ratelimit` | [`ratelimit`] | keyed GCRA tiers, a hard memory bound, `RateLimit` headers, Redis (`ratelimit-redis`) |
//!
//! With `apikey` and `jwt`, [`AnyCredentialLayer`] accepts either credential on one route.
//!
//! Every rejection is an RFC 9457 `application/problem+json` response built by [`Problem`], or,
//! when the request is gRPC, a trailers-only response whose `grpc-status` a tonic client reads
//! (see [`grpc`]). The `tonic` feature makes client-side errors (timeouts) reach tonic callers as
//! `DEADLINE_EXCEEDED`.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "timeout")] {
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use palisade::ServiceBuilderExt;
//! use tower::ServiceBuilder;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(ServiceBuilder::new().http_timeout(Duration::from_secs(2)));
//! # }
//! ```

pub use palisade_core::{
    BuildError, Cidr, Classify, ClientIp, ClientIpLayer, Deadline, ErrorClassifier,
    ForwardedHeader, GrpcClassifier, HttpClassifier, Identity, IdentitySource, InvalidCidr,
    Outcome, Problem, Protocol, RefusedLocally, Rejection, RequireScopesLayer, ResponseBody,
    TrustedProxies, grpc, jitter, problem, refused_locally, require_scopes, scope,
};

/// Timeouts with deadlines (feature `timeout`): see [`palisade_timeout`].
#[cfg(feature = "timeout")]
pub mod timeout {
    pub use palisade_timeout::*;
}

/// Constant-time API-key authentication (feature `apikey`): see [`palisade_apikey`].
#[cfg(feature = "apikey")]
pub mod apikey {
    pub use palisade_apikey::*;
}

/// Circuit breaking (feature `breaker`): see [`palisade_breaker`].
#[cfg(feature = "breaker")]
pub mod breaker {
    pub use palisade_breaker::*;
}

/// Strict JSON validation of request bodies (feature `json`): see [`palisade_json`].
#[cfg(feature = "json")]
pub mod json {
    pub use palisade_json::*;
}

/// JWT and JWKS authentication (feature `jwt`): see [`palisade_jwt`].
#[cfg(feature = "jwt")]
pub mod jwt {
    pub use palisade_jwt::*;
}

/// Rate limiting (feature `ratelimit`): see [`palisade_ratelimit`].
#[cfg(feature = "ratelimit")]
pub mod ratelimit {
    pub use palisade_ratelimit::*;
}

#[cfg(all(feature = "apikey", feature = "jwt"))]
pub mod credential;
#[cfg(all(feature = "apikey", feature = "jwt"))]
pub use credential::{AnyCredential, AnyCredentialLayer};

/// Retries with jittered backoff, budgets, `Retry-After` and replayable bodies (feature
/// `retry`): see [`palisade_retry`].
#[cfg(feature = "retry")]
pub mod retry {
    pub use palisade_retry::*;
}

mod builder;
pub use builder::ServiceBuilderExt;

// The README's Rust examples compile as doc tests, so the front page cannot rot.
#[cfg(all(doctest, feature = "full", feature = "ratelimit-redis"))]
#[doc = include_str!("../../../README.md")]
mod readme {}
