//! The small shared vocabulary of the [Palisade] tower layers.
//!
//! Every Palisade layer depends on this crate and on nothing else of Palisade, so a service that
//! imports one layer gets one layer. What lives here is what two or more layers need:
//!
//! - [`Problem`]: a rejection rendered as RFC 9457 `application/problem+json`. Every HTTP-facing
//!   layer answers through it, so a service gets one consistent error shape.
//! - [`ResponseBody`]: the response body of a layer that may answer on its own: either the inner
//!   service's body or a problem document.
//! - [`ClientIp`] and [`TrustedProxies`]: the client address, taken from the connection's peer
//!   and, only when that peer is a trusted proxy, from `Forwarded` or `X-Forwarded-For`.
//! - [`Identity`]: who the caller is, set by the authentication layers.
//! - [`Classify`] and [`Outcome`]: one way to judge a response or an error, shared by the circuit
//!   breaker, retries and metrics, with [`HttpClassifier`] and [`GrpcClassifier`] defaults.
//! - [`Deadline`]: the absolute instant by which a request must be answered.
//! - [`jitter`]: a seedable generator for jittered delays (backoff, breaker open times).
//! - [`require_scopes`]: a per-route scope requirement on the [`Identity`], answering `403`.
//! - [`trace`]: W3C Trace Context, read on the way in ([`TraceContextLayer`]) and sent along
//!   on outbound calls ([`PropagateTraceLayer`]).
//! - [`Rejection`] and [`ResponseFuture`]: the plumbing of a layer that answers on its own,
//!   in problem+json for HTTP callers and as a trailers-only response for gRPC callers
//!   ([`Protocol`], [`grpc`]).
//!
//! With feature `metrics`, [`RequireScopes`] counts `palisade_scope_requests_total{outcome}`
//! (`allowed`, `forbidden`, `unauthenticated`) and [`ClientIpLayer`] counts requests it found
//! no peer address for in `palisade_client_ip_missing_total`.
//!
//! # Example
//!
//! A layer that rejects a request answers with a [`Problem`]:
//!
//! ```
//! use http::StatusCode;
//! use palisade::{Problem, ResponseBody};
//!
//! let problem = Problem::new(StatusCode::TOO_MANY_REQUESTS)
//!     .with_detail("at most 10 requests per second")
//!     .with_extension("retry_after_seconds", 2);
//! let response: http::Response<ResponseBody<String>> = problem.into_response();
//!
//! assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! ```
//!
//! [Palisade]: https://github.com/palisade-rs/palisade

/// Adds one to the counter `name{label=value}`, where `value` is one of the `known` literals,
/// without allocating: the `metrics` macros allocate the labels of a value that is not a
/// literal, so each known value gets its own literal call (a static key). Another value is
/// counted the allocating way. Expands to `::metrics::counter!`: for crates with `metrics`.
#[doc(hidden)]
#[macro_export]
macro_rules! __count_labelled {
    ($name:literal, $label:literal, $value:expr, [$($known:literal),+ $(,)?]) => {{
        let value: &'static str = $value;
        match value {
            $($known => ::metrics::counter!($name, $label => $known).increment(1),)+
            other => ::metrics::counter!($name, $label => other).increment(1),
        }
    }};
}

#[cfg(feature = "metrics")]
#[doc(hidden)]
#[path = "lazy_metrics.rs"]
pub mod __metrics;
mod body;
mod build_error;
mod classify;
mod client_ip;
mod deadline;
pub mod grpc;
mod identity;
pub mod jitter;
pub mod problem;
mod refused;
mod rejection;
pub mod scope;
#[cfg(feature = "serde")]
pub mod serde_duration;
pub mod trace;

pub use body::ResponseBody;

/// The boxed error of the client-side layers (timeouts, retries, breakers), as tower's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub use build_error::BuildError;
pub use classify::{Classify, ErrorClassifier, GrpcClassifier, HttpClassifier, Outcome};
pub use client_ip::{
    Cidr, ClientIp, ClientIpLayer, ClientIpService, ForwardedHeader, InvalidCidr,
    MIN_TRUSTED_PREFIX_V4, MIN_TRUSTED_PREFIX_V6, TrustedProxies, default_peer,
};
pub use deadline::Deadline;
pub use grpc::Protocol;
pub use identity::{Identity, IdentitySource};
pub use problem::Problem;
pub use refused::{RefusedLocally, refused_locally};
pub use rejection::{Rejection, ResponseFuture};
pub use scope::{RequireScopes, RequireScopesLayer, require_scopes};
pub use trace::{PropagateTraceLayer, TraceContext, TraceContextLayer};

#[doc(hidden)]
pub mod __fuzz {
    //! Harnesses for the cargo-fuzz targets in `fuzz/`. Not part of the public API.
    pub use crate::client_ip::fuzz_resolve as client_ip;
    pub use crate::grpc::fuzz_message as grpc_message;
    pub use crate::trace::fuzz_traceparent as traceparent;
}
