//! The JWKS fetcher: any tower `Service` from `Request<Full<Bytes>>` to `Response<B>`, so a
//! user can wrap it in Palisade's timeout, retry and breaker, or bring their own client.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL};
use http::{Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A document fetched: its body and the lifetime its `Cache-Control` grants.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub(crate) body: Bytes,
    pub(crate) lifetime: Option<Duration>,
}

/// Why a fetch failed. Messages are general: the URL is configuration, but a response body
/// is never repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// The request could not be made or the connection failed.
    Transport,
    /// The response status was not `200`.
    Status(u16),
    /// The document is larger than the configured cap.
    TooLarge,
    /// No answer within the fetch timeout.
    Timeout,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport => f.write_str("the request failed"),
            Self::Status(status) => write!(f, "the server answered {status}"),
            Self::TooLarge => f.write_str("the document is larger than the cap"),
            Self::Timeout => f.write_str("no answer within the fetch timeout"),
        }
    }
}

impl std::error::Error for FetchError {}

pub(crate) type FetchFuture = Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send>>;

/// A type-erased fetcher.
pub(crate) trait Fetch: Send + Sync + 'static {
    fn fetch(&self, uri: Uri, max_bytes: usize) -> FetchFuture;
}

/// Adapts a tower service.
pub(crate) struct ServiceFetch<S> {
    pub(crate) service: S,
}

impl<S, B> Fetch for ServiceFetch<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn fetch(&self, uri: Uri, max_bytes: usize) -> FetchFuture {
        let mut service = self.service.clone();
        Box::pin(async move {
            let request = Request::get(uri)
                .header(ACCEPT, "application/jwk-set+json, application/json")
                .body(Full::default())
                .map_err(|_| FetchError::Transport)?;
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(|_| FetchError::Transport)?;
            let response = service
                .call(request)
                .await
                .map_err(|_| FetchError::Transport)?;
            if response.status() != StatusCode::OK {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            let lifetime = response
                .headers()
                .get_all(CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(super::cache_control::lifetime);
            let body = Limited::new(response.into_body(), max_bytes)
                .collect()
                .await
                .map_err(|error| {
                    if error.is::<LengthLimitError>() {
                        FetchError::TooLarge
                    } else {
                        FetchError::Transport
                    }
                })?
                .to_bytes();
            Ok(Fetched { body, lifetime })
        })
    }
}

/// The default client: hyper-util over rustls (feature `https`), or plain HTTP for loopback
/// URLs without it.
#[cfg(feature = "https")]
pub(crate) fn default_client() -> Result<Box<dyn Fetch>, String> {
    #[cfg(feature = "aws-lc-rs")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
    let provider = rustls::crypto::ring::default_provider();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| format!("no TLS root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<Bytes>>(connector);
    Ok(Box::new(ServiceFetch { service: client }))
}

/// The default client without TLS: plain HTTP only.
#[cfg(not(feature = "https"))]
pub(crate) fn default_client() -> Result<Box<dyn Fetch>, String> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    Ok(Box::new(ServiceFetch { service: client }))
}
