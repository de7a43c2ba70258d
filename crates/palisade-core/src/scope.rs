//! Per-route scope requirements on the caller's [`Identity`].
//!
//! [`require_scopes`] builds a layer that lets a request through only when an authentication
//! layer (API key or JWT) put an [`Identity`] holding every listed scope into its extensions.
//! Without an identity the answer is `401`; with one that lacks a scope, `403` with the required
//! scopes in the `required_scopes` member of the problem body and, as RFC 6750 asks of bearer
//! tokens, `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`.
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use palisade::{require_scopes, Identity, IdentitySource};
//! use tower::{service_fn, Layer, ServiceExt};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//!
//! let handler = service_fn(|_req: Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(String::from("created")))
//! });
//! let service = require_scopes(["orders:write"]).layer(handler);
//!
//! let mut request = Request::new(());
//! request.extensions_mut().insert(
//!     Identity::new("shop", IdentitySource::ApiKey).with_scopes(["orders:read"]),
//! );
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! # }
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::problem::types;
use crate::{Identity, Problem, Protocol, Rejection, ResponseBody, ResponseFuture};

/// A layer that requires every scope in `scopes`. See the [module documentation](self).
pub fn require_scopes<I, S>(scopes: I) -> RequireScopesLayer
where
    I: IntoIterator<Item = S>,
    S: Into<Box<str>>,
{
    let scopes: Box<[Box<str>]> = scopes.into_iter().map(Into::into).collect();
    let listed: Vec<&str> = scopes.iter().map(AsRef::as_ref).collect();
    // RFC 6750, section 3.1: the scope the route needs, for clients that can ask for it.
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{}\"",
        listed.join(" ")
    );
    let challenge = HeaderValue::try_from(challenge).unwrap_or(HeaderValue::from_static(
        "Bearer error=\"insufficient_scope\"",
    ));
    let forbidden = Rejection::new(
        &Problem::new(StatusCode::FORBIDDEN)
            .with_type(types::FORBIDDEN)
            .with_title("Missing scope")
            .with_detail("the credential does not grant every scope this route requires")
            .with_extension("error", "insufficient_scope")
            .with_extension("required_scopes", listed),
    )
    .with_header(WWW_AUTHENTICATE, challenge);
    let unauthenticated = Rejection::new(
        &Problem::new(StatusCode::UNAUTHORIZED)
            .with_type(types::UNAUTHENTICATED)
            .with_title("Authentication required")
            .with_detail("this route requires an authenticated caller"),
    )
    .with_header(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    RequireScopesLayer {
        shared: Arc::new(Shared {
            scopes,
            forbidden,
            unauthenticated,
            #[cfg(feature = "metrics")]
            requests: crate::__metrics::Outcomes::new(
                "palisade_scope_requests_total",
                [],
                ["allowed", "forbidden", "unauthenticated"],
            ),
        }),
    }
}

/// Requires scopes on the caller's [`Identity`]; built by [`require_scopes`].
#[derive(Debug, Clone)]
pub struct RequireScopesLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    scopes: Box<[Box<str>]>,
    forbidden: Rejection,
    unauthenticated: Rejection,
    /// `palisade_scope_requests_total{outcome}`: `allowed`, `forbidden`, `unauthenticated`.
    #[cfg(feature = "metrics")]
    requests: crate::__metrics::Outcomes<3>,
}

impl RequireScopesLayer {
    /// The required scopes.
    pub fn scopes(&self) -> impl ExactSizeIterator<Item = &str> {
        self.shared.scopes.iter().map(AsRef::as_ref)
    }
}

impl<S> Layer<S> for RequireScopesLayer {
    type Service = RequireScopes<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopes {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`RequireScopesLayer`].
#[derive(Debug, Clone)]
pub struct RequireScopes<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> RequireScopes<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScopes<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match request.extensions().get::<Identity>() {
            None => {
                tracing::debug!("scope check: no identity on the request");
                #[cfg(feature = "metrics")]
                self.shared.requests.increment(2);
                ResponseFuture::rejected(
                    self.shared.unauthenticated.clone(),
                    Protocol::of(request.headers()),
                )
            }
            Some(identity)
                if !self
                    .shared
                    .scopes
                    .iter()
                    .all(|scope| identity.has_scope(scope)) =>
            {
                tracing::debug!(
                    subject = identity.subject(),
                    key_id = identity.key_id(),
                    "scope check: a required scope is missing"
                );
                #[cfg(feature = "metrics")]
                self.shared.requests.increment(1);
                ResponseFuture::rejected(
                    self.shared.forbidden.clone(),
                    Protocol::of(request.headers()),
                )
            }
            Some(_) => {
                #[cfg(feature = "metrics")]
                self.shared.requests.increment(0);
                ResponseFuture::inner(self.inner.call(request))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::IdentitySource;

    async fn run(identity: Option<Identity>, scopes: &[&str]) -> (StatusCode, serde_json::Value) {
        let handler = service_fn(|_req: Request<()>| async {
            Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(
                bytes::Bytes::from_static(b"{\"ok\":true}"),
            )))
        });
        let service = require_scopes(scopes.iter().copied()).layer(handler);
        let mut request = Request::new(());
        if let Some(identity) = identity {
            request.extensions_mut().insert(identity);
        }
        let response = service.oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn scope_table() {
        let holder = || {
            Some(
                Identity::new("shop", IdentitySource::ApiKey)
                    .with_scopes(["orders:read", "orders:write"]),
            )
        };
        let cases: [(&str, Option<Identity>, &[&str], StatusCode); 5] = [
            (
                "holds the one scope",
                holder(),
                &["orders:write"],
                StatusCode::OK,
            ),
            (
                "holds both scopes",
                holder(),
                &["orders:read", "orders:write"],
                StatusCode::OK,
            ),
            ("no scope required", holder(), &[], StatusCode::OK),
            (
                "lacks one of two",
                holder(),
                &["orders:write", "admin"],
                StatusCode::FORBIDDEN,
            ),
            (
                "no identity",
                None,
                &["orders:write"],
                StatusCode::UNAUTHORIZED,
            ),
        ];
        for (name, identity, scopes, expected) in cases {
            let (status, body) = run(identity, scopes).await;
            assert_eq!(status, expected, "{name}");
            if status == StatusCode::FORBIDDEN {
                assert_eq!(body["required_scopes"], serde_json::json!(scopes), "{name}");
            }
        }
    }

    #[tokio::test]
    async fn a_scope_is_matched_whole_not_by_prefix() {
        let identity = Identity::new("shop", IdentitySource::Jwt).with_scopes(["orders"]);
        let (status, _) = run(Some(identity), &["orders:write"]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
