//! The API-key service.

mod layer;

use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{Request, Response};
use palisade_core::{Identity, Protocol, Rejection, ResponseBody, ResponseFuture};
use tower_service::Service;

pub use self::layer::{ApiKeyBuilder, ApiKeyLayer};
use crate::extract::{ExtractError, without_query_parameter};
use crate::format::{FormatError, KeyFormat};
use crate::keyset::Refusal;
use crate::{KeyDigest, KeySet, KeySources, KeyStore};

/// Why a request was refused; one problem response each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Missing,
    Several,
    MalformedHeader,
    Oversized,
    Malformed,
    Unknown,
    Disabled,
    Expired,
}

impl Reason {
    const ALL: [Self; 8] = [
        Self::Missing,
        Self::Several,
        Self::MalformedHeader,
        Self::Oversized,
        Self::Malformed,
        Self::Unknown,
        Self::Disabled,
        Self::Expired,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Several => "several",
            Self::MalformedHeader => "malformed_header",
            Self::Oversized => "oversized",
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
        }
    }
}

pub(crate) struct Shared {
    pub(crate) store: KeyStore,
    pub(crate) sources: KeySources,
    pub(crate) format: KeyFormat,
    pub(crate) legacy: bool,
    /// Indexed by `Reason as usize`, rendered once.
    pub(crate) rejections: [Rejection; 8],
}

impl Shared {
    /// The whole decision, apart from the service plumbing.
    fn authenticate(&self, headers: &http::HeaderMap, uri: &http::Uri) -> Result<Identity, Reason> {
        let key = match self.sources.extract(headers, uri) {
            Ok(Some(key)) => key,
            Ok(None) => return Err(Reason::Missing),
            Err(ExtractError::Several) => return Err(Reason::Several),
            Err(ExtractError::MalformedHeader) => return Err(Reason::MalformedHeader),
            Err(ExtractError::Oversized) => return Err(Reason::Oversized),
        };
        verify(
            &self.format,
            self.legacy,
            &self.store.load(),
            &key,
            SystemTime::now,
        )
        .cloned()
    }
}

/// Checks `key` against `keys`: format first (no lookup for a mistyped key), then the digest,
/// then the entry's enabled flag and expiry.
pub(crate) fn verify<'k>(
    format: &KeyFormat,
    legacy: bool,
    keys: &'k KeySet,
    key: &str,
    now: impl FnOnce() -> SystemTime,
) -> Result<&'k Identity, Reason> {
    match format.check(key) {
        Ok(()) => {}
        Err(FormatError::Shape) if legacy => {}
        Err(_) => return Err(Reason::Malformed),
    }
    let Some(entry) = keys.find(&KeyDigest::of(key)) else {
        return Err(Reason::Unknown);
    };
    match entry.usable(now) {
        Ok(()) => Ok(entry.identity()),
        Err(refusal) => {
            tracing::debug!(
                key_id = entry.key_id(),
                principal = entry.principal(),
                ?refusal,
                "API key refused"
            );
            Err(match refusal {
                Refusal::Disabled => Reason::Disabled,
                Refusal::Expired => Reason::Expired,
            })
        }
    }
}

/// Authenticates each request by API key; see [`ApiKeyLayer`].
#[derive(Clone)]
pub struct ApiKey<S> {
    inner: S,
    shared: std::sync::Arc<Shared>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for ApiKey<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("inner", &self.inner)
            .field("store", &self.shared.store)
            .finish_non_exhaustive()
    }
}

impl<S> ApiKey<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ApiKey<S>
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
        call_with(&self.shared, &mut self.inner, request)
    }
}

/// The service's call with its state and inner service apart: what [`ApiKey::call`] does, and
/// what `ApiKeyLayer::__call_with` offers combinators that hold the inner service themselves.
pub(crate) fn call_with<S, ReqBody, ResBody>(
    shared: &Shared,
    inner: &mut S,
    mut request: Request<ReqBody>,
) -> ResponseFuture<S::Future>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    {
        match shared.authenticate(request.headers(), request.uri()) {
            Ok(identity) => {
                tracing::trace!(
                    principal = identity.subject(),
                    key_id = identity.key_id(),
                    "API key accepted"
                );
                #[cfg(feature = "metrics")]
                metrics::counter!("palisade_apikey_requests_total", "outcome" => "accepted")
                    .increment(1);
                request.extensions_mut().insert(identity);
                if let Some(name) = shared.sources.query_parameter() {
                    // Handlers and inner layers never see a key sent in the URL.
                    if let Some(uri) = without_query_parameter(request.uri(), name) {
                        *request.uri_mut() = uri;
                    }
                }
                ResponseFuture::inner(inner.call(request))
            }
            Err(reason) => {
                tracing::debug!(reason = reason.label(), "request refused: API key");
                #[cfg(feature = "metrics")]
                palisade_core::__count_labelled!(
                    "palisade_apikey_requests_total",
                    "outcome",
                    reason.label(),
                    [
                        "missing",
                        "several",
                        "malformed_header",
                        "oversized",
                        "malformed",
                        "unknown",
                        "disabled",
                        "expired",
                    ]
                );
                ResponseFuture::rejected(
                    shared.rejections[reason as usize].clone(),
                    Protocol::of(request.headers()),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyEntry;
    use crate::format::generate;

    #[test]
    #[allow(clippy::type_complexity, reason = "a table of cases")]
    fn verify_table() {
        let ours = generate("pal_live").unwrap();
        let test_key = generate("pal_test").unwrap();
        let legacy = "0123456789abcdef-legacy";
        let keys = KeySet::from_entries([
            KeyEntry::new(KeyDigest::of(&ours), "a").unwrap(),
            KeyEntry::new(KeyDigest::of(&test_key), "b").unwrap(),
            KeyEntry::new(KeyDigest::of(legacy), "c").unwrap(),
        ])
        .unwrap();
        let any = KeyFormat::default();
        let live_only = KeyFormat::with_prefixes(["pal_live"]).unwrap();
        let mut typo = ours.clone().into_bytes();
        // Another alphanumeric character: the shape holds, the checksum breaks.
        typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        let cases: [(&str, &KeyFormat, bool, &str, Result<&str, Reason>); 8] = [
            ("our key", &any, false, &ours, Ok("a")),
            ("test key, any prefix", &any, false, &test_key, Ok("b")),
            (
                "test key, live only",
                &live_only,
                false,
                &test_key,
                Err(Reason::Malformed),
            ),
            (
                "legacy key refused by default",
                &any,
                false,
                legacy,
                Err(Reason::Malformed),
            ),
            (
                "legacy key accepted when enabled",
                &any,
                true,
                legacy,
                Ok("c"),
            ),
            (
                "unknown legacy key",
                &any,
                true,
                "not-a-stored-key",
                Err(Reason::Unknown),
            ),
            (
                "typo is malformed even with legacy on",
                &any,
                true,
                &typo,
                Err(Reason::Malformed),
            ),
            (
                "unknown well-formed key",
                &any,
                false,
                &generate("pal_live").unwrap(),
                Err(Reason::Unknown),
            ),
        ];
        for (name, format, legacy_on, key, expected) in cases {
            let got = verify(format, legacy_on, &keys, key, SystemTime::now).map(Identity::subject);
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn builder_errors_name_the_setting() {
        let store = KeyStore::new(KeySet::new());
        let none = KeySources::default().with_bearer(false).with_header(None);
        let err = ApiKeyLayer::builder(store.clone())
            .sources(none)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "sources");
        for realm in ["", "a\"b", "tab\there"] {
            let err = ApiKeyLayer::builder(store.clone())
                .realm(realm)
                .build()
                .unwrap_err();
            assert_eq!(err.field(), "realm", "{realm:?}");
        }
        assert!(
            ApiKeyLayer::builder(store)
                .realm("orders api")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn an_empty_query_parameter_name_is_refused() {
        let err = ApiKeyLayer::builder(KeyStore::new(KeySet::new()))
            .sources(KeySources::default().with_query_parameter(""))
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "sources");
    }

    #[test]
    fn challenge_without_bearer_names_the_header() {
        let layer = ApiKeyLayer::builder(KeyStore::new(KeySet::new()))
            .sources(KeySources::default().with_bearer(false))
            .build()
            .unwrap();
        let response: Response<ResponseBody<String>> =
            layer.shared.rejections[Reason::Missing as usize].to_response();
        assert_eq!(
            response.headers()["www-authenticate"],
            "ApiKey realm=\"api\", header=\"x-api-key\""
        );
    }
}
