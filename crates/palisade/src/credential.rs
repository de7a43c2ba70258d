//! Either credential (features `apikey` and `jwt`): one layer that sends each request to the
//! API-key layer or the JWT layer, by what it carries.
//!
//! A request goes to the API-key layer when it carries an API key: the key header (`X-API-Key`
//! by default), the key query parameter if the API-key layer reads one, or an
//! `Authorization: Bearer` value shaped like a Palisade key (`<prefix>_<random>_<check>`,
//! whatever its checksum: a mistyped key is told so by the API-key layer). It goes to the JWT
//! layer when it carries a token: any other bearer value, or a token where the JWT layer's
//! [`TokenSources`](crate::jwt::TokenSources) also look (its header or cookie); the JWT layer
//! refuses it unless it is a valid token. A request with both an API key and a token gets
//! `400` (`invalid_request`, RFC 6750 section 3.1: send one credential), one with neither a
//! `401` naming both, with `WWW-Authenticate: Bearer`. Both layers' refusals are problem
//! responses of the same type (`UNAUTHENTICATED`) with a Bearer challenge, so a client sees
//! one consistent 401 whichever it sent. Each layer sets the request's
//! [`Identity`](crate::Identity), with its source (`ApiKey` or `Jwt`).
//!
//! ```
//! use axum::{Extension, Router, routing::get};
//! use palisade::apikey::{ApiKeyLayer, KeySet, KeyStore};
//! use palisade::jwt::{Alg, JwtKey, JwtKeySet, JwtLayer, Rules};
//! use palisade::{AnyCredentialLayer, Identity};
//!
//! # fn main() -> Result<(), palisade::BuildError> {
//! let keys = KeyStore::new(KeySet::default());
//! let secret = b"a 32-byte secret for HS256 tests";
//! let jwt = JwtLayer::builder()
//!     .keys(JwtKeySet::new([JwtKey::hmac(Alg::HS256, secret).unwrap()]), Rules::new())
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/me", get(|Extension(who): Extension<Identity>| async move {
//!         who.subject().to_owned()
//!     }))
//!     .layer(AnyCredentialLayer::new(ApiKeyLayer::new(keys), jwt));
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use palisade_apikey::ApiKeyLayer;
use palisade_apikey::format::FormatError;
use palisade_core::problem::types;
use palisade_core::{Problem, Protocol, Rejection, ResponseBody};
use palisade_jwt::{ClaimsMap, JwtLayer};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// Sends each request to an API-key or a JWT layer; see the [module documentation](self).
pub struct AnyCredentialLayer<T = ClaimsMap> {
    apikey: ApiKeyLayer,
    jwt: JwtLayer<T>,
    missing: Rejection,
    both: Rejection,
}

impl<T> Clone for AnyCredentialLayer<T> {
    fn clone(&self) -> Self {
        Self {
            apikey: self.apikey.clone(),
            jwt: self.jwt.clone(),
            missing: self.missing.clone(),
            both: self.both.clone(),
        }
    }
}

impl<T> fmt::Debug for AnyCredentialLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyCredentialLayer")
            .field("apikey", &self.apikey)
            .field("jwt", &self.jwt)
            .finish_non_exhaustive()
    }
}

impl<T> AnyCredentialLayer<T> {
    /// API keys by `apikey`, everything else by `jwt`.
    pub fn new(apikey: ApiKeyLayer, jwt: JwtLayer<T>) -> Self {
        let header = apikey
            .sources()
            .header()
            .map_or_else(String::new, |h| format!(" or `{h}: <key>`"));
        let problem = Problem::new(StatusCode::UNAUTHORIZED)
            .with_type(types::UNAUTHENTICATED)
            .with_title("Authentication required")
            .with_detail(format!(
                "send a bearer token or an API key in `Authorization: Bearer <credential>`{header}"
            ))
            .with_extension("reason", "missing");
        let missing = Rejection::new(&problem).with_header(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"api\""),
        );
        let both = Rejection::new(
            &Problem::new(StatusCode::BAD_REQUEST)
                .with_type(types::AMBIGUOUS_CREDENTIALS)
                .with_title("Several credentials")
                .with_detail("send an API key or a bearer token, not both")
                .with_extension("reason", "several"),
        )
        .with_header(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"api\", error=\"invalid_request\""),
        );
        Self {
            apikey,
            jwt,
            missing,
            both,
        }
    }
}

impl<S, T> Layer<S> for AnyCredentialLayer<T> {
    type Service = AnyCredential<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        AnyCredential {
            inner,
            layer: Arc::new(self.clone()),
        }
    }
}

/// The service of [`AnyCredentialLayer`]. A clone is the inner service's clone and one reference
/// count; each request is decided by the API-key or the JWT layer and handed to the inner
/// service made ready for it.
pub struct AnyCredential<S, T = ClaimsMap> {
    inner: S,
    layer: Arc<AnyCredentialLayer<T>>,
}

impl<S: Clone, T> Clone for AnyCredential<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: Arc::clone(&self.layer),
        }
    }
}

impl<S: fmt::Debug, T> fmt::Debug for AnyCredential<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyCredential")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

/// Which layer a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    ApiKey,
    Jwt,
    Neither,
    Both,
}

impl<T> AnyCredentialLayer<T> {
    fn route<B>(&self, request: &Request<B>) -> Route {
        let headers = request.headers();
        let sources = self.apikey.sources();
        let mut key = sources
            .header()
            .is_some_and(|name| headers.contains_key(name))
            || sources
                .query_parameter()
                .is_some_and(|name| has_query_parameter(request.uri(), name));
        let mut token = self.jwt.sources().holds_token_elsewhere(headers);
        for value in headers.get_all(AUTHORIZATION) {
            let Ok(value) = value.to_str() else {
                // Not text: the API-key layer says what is wrong with it.
                key = true;
                continue;
            };
            if let Some((scheme, rest)) = value.split_once(' ')
                && scheme.eq_ignore_ascii_case("bearer")
            {
                if matches!(
                    self.apikey.format().check(rest.trim()),
                    Err(FormatError::Shape)
                ) {
                    token = true;
                } else {
                    key = true;
                }
            }
        }
        match (key, token) {
            (true, true) => Route::Both,
            (true, false) => Route::ApiKey,
            (false, true) => Route::Jwt,
            (false, false) => Route::Neither,
        }
    }
}

/// Whether `uri`'s query has a parameter named `name` (as written; the API-key layer decodes).
fn has_query_parameter(uri: &http::Uri, name: &str) -> bool {
    uri.query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair.split_once('=').map_or(pair, |(n, _)| n) == name)
    })
}

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for AnyCredential<S, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    T: serde::de::DeserializeOwned + Send + Sync + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = CredentialFuture<
        palisade_core::ResponseFuture<S::Future>,
        palisade_jwt::ResponseFuture<S, ReqBody, T>,
        ResBody,
    >;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The API-key and JWT services are ready when their inner service is.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let future = match self.layer.route(&request) {
            // The inner service made ready by `poll_ready` is the one called, through the
            // layer's own decision: no service per layer, no clone per request.
            Route::ApiKey => Either::ApiKey {
                future: self.layer.apikey.__call_with(&mut self.inner, request),
            },
            Route::Jwt => Either::Jwt {
                future: self.layer.jwt.__call_with(&mut self.inner, request),
            },
            Route::Neither => Either::Missing {
                response: Some(
                    self.layer
                        .missing
                        .to_response_for(Protocol::of(request.headers())),
                ),
            },
            Route::Both => Either::Missing {
                response: Some(
                    self.layer
                        .both
                        .to_response_for(Protocol::of(request.headers())),
                ),
            },
        };
        CredentialFuture { inner: future }
    }
}

pin_project! {
    /// The response future of [`AnyCredential`].
    pub struct CredentialFuture<A, J, B> {
        #[pin]
        inner: Either<A, J, B>,
    }
}

pin_project! {
    #[project = EitherProj]
    enum Either<A, J, B> {
        ApiKey { #[pin] future: A },
        Jwt { #[pin] future: J },
        Missing { response: Option<Response<ResponseBody<B>>> },
    }
}

impl<A, J, B> fmt::Debug for CredentialFuture<A, J, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialFuture").finish_non_exhaustive()
    }
}

impl<A, J, B, E> Future for CredentialFuture<A, J, B>
where
    A: Future<Output = Result<Response<ResponseBody<B>>, E>>,
    J: Future<Output = Result<Response<ResponseBody<B>>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.project() {
            EitherProj::ApiKey { future } => future.poll(cx),
            EitherProj::Jwt { future } => future.poll(cx),
            EitherProj::Missing { response } => Poll::Ready(Ok(response
                .take()
                .expect("CredentialFuture polled after completion"))),
        }
    }
}
