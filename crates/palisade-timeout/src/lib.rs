//! Timeouts with deadlines for tower services.
//!
//! Three layers, one job each:
//!
//! - [`TimeoutLayer`]: a timeout for any [`Service`](tower_service::Service), inbound or
//!   outbound. Its error is a [`BoxError`]: [`Elapsed`] when the timeout fired, so callers can
//!   tell a late call from a failed one. As cheap as `tower::timeout::Timeout`.
//! - [`HttpTimeoutLayer`]: the server-side timeout. It answers a late request with `504`
//!   (or `503`, `408`) and an RFC 9457 problem body instead of an error, so axum needs no
//!   `HandleErrorLayer`. It stores the request's [`Deadline`] in the extensions, keeps the
//!   earliest when nested, and can honour a caller's `grpc-timeout` up to a cap.
//! - [`PropagateDeadlineLayer`]: for outbound clients. It writes the time left before the
//!   request's deadline into a header such as `grpc-timeout`, and fails the call when the
//!   deadline passes.
//!
//! # Example
//!
//! A global timeout, a shorter one on one route, and the deadline in a handler:
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Extension, Router};
//! use http::{Request, StatusCode};
//! use palisade::Deadline;
//! use palisade::timeout::HttpTimeoutLayer;
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//!
//! let app = Router::new()
//!     .route("/report", get(|Extension(deadline): Extension<Deadline>| async move {
//!         format!("{} ms left", deadline.remaining().as_millis())
//!     }))
//!     .route(
//!         "/quick",
//!         get(|| async {
//!             tokio::time::sleep(Duration::from_secs(1)).await;
//!             "late"
//!         })
//!         .route_layer(HttpTimeoutLayer::new(Duration::from_millis(10))),
//!     )
//!     .layer(HttpTimeoutLayer::new(Duration::from_secs(5)));
//!
//! let quick = app.clone().oneshot(Request::get("/quick").body(axum::body::Body::empty()).unwrap());
//! assert_eq!(quick.await.unwrap().status(), StatusCode::GATEWAY_TIMEOUT);
//!
//! let report = app.oneshot(Request::get("/report").body(axum::body::Body::empty()).unwrap());
//! assert_eq!(report.await.unwrap().status(), StatusCode::OK);
//! # }
//! ```
//!
//! # Features
//!
//! - `serde`: [`HttpTimeoutConfig`], a `Deserialize` form of the server settings.
//! - `metrics`: the counter `palisade_timeout_requests_total{outcome}` of the server layer:
//!   `answered` (the service answered in time), `elapsed` (`504`, or the status chosen),
//!   `invalid_deadline` (a malformed deadline header, `400`); and of the client-side
//!   [`TimeoutLayer`], `palisade_timeout_calls_total{outcome}`: `answered` or `elapsed`.

mod error;
mod header;
pub mod propagate;
pub mod server;
pub mod timeout;

pub use error::Elapsed;
pub use header::{DeadlineFormat, DeadlineHeader, InvalidDeadline};
// Documented once, in palisade-core (and at the facade's root).
#[doc(hidden)]
pub use palisade_core::BuildError;
#[doc(hidden)]
pub use palisade_core::Deadline;
pub use propagate::{PropagateDeadline, PropagateDeadlineLayer};
pub use server::{HttpTimeout, HttpTimeoutBuilder, HttpTimeoutLayer};
#[cfg(feature = "serde")]
pub use server::{HttpTimeoutConfig, InboundDeadlineConfig};
pub use timeout::{Timeout, TimeoutLayer};

/// How much earlier than a caller's own budget (from an [inbound deadline
/// header](HttpTimeoutBuilder::inbound_deadline)) [`HttpTimeout`] answers: one timer tick, so
/// its answer leaves before timers started earlier for the same budget fire.
pub const INBOUND_DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_millis(1);

// The boxed error of the client layers, one type for all of them (`palisade::BoxError`).
#[doc(hidden)]
pub use palisade_core::BoxError;

#[doc(hidden)]
pub mod __fuzz {
    //! Harnesses for the cargo-fuzz targets in `fuzz/`. Not part of the public API.
    pub use crate::header::fuzz_parse as deadline_header;
}
