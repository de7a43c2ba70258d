//! JWT and JWKS authentication for tower services.
//!
//! ```
//! use std::time::Duration;
//!
//! use axum::{Extension, Router, routing::get};
//! use palisade::Identity;
//! use palisade::jwt::{JwksSource, JwtLayer, Rules};
//!
//! # fn main() -> Result<(), palisade::BuildError> {
//! // Keys from the identity provider, found through OIDC discovery, cached and refreshed.
//! let keys = JwksSource::oidc("https://login.example.com/tenant").build()?;
//! let jwt = JwtLayer::builder()
//!     .keys(
//!         keys,
//!         Rules::new()
//!             .with_issuer("https://login.example.com/tenant")
//!             .with_audiences(["https://api.example.com"])
//!             .with_leeway(Duration::from_secs(30)),
//!     )
//!     .build()?;
//!
//! let app: Router = Router::new()
//!     .route(
//!         "/me",
//!         get(|Extension(who): Extension<Identity>| async move { who.subject().to_owned() }),
//!     )
//!     .layer(jwt);
//! # Ok(()) }
//! ```
//!
//! A token is read from `Authorization: Bearer` (optionally a cookie or another header,
//! [`TokenSources`]), checked, and the request reaches the inner service with its [`Claims`]
//! and an [`Identity`](palisade_core::Identity) (subject from `sub`, scopes from `scope` /
//! `scp` or claims you name, [`IdentityClaims`]) in its extensions; per-route scopes then use
//! `palisade::require_scopes` (`403` with `WWW-Authenticate: Bearer
//! error="insufficient_scope"`). Anything else is `401` with `WWW-Authenticate: Bearer
//! error="invalid_token"` (RFC 6750) and a problem body naming the failed check in general
//! words ([`TokenReason`]), never the token or key material; gRPC callers get `UNAUTHENTICATED`.
//!
//! # What is checked (RFC 7515, RFC 7519, RFC 8725)
//!
//! - **Before decoding**: the token's length ([`DEFAULT_MAX_TOKEN_LEN`], 8 KiB).
//! - **Structure**: three parts, unpadded canonical base64url, a JSON header naming each
//!   member once.
//! - **Algorithm**: pinned by the key, never chosen by the token: each [`JwtKey`] verifies one
//!   [`Alg`] (from configuration, or a JWK's `alg`, `kty` and `crv`), and a token is only
//!   checked with keys of its `alg`. `none` is not an algorithm here; an RSA public key can
//!   never be used as an HMAC secret. JWK `use` and `key_ops` are respected.
//! - **Header**: `crit` is refused (no extension is implemented), `cty: JWT` (nesting) is
//!   refused, `jku`, `x5u`, `jwk` and `x5c` are never fetched or trusted; `typ` must match
//!   when configured ([`Rules::with_types`], e.g. `at+jwt`).
//! - **Claims** ([`Rules`]): `exp` required by default; `nbf` and `iat` not in the future;
//!   leeway; `iss` exact and `aud` (any of) required whenever configured, and a token with
//!   `aud` refused when no audience is configured.
//! - **Several issuers**: [`JwtLayerBuilder::issuer`] — the unverified `iss` picks the issuer,
//!   whose keys and rules alone then apply.
//!
//! # Keys
//!
//! Static keys ([`JwtKey::from_pem`], [`JwtKey::from_der`], [`JwtKey::from_jwk`],
//! [`JwtKeySet::from_jwks`], [`JwtKey::hmac`]) or a [`JwksSource`]: a JWKS URL or OIDC discovery,
//! cached within `Cache-Control` bounds and refreshed in the background; an unknown `kid`
//! causes at most one fetch per cooldown, shared by all concurrent requests, and no request
//! waits behind a cooling-down fetch; when the endpoint fails, the last good keys serve for a
//! bounded stale window, then verification fails closed (`503`). See [`jwks`].
//!
//! # Verified-token cache
//!
//! A repeated token skips the signature check: entries are keyed by the SHA-256 of the whole
//! token, bounded, expire no later than the token, and are used only while the key that
//! verified them is still in its issuer's set ([`JwtLayerBuilder::cache_capacity`]).
//!
//! # Features
//!
//! `aws-lc-rs` (default) or `rust-crypto` chooses the crypto backend (installed explicitly,
//! so enabling both is not a runtime panic: aws-lc-rs wins); `https` (default) gives the
//! JWKS client TLS; `axum` makes [`Claims`] an extractor; `serde` as in every Palisade crate.
//!
//! # Metrics (feature `metrics`)
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `palisade_jwt_requests_total{outcome}` | counter | `accepted`, `anonymous` (no token, optional layer), or the refusal's reason (`expired`, `bad_signature`, `unknown_key`, ...: [`TokenReason`]'s labels) |
//! | `palisade_jwt_verify_seconds` | histogram | one signature and claims check (cache hits skip it) |
//! | `palisade_jwt_cache_total{outcome}` | counter | verified-token cache `hit` or `miss` |
//! | `palisade_jwt_jwks_fetches_total{trigger,outcome}` | counter | JWKS fetches: `trigger` `load`, `no_keys`, `unknown_kid`, `expired`, `refresh`; `outcome` `ok`, `error`, `cooling_down` |
//! | `palisade_jwt_jwks_fetch_seconds{outcome}` | histogram | one JWKS fetch (after discovery when it ran), in the span `palisade.jwt.jwks_fetch` |

mod backend;
mod cache;
pub mod claims;
#[cfg(feature = "serde")]
mod config;
pub mod error;
pub mod jwks;
pub mod key;
mod layer;
pub mod rules;
mod sources;
pub mod token;
mod verify;

pub mod alg;

#[cfg(feature = "axum")]
pub mod extract;

#[cfg(feature = "__fuzz")]
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;

pub use crate::alg::{Alg, KeyKind, UnsupportedAlg};
pub use crate::backend::{ensure as install_backend, name as backend_name};
pub use crate::cache::MAX_TTL as CACHE_MAX_TTL;
pub use crate::claims::{Claims, ClaimsMap, Registered};
#[cfg(feature = "serde")]
pub use crate::config::JwtConfig;
pub use crate::error::{TokenError, TokenReason};
pub use crate::jwks::{JwksError, JwksPolicy, JwksSource, JwksSourceBuilder};
pub use crate::key::{JwkOptions, JwtKey, JwtKeySet, KeyError};
pub use crate::layer::{
    Jwt, JwtLayer, JwtLayerBuilder, KEYS_UNAVAILABLE_RETRY_AFTER, KeySource, ResponseFuture,
};
pub use crate::rules::Rules;
pub use crate::sources::TokenSources;
pub use crate::token::{DEFAULT_MAX_TOKEN_LEN, Header};
pub use crate::verify::{IdentityClaims, Verified, Verifier};
