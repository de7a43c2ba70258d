//! Retries for tower services that cannot cause a retry storm.
//!
//! A retry saves a request, or, when every client retries a struggling upstream at once, takes
//! the whole fleet down. This crate retries with the safeguards that prevent the second:
//!
//! - **Jittered backoff** ([`Backoff`]): exponential with full, equal or decorrelated jitter,
//!   linear, or constant; a cap, a most number of attempts and a longest total wait; pure and
//!   seedable, checked when built.
//! - **A retry budget** ([`RetryBudget`]), shared by every clone: retries stay at most a
//!   fraction of requests plus a small floor per second, however many requests fail.
//! - **Only what is safe** ([`HttpRetryLayer`]): idempotent methods, or requests carrying an
//!   `Idempotency-Key`; transport errors, timeouts, `502`, `503`, `504` and `429`
//!   ([`HttpRetryClassifier`]); never another `4xx`.
//! - **What the server asked**: `Retry-After` on `429` and `503`, in seconds or as an HTTP-date,
//!   honoured up to a cap; beyond it the answer is returned as it is.
//! - **Deadlines**: no wait runs past the request's [`Deadline`](palisade_core::Deadline) and no
//!   attempt starts without time left; combined with a per-attempt timeout inside
//!   (`palisade-timeout`), every attempt and the whole call are bounded.
//! - **Bodies**: a request body is recorded as the first attempt sends it (chunks kept by
//!   reference, up to a limit) and replayed for a retry; a larger body is sent once and not
//!   retried. A request that can never be retried is neither copied nor recorded.
//!
//! # Layering
//!
//! For an outbound client, outermost first: `total timeout → retry → circuit breaker →
//! per-attempt timeout → transport`. The total timeout sets the `Deadline` the retry respects;
//! the per-attempt timeout bounds each try; the breaker fails fast (its `BreakerOpen` error is an
//! error, so it is retried only if the budget allows, and the next attempt fails fast too).
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use palisade::retry::{Backoff, HttpRetryLayer, Jitter, ReplayBody, RetryBudget};
//! use palisade::timeout::TimeoutLayer;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//!
//! let backoff = Backoff::exponential(Duration::from_millis(100))
//!     .cap(Duration::from_secs(2))
//!     .jitter(Jitter::Full)
//!     .max_attempts(4)
//!     .build()
//!     .unwrap();
//! // Stands for a hyper client; it gets the request with a replayable body.
//! let transport = service_fn(|_req: Request<ReplayBody<Full<Bytes>>>| async {
//!     Ok::<_, std::io::Error>(Response::new(()))
//! });
//! let client = ServiceBuilder::new()
//!     .layer(
//!         HttpRetryLayer::new(backoff)
//!             .budget(RetryBudget::new(0.1, 5, 50).unwrap())
//!             .retry_after_cap(Duration::from_secs(5)),
//!     )
//!     .layer(TimeoutLayer::new(Duration::from_millis(500)))
//!     .service(transport);
//! let request = Request::put("http://upstream/items/7").body(Full::new(Bytes::from("{}"))).unwrap();
//! assert!(client.oneshot(request).await.is_ok());
//! # }
//! ```
//!
//! # Features
//!
//! - `metrics`: `palisade_retry_attempts_total`, `palisade_retry_retries_total`,
//!   `palisade_retry_gave_up_total{reason}` (`schedule`, `deadline`, `budget`,
//!   `retry_after`, `body_too_large`), the histogram `palisade_retry_attempt_seconds{attempt}`
//!   (each attempt upstream, `first` or `retry`), and the gauge
//!   `palisade_retry_budget_balance{budget}` (the retries banked; name a budget with
//!   [`RetryBudget::named`]). Each retry runs in the span `palisade.retry.attempt`; the first
//!   attempt opens none.
//! - `serde`: [`RetryConfig`], the settings from a configuration file.
//! - `backoff`: [`FromBackoffCrate`], a schedule from the `backoff` crate, for users migrating
//!   from it. That crate is unmaintained (RUSTSEC-2025-0012), which is why this crate has its
//!   own schedules.

pub mod backoff;
mod budget;
mod config;
pub mod future;
#[cfg(feature = "tonic")]
pub mod grpc;
pub mod http;
pub mod retry_after;
#[cfg(feature = "serde")]
mod serde_config;
mod service;

#[cfg(feature = "backoff")]
pub use crate::backoff::FromBackoffCrate;
pub use crate::backoff::{Backoff, BackoffBuilder, Jitter, MakeSchedule, NextDelay, Schedule};
pub use crate::budget::RetryBudget;
pub use crate::config::DEFAULT_RETRY_AFTER_CAP;
pub use crate::future::ResponseFuture;
#[cfg(feature = "tonic")]
pub use crate::grpc::{GrpcPushback, GrpcRetryClassifier, GrpcRetryLayer};
pub use crate::http::{
    HttpRetry, HttpRetryClassifier, HttpRetryLayer, HttpTemplate, IDEMPOTENCY_KEY, ReplayBody,
    RetryAfterHint, is_idempotent,
};
#[cfg(feature = "serde")]
pub use crate::serde_config::RetryConfig;
pub use crate::service::{CloneTemplate, Retry, RetryLayer};
// Documented once, in palisade-core (and at the facade's root).
#[doc(hidden)]
pub use palisade_core::BuildError;

// The boxed error of the client layers, one type for all of them (`palisade::BoxError`).
#[doc(hidden)]
pub use palisade_core::BoxError;

fn record_attempt() {
    #[cfg(feature = "metrics")]
    metrics::counter!("palisade_retry_attempts_total").increment(1);
}

fn record_retry() {
    #[cfg(feature = "metrics")]
    metrics::counter!("palisade_retry_retries_total").increment(1);
}

fn record_gave_up(reason: future::GaveUp, attempts: u32) {
    tracing::debug!(
        reason = reason.label(),
        attempts,
        "not retrying: the last answer is returned"
    );
    #[cfg(feature = "metrics")]
    metrics::counter!("palisade_retry_gave_up_total", "reason" => reason.label()).increment(1);
}

#[doc(hidden)]
pub mod __fuzz {
    //! Harnesses for the cargo-fuzz targets in `fuzz/`. Not part of the public API.
    pub use crate::retry_after::fuzz_parse as retry_after;
}
