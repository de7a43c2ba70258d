//! axum extractors (feature `axum`): `Claims<T>` from a request the [`JwtLayer`] accepted.
//!
//! [`JwtLayer`]: crate::JwtLayer
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::request::Parts;
use palisade_core::Problem;
use palisade_core::problem::types;

use crate::claims::Claims;

/// The extractor's refusal: `401` when the request carries no verified claims (an optional
/// route reached without a token, or a handler outside the layer).
#[derive(Debug, Clone, Copy)]
pub struct MissingClaims;

impl IntoResponse for MissingClaims {
    fn into_response(self) -> Response {
        let mut response = Problem::new(StatusCode::UNAUTHORIZED)
            .with_type(types::UNAUTHENTICATED)
            .with_title("Authentication required")
            .with_detail("a bearer token is required")
            .with_extension("reason", "missing")
            .into_response_with(axum::body::Body::from);
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

impl<S, T> FromRequestParts<S> for Claims<T>
where
    S: Send + Sync,
    T: Send + Sync + 'static,
{
    type Rejection = MissingClaims;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or(MissingClaims)
    }
}

impl<S, T> OptionalFromRequestParts<S> for Claims<T>
where
    S: Send + Sync,
    T: Send + Sync + 'static,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().cloned())
    }
}
