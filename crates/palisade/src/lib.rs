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
//! | `jwt` | [`jwt`] | JWT/JWKS: key-pinned algorithms, RFC 8725 checks, JWKS cache, OIDC, several issuers (aws-lc-rs) |
//! | `jwt-rust-crypto` | [`jwt`] | the same on the pure-Rust `RustCrypto` backend, instead of `jwt` |
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

#[doc(inline)]
pub use palisade_core::*;

#[cfg(feature = "timeout")]
#[doc(inline)]
pub use palisade_timeout as timeout;

#[cfg(feature = "apikey")]
#[doc(inline)]
pub use palisade_apikey as apikey;

#[cfg(feature = "breaker")]
#[doc(inline)]
pub use palisade_breaker as breaker;

#[cfg(feature = "json")]
#[doc(inline)]
pub use palisade_json as json;

#[cfg(feature = "jwt")]
#[doc(inline)]
pub use palisade_jwt as jwt;

#[cfg(feature = "ratelimit")]
#[doc(inline)]
pub use palisade_ratelimit as ratelimit;

#[cfg(all(feature = "apikey", feature = "jwt"))]
pub mod credential;
#[cfg(all(feature = "apikey", feature = "jwt"))]
pub use credential::{AnyCredential, AnyCredentialLayer};

#[cfg(feature = "retry")]
#[doc(inline)]
pub use palisade_retry as retry;

mod builder;
pub use builder::ServiceBuilderExt;

#[cfg(feature = "config")]
pub mod config;

// The README's Rust examples compile as doc tests, so the front page cannot rot.
#[cfg(all(doctest, feature = "full", feature = "ratelimit-redis"))]
#[doc = include_str!("../../../README.md")]
mod readme {}
