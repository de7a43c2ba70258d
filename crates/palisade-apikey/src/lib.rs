//! Constant-time API-key authentication for tower services.
//!
//! The common answer compares the presented key with `==` against plaintext keys in a config
//! file, and needs a restart to rotate. This crate does none of that:
//!
//! - **Keys are hashed at rest.** A [`KeySet`] holds only SHA-256 [`KeyDigest`]s, each with a
//!   principal, scopes, an optional `not_after` and an enabled flag. A presented key is hashed
//!   and found by digest; the final comparison is [`subtle::ConstantTimeEq`], with no early exit
//!   that depends on the key's bytes.
//! - **Keys are checksummed.** Generated keys read `pal_live_<random>_<check>` (see [`format`](mod@format)):
//!   a mistyped or truncated key is refused before any lookup, and secret scanners can find
//!   leaked ones by their prefix. Opaque legacy keys can be accepted too.
//! - **Keys rotate live.** A principal can hold several keys at once, and the [`KeyStore`] swaps
//!   the whole set atomically, from code or by reloading the key file, without failing or
//!   blocking a request in flight.
//! - **Rejections are explicit.** No key, several keys, a malformed header, an oversized,
//!   malformed, unknown, disabled or expired key: each is a `401` with `WWW-Authenticate` and
//!   its own problem+json body, which never echoes the key. A disabled or expired key gets the
//!   same answer as an unknown one, so a leaked, revoked key does not learn it was once valid
//!   (the precise reason goes to logs and metrics;
//!   [`ApiKeyBuilder::reveal_refusals`] tells the caller instead). A route that needs scopes
//!   answers `403` through [`require_scopes`].
//!
//! On success the request carries an [`Identity`](palisade_core::Identity) (principal, scopes,
//! key id, source [`IdentitySource::ApiKey`](palisade_core::IdentitySource::ApiKey)) in its
//! extensions. Logs name the key id (the first 8 hex digits of its digest) and the principal,
//! never the key.
//!
//! # Example
//!
//! ```
//! use axum::{routing::{get, post}, Extension, Router};
//! use http::{Request, StatusCode};
//! use palisade::apikey::{format, require_scopes, ApiKeyLayer, KeyDigest, KeyEntry, KeySet, KeyStore};
//! use palisade::Identity;
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//!
//! // What `palisade apikey new --principal shop --scopes orders:read` prints:
//! let key = format::generate("pal_live").unwrap();
//! let line = format!("{} principal=shop scopes=orders:read", KeyDigest::of(&key));
//!
//! let store = KeyStore::new(KeySet::parse(&line).unwrap());
//! let app = Router::new()
//!     .route("/orders", get(|Extension(who): Extension<Identity>| async move {
//!         format!("orders of {}", who.subject())
//!     }))
//!     .route("/orders/new", post(|| async { "created" }).route_layer(require_scopes(["orders:write"])))
//!     .layer(ApiKeyLayer::new(store.clone()));
//!
//! let get_orders = Request::get("/orders").header("x-api-key", &key).body(axum::body::Body::empty()).unwrap();
//! let response = app.clone().oneshot(get_orders).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! let create = Request::post("/orders/new").header("authorization", format!("Bearer {key}")).body(axum::body::Body::empty()).unwrap();
//! assert_eq!(app.clone().oneshot(create).await.unwrap().status(), StatusCode::FORBIDDEN);
//!
//! let anonymous = Request::get("/orders").body(axum::body::Body::empty()).unwrap();
//! let response = app.oneshot(anonymous).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert!(response.headers().contains_key("www-authenticate"));
//! # }
//! ```
//!
//! # Features
//!
//! - `metrics`: the counter `palisade_apikey_requests_total`, labelled by `outcome`
//!   (`accepted`, `missing`, `several`, `malformed_header`, `oversized`, `malformed`, `unknown`,
//!   `disabled`, `expired`), and `palisade_apikey_reloads_total`, labelled by `outcome`
//!   (`reloaded`, `failed`, `refused_no_usable_key`), and the gauge `palisade_apikey_keys`
//!   (the keys of the set in force).
//! - `serde`: [`ApiKeyConfig`], the layer's settings from a configuration
//!   file.

#[cfg(feature = "serde")]
mod config;
mod digest;
mod extract;
pub mod format;
pub mod keyset;
mod service;
mod store;

#[cfg(feature = "serde")]
pub use config::ApiKeyConfig;
pub use digest::{InvalidDigest, KeyDigest};
pub use extract::{KeySources, MAX_KEY_LEN};
pub use keyset::{KeyEntry, KeySet, KeySetError};
// Documented once, in palisade-core (and at the facade's root).
#[doc(hidden)]
pub use palisade_core::BuildError;
#[doc(hidden)]
pub use palisade_core::{RequireScopesLayer, require_scopes};
pub use service::{ApiKey, ApiKeyBuilder, ApiKeyLayer};
pub use store::{KeyStore, LoadError};

#[doc(hidden)]
pub mod __fuzz {
    //! Harnesses for the cargo-fuzz targets in `fuzz/`. Not part of the public API.
    pub use crate::extract::fuzz_extract as extract;
    pub use crate::keyset::fuzz_parse as keyset;

    /// Key-format checking: never panics, and accepts only what the format documents.
    pub fn key_format(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if crate::format::KeyFormat::default().check(text).is_ok() {
            let (rest, check) = text.rsplit_once('_').expect("a checked key has separators");
            let (prefix, random) = rest.rsplit_once('_').expect("a checked key has a prefix");
            assert_eq!(check.len(), crate::format::CHECK_LEN);
            assert_eq!(random.len(), crate::format::RANDOM_LEN);
            let random: [u8; crate::format::RANDOM_LEN] =
                random.as_bytes().try_into().expect("length checked");
            assert_eq!(
                crate::format::from_parts(prefix, &random).as_deref(),
                Ok(text),
                "an accepted key is exactly the key its parts make"
            );
        }
    }
}
