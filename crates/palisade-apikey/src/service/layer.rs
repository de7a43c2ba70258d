use std::fmt;
use std::sync::Arc;

use http::StatusCode;
use http::header::{HeaderValue, WWW_AUTHENTICATE};
use palisade_core::problem::types;
use palisade_core::{BuildError, Problem, Rejection};
use tower_layer::Layer;

use super::{ApiKey, Reason, Shared};
use crate::extract::{MAX_KEY_LEN, is_query_name};
use crate::format::KeyFormat;
use crate::{KeySources, KeyStore};

/// Authenticates requests by API key: a `401` problem for a missing, malformed or unknown key,
/// the caller's [`Identity`](palisade_core::Identity) for a good one. Build it with
/// [`ApiKeyLayer::new`] or [`ApiKeyLayer::builder`].
#[derive(Clone)]
pub struct ApiKeyLayer {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for ApiKeyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyLayer")
            .field("store", &self.shared.store)
            .field("sources", &self.shared.sources)
            .finish_non_exhaustive()
    }
}

impl ApiKeyLayer {
    /// Authenticates against `store`, reading `Authorization: Bearer` and `X-API-Key`,
    /// accepting only Palisade-format keys.
    pub fn new(store: KeyStore) -> Self {
        // The default settings need no checking.
        Self::builder(store).finish()
    }

    /// A builder for the other settings.
    pub fn builder(store: KeyStore) -> ApiKeyBuilder {
        ApiKeyBuilder {
            store,
            sources: KeySources::default(),
            format: KeyFormat::default(),
            legacy: false,
            realm: "api".to_owned(),
            reveal_refusals: false,
        }
    }

    /// The live key store.
    pub fn store(&self) -> &KeyStore {
        &self.shared.store
    }

    /// Where keys are read from.
    pub fn sources(&self) -> &KeySources {
        &self.shared.sources
    }

    /// The key format accepted.
    pub fn format(&self) -> &KeyFormat {
        &self.shared.format
    }

    /// What the layer's service does with `request`, on an inner service the caller holds and
    /// has made ready: for combinators (`palisade::AnyCredential`) that route a request to one
    /// of several layers without a service per layer. Not a stable API.
    #[doc(hidden)]
    pub fn __call_with<S, ReqBody, ResBody>(
        &self,
        inner: &mut S,
        request: http::Request<ReqBody>,
    ) -> palisade_core::ResponseFuture<S::Future>
    where
        S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    {
        super::call_with(&self.shared, inner, request)
    }
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = ApiKey<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiKey {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Builds an [`ApiKeyLayer`]; [`build`](Self::build) checks the settings once.
#[derive(Debug, Clone)]
#[must_use]
pub struct ApiKeyBuilder {
    store: KeyStore,
    sources: KeySources,
    format: KeyFormat,
    legacy: bool,
    realm: String,
    reveal_refusals: bool,
}

impl ApiKeyBuilder {
    /// Where keys are read from.
    pub fn sources(mut self, sources: KeySources) -> Self {
        self.sources = sources;
        self
    }

    /// Which key prefixes are accepted (default: any well-formed prefix with a valid checksum).
    pub fn format(mut self, format: KeyFormat) -> Self {
        self.format = format;
        self
    }

    /// Also accepts opaque keys that are not in Palisade's format (default: no). They are
    /// looked up by digest like any other key; only the early checksum rejection is lost.
    pub fn accept_legacy_keys(mut self, accept: bool) -> Self {
        self.legacy = accept;
        self
    }

    /// Whether a disabled or expired key is told so in the response (default: no).
    ///
    /// By default a disabled or expired key gets the same `401` as a key that never existed, so
    /// whoever holds a leaked, revoked key cannot learn it was once valid; the precise reason
    /// still reaches the logs (`debug`) and the `palisade_apikey_rejected_total` metric. Turn
    /// this on for internal services whose callers are better helped by "expired".
    pub fn reveal_refusals(mut self, reveal: bool) -> Self {
        self.reveal_refusals = reveal;
        self
    }

    /// The realm named in `WWW-Authenticate` (default: `api`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Checks the settings and builds the layer.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming `sources` when no place to read a key from is enabled or the query
    /// parameter name is not a plain name, or `realm`
    /// when it is empty or not plain visible ASCII without quotes or backslashes.
    pub fn build(self) -> Result<ApiKeyLayer, BuildError> {
        if !self.sources.bearer()
            && self.sources.header().is_none()
            && self.sources.query_parameter().is_none()
        {
            return Err(BuildError::new(
                "sources",
                "no place to read a key from is enabled",
            ));
        }
        if let Some(name) = self.sources.query_parameter()
            && !is_query_name(name)
        {
            return Err(BuildError::new(
                "sources",
                "the query parameter name must be visible ASCII without & = # % +",
            ));
        }
        BuildError::check_realm(&self.realm)?;
        Ok(self.finish())
    }

    fn finish(self) -> ApiKeyLayer {
        let rejections = Reason::ALL.map(|reason| self.rejection(reason));
        ApiKeyLayer {
            shared: Arc::new(Shared {
                store: self.store,
                sources: self.sources,
                format: self.format,
                legacy: self.legacy,
                rejections,
            }),
        }
    }

    fn rejection(&self, reason: Reason) -> Rejection {
        let where_to = match (self.sources.bearer(), self.sources.header()) {
            (true, Some(header)) => format!("`Authorization: Bearer <key>` or `{header}: <key>`"),
            (true, None) => "`Authorization: Bearer <key>`".to_owned(),
            (false, Some(header)) => format!("`{header}: <key>`"),
            (false, None) => "the query string".to_owned(),
        };
        let (title, detail) = match reason {
            Reason::Missing => ("API key required", format!("send an API key in {where_to}")),
            Reason::Several => (
                "Several API keys",
                "send exactly one API key; this request carried more than one".to_owned(),
            ),
            Reason::MalformedHeader => (
                "Malformed API key header",
                format!("the key must be a single token in {where_to}"),
            ),
            Reason::Oversized => (
                "API key too long",
                format!("an API key is at most {MAX_KEY_LEN} bytes"),
            ),
            Reason::Malformed => (
                "Malformed API key",
                "the API key is not well-formed or its checksum does not match; check it was copied whole"
                    .to_owned(),
            ),
            Reason::Unknown => ("Invalid API key", "the API key is not recognised".to_owned()),
            Reason::Disabled | Reason::Expired if !self.reveal_refusals => {
                ("Invalid API key", "the API key is not recognised".to_owned())
            }
            Reason::Disabled => ("API key disabled", "the API key has been disabled".to_owned()),
            Reason::Expired => ("API key expired", "the API key has expired".to_owned()),
        };
        // RFC 6750, section 3.1: more than one credential is `invalid_request`, answered 400.
        let (status, type_uri) = if reason == Reason::Several {
            (StatusCode::BAD_REQUEST, types::AMBIGUOUS_CREDENTIALS)
        } else {
            (StatusCode::UNAUTHORIZED, types::UNAUTHENTICATED)
        };
        let problem = Problem::new(status)
            .with_type(type_uri)
            .with_title(title)
            .with_detail(detail);
        // RFC 6750 section 3: no error code when no credentials were sent.
        let error = match reason {
            Reason::Missing => "",
            Reason::Several => ", error=\"invalid_request\"",
            _ => ", error=\"invalid_token\"",
        };
        let challenge = if self.sources.bearer() {
            format!("Bearer realm=\"{}\"{error}", self.realm)
        } else {
            let header = self
                .sources
                .header()
                .map_or_else(String::new, |h| format!(", header=\"{h}\""));
            format!("ApiKey realm=\"{}\"{header}{error}", self.realm)
        };
        let challenge =
            HeaderValue::try_from(challenge).unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
        Rejection::new(&problem).with_header(WWW_AUTHENTICATE, challenge)
    }
}
