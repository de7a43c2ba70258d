//! A circuit breaker for tower services: calls to a failing dependency fail fast instead of
//! piling up, and the dependency gets room to recover.
//!
//! # States
//!
//! - **Closed**: calls go through; their outcomes go into a sliding [`Window`], the last N
//!   calls or the last T seconds in buckets. The breaker **trips** when, once the window holds
//!   [`minimum_calls`](BreakerBuilder::minimum_calls), the failure rate or the slow-call rate
//!   reaches its threshold, or after a number of consecutive failures.
//! - **Open**: calls are refused at once, for the [`wait`](BreakerBuilder::wait), which can grow
//!   on repeated trips (capped) and be jittered.
//! - **Half-open**: exactly [`half_open_probes`](BreakerBuilder::half_open_probes) calls go
//!   through as probes; concurrent extras are refused. A probe whose future is dropped gives
//!   its place back and is not counted, so a cancelled probe cannot leave the breaker stuck.
//!   When the probes are done, their rates decide: closed again, or open (a longer wait if
//!   growth is on). Half-open lasts at most [`half_open_max`](BreakerBuilder::half_open_max).
//! - **Forced open** and **disabled**, set by hand through the [`Breaker`] handle, which also
//!   [`reset`](Breaker::reset)s it and reports its [`state`](Breaker::state) for readiness.
//!
//! # Modes
//!
//! - [`BreakerLayer`] (generic, for clients first): any service; a refused call fails with
//!   [`BreakerOpen`], carrying how long the breaker stays open.
//! - [`HttpBreakerLayer`] (HTTP server): a refused request is `503` with a problem body and
//!   `Retry-After` (for gRPC, `UNAVAILABLE` with `grpc-retry-pushback-ms`); gRPC outcomes in
//!   trailers are judged at the end of the body.
//! - [`KeyedBreakerLayer`]: one breaker per upstream authority or route, from a bounded
//!   [`BreakerRegistry`].
//!
//! Outcomes are judged by a [`Classify`](palisade_core::Classify): by default
//! [`HttpClassifier`](palisade_core::HttpClassifier) (a `5xx`, a timeout or a transport error
//! fails, a `4xx` never does); [`GrpcClassifier`](palisade_core::GrpcClassifier) reads
//! `grpc-status`; [`ErrorClassifier`](palisade_core::ErrorClassifier) is for services that are
//! not HTTP (an error fails); any closure works. A [`BreakerOpen`] is marked
//! [`RefusedLocally`](palisade_core::RefusedLocally): retry layers do not retry it, and other
//! breakers do not count it.
//!
//! # Cost
//!
//! In the closed state a call takes no lock and allocates nothing: a load of the state word,
//! and two atomic operations to record its outcome (the clock is read only for slow-call
//! detection or a time window). See `benches/README.md` for the numbers beside `failsafe` and
//! `tower-resilience`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use http::{Request, Response};
//! use palisade::breaker::{Breaker, BreakerLayer, BreakerOpen, BreakerState};
//! use tower::{service_fn, Layer, ServiceExt};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//!
//! let breaker = Breaker::builder()
//!     .name("payments")
//!     .failure_rate(0.5)
//!     .minimum_calls(4)
//!     .wait(Duration::from_secs(10))
//!     .on_state_change(|change| println!("{} is now {}", change.breaker, change.to))
//!     .build()
//!     .unwrap();
//! // An upstream that answers 503.
//! let upstream = service_fn(|_: Request<()>| async {
//!     Ok::<_, std::io::Error>(Response::builder().status(503).body(()).unwrap())
//! });
//! // By default a 5xx, a timeout or a transport error counts as a failure.
//! let client = BreakerLayer::new(breaker.clone()).layer(upstream);
//!
//! for _ in 0..4 {
//!     client.clone().oneshot(Request::new(())).await.unwrap();
//! }
//! assert_eq!(breaker.state(), BreakerState::Open);
//! let err = client.oneshot(Request::new(())).await.unwrap_err();
//! let open = err.downcast_ref::<BreakerOpen>().unwrap();
//! assert!(open.remaining().unwrap() <= Duration::from_secs(10));
//! # }
//! ```
//!
//! # Features
//!
//! - `metrics`: `palisade_breaker_calls_total{breaker,outcome}`,
//!   `palisade_breaker_rejected_total{breaker}`,
//!   `palisade_breaker_transitions_total{breaker,from,to}` and the gauge
//!   `palisade_breaker_state{breaker}` (0 closed, 1 open, 2 half-open, 3 forced open,
//!   4 disabled), registered on the breaker's first call; a keyed breaker's keys are named
//!   `<name>:<key>`, and the gauge `palisade_breaker_keys{breaker}` counts them.
//! - `serde`: [`BreakerConfig`], the settings from a configuration file.
//! - `tonic`: a refused call reaches a tonic client as `UNAVAILABLE`.

mod breaker;
mod config;
mod core;
mod error;
pub mod http;
#[doc(hidden)]
pub mod model;
pub mod registry;
mod service;
mod sync;

pub use crate::breaker::{Breaker, CallPermit, Snapshot, StateChange};
pub use crate::config::{
    BreakerBuilder, MAX_HALF_OPEN_PROBES, MAX_WINDOW_BUCKETS, MAX_WINDOW_CALLS, Window,
};
#[cfg(feature = "serde")]
pub use crate::config::{BreakerConfig, WaitGrowth};
pub use crate::core::BreakerState;
pub use crate::error::BreakerOpen;
pub use crate::http::{BreakerBody, HttpBreaker, HttpBreakerLayer};
pub use crate::registry::{
    BreakerKey, BreakerRegistry, ByAuthority, KeyedBreaker, KeyedBreakerLayer,
};
pub use crate::service::{BreakerLayer, BreakerService, ResponseFuture};
// Documented once, in palisade-core (and at the facade's root).
#[doc(hidden)]
pub use palisade_core::BuildError;

// The boxed error of the client layers, one type for all of them (`palisade::BoxError`).
#[doc(hidden)]
pub use palisade_core::BoxError;

#[doc(hidden)]
pub mod __fuzz {
    //! Harnesses for the cargo-fuzz targets in `fuzz/`. Not part of the public API.
    pub use crate::model::fuzz_steps as breaker_model;
}
