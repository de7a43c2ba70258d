//! Strict JSON for tower services.
//!
//! `serde_json` keeps the last of two duplicate keys, bounds only nesting depth, and axum answers
//! malformed JSON in plain text naming Rust types. `palisade-json` checks a request body before
//! any handler sees it:
//!
//! 1. **Media type.** `Content-Type` must be `application/json` or `application/<x>+json`, with
//!    a `charset`, if any, of UTF-8; otherwise `415`. A request with neither a body nor a
//!    `Content-Type` (a `GET`) passes untouched.
//! 2. **Size.** At most [`DEFAULT_MAX_BODY`] (2 MiB) unless configured: a larger
//!    `Content-Length` is `413` before a byte is read, and a body that streams past the limit is
//!    `413` as soon as it does.
//! 3. **Strict RFC 8259**, in one pass ([`validate`]): UTF-8 without a byte-order mark, no lone
//!    surrogate, no trailing data, no duplicate key at any depth (compared after unescaping),
//!    and every [`Limits`] bound — depth, keys per object, array length, string and key length,
//!    number length, and numbers that would lose precision as `f64`. Otherwise `400`.
//! 4. **Schema** (feature `schema`): the route's JSON Schema, otherwise `422`.
//!
//! The checked bytes reach the inner service as a `Full<Bytes>` body, so plain hyper, tonic-style
//! and axum handlers all work behind the layer. Every rejection is an RFC 9457 problem with the
//! rule that failed, the JSON Pointer of the place and its byte offset — never the body's text
//! (pointer segments are cut to [`scan::MAX_POINTER_SEGMENT`] characters) and never a Rust type
//! name. A gRPC caller gets a trailers-only response with the matching `grpc-status` instead.
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use palisade::json::JsonLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Any handler of `Request<Full<Bytes>>`: it only ever sees strict JSON.
//! let service = ServiceBuilder::new().layer(JsonLayer::new()).service(service_fn(
//!     |request: Request<Full<Bytes>>| async move {
//!         let body = request.into_body().collect().await?.to_bytes();
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(body)))
//!     },
//! ));
//!
//! let request = |body: &'static str| {
//!     Request::post("/")
//!         .header("content-type", "application/json")
//!         .body(Full::new(Bytes::from(body)))
//!         .unwrap()
//! };
//! let ok = service.clone().oneshot(request(r#"{"to":"ada"}"#)).await.unwrap();
//! assert_eq!(ok.status(), StatusCode::OK);
//!
//! let duplicate = service.oneshot(request(r#"{"to":"ada","to":"eve"}"#)).await.unwrap();
//! assert_eq!(duplicate.status(), StatusCode::BAD_REQUEST);
//! let problem = duplicate.into_body().collect().await.unwrap().to_bytes();
//! let problem: serde_json::Value = serde_json::from_slice(&problem).unwrap();
//! assert_eq!(problem["reason"], "duplicate_key");
//! assert_eq!(problem["pointer"], "/to");
//! assert_eq!(problem["offset"], 12);
//! # }
//! ```
//!
//! # Typed extraction (feature `axum`)
//!
//! [`StrictJson<T>`] decodes into `T` and refuses members `T` does not name, even when `T` lacks
//! `#[serde(deny_unknown_fields)]`; [`ValidatedJson<T>`] then runs `T`'s [`garde`] rules. Both
//! answer a document of the wrong shape with `422` and the pointer of the bad field; see
//! [`extract`] for the reasons. Behind the layer they decode without checking again.
//!
//! # Why a scanner of our own
//!
//! The strict check could be a `serde_json` `Deserializer` driven by a visitor that refuses
//! duplicate keys and counts limits, or a scanner that builds nothing. Both were measured on the
//! same documents (`benches/benches/json.rs`, 2-core `x86_64` machine, Rust 1.95):
//!
//! | approach | 1 KiB order | 1 MiB of orders |
//! |---|---|---|
//! | `serde_json` typed decode (the baseline a handler pays anyway) | 1.36 µs | 376 MiB/s |
//! | `serde_json` + `IgnoredAny` (syntax only: no duplicate, limit or number check) | 426 ns | 1.41 GiB/s |
//! | `serde_json` + a validating visitor (a key set per object) | 2.56 µs | 235 MiB/s |
//! | this crate's scanner ([`validate`]) | 519 ns | 1.32 GiB/s |
//!
//! The visitor goes through serde's machinery for every value and builds a hash set for every
//! object, so it costs more than the typed decode it guards; the scanner costs about a third of
//! it. The scanner compares keys in place (hashes inline for objects of up to
//! [`scan::SMALL_OBJECT`] keys, then a seeded hash set so crafted collisions stay linear), skips
//! string bodies eight bytes at a time, and keeps its nesting on a heap stack (no recursion), so
//! its cost stays linear in the input for any document: its slowest measured input, 1 MiB of
//! long numbers with huge exponents (each parsed to see whether it overflows), still runs at
//! 500 MiB/s.
//!
//! # `JSONTestSuite`
//!
//! Every `y_` file is accepted and every `n_` file rejected, except the two `y_` files whose
//! object repeats a key (`y_object_duplicated_key*.json`): strictness refuses them by default,
//! and [`DuplicateKeys::Allow`] accepts them. Each `i_` file's outcome is pinned in
//! `tests/suite.rs`: lone surrogates and invalid UTF-8 are refused, huge exponents are refused
//! as lossy unless [`LossyNumbers::Allow`], deep nesting is refused past [`Limits::max_depth`].
//!
//! # Metrics (feature `metrics`)
//!
//! `palisade_json_requests_total{outcome}` counts each body the layer checks (or an extractor
//! checks without the layer): `accepted`, or the reason it was refused (`duplicate_key`,
//! `too_deep`, `too_large`, `unsupported_media_type`, `unreadable`, `schema`, ...: the `reason`
//! of the problem body). `palisade_json_decode_rejected_total{reason}` counts accepted bodies an
//! extractor then refused for its type (`unknown_field`, `missing_field`, `validation`, ...).

pub mod limits;
pub mod scan;

mod layer;

#[cfg(feature = "axum")]
pub mod extract;

#[cfg(feature = "schema")]
pub mod schema;

#[cfg(feature = "__differential")]
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;

#[cfg(feature = "axum")]
pub use garde;

#[cfg(feature = "axum")]
pub use crate::extract::{JsonRejection, StrictJson, ValidatedJson};
pub use crate::layer::{
    JsonLayer, JsonLayerBuilder, JsonService, ResponseFuture, Validated, is_json_media_type,
};
pub use crate::limits::{DEFAULT_MAX_BODY, DuplicateKeys, Limits, LossyNumbers};
pub use crate::scan::{Reason, Rejected, Stats, validate};
