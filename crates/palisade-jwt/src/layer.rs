//! The tower layer: a request with a valid token reaches the inner service with its
//! [`Claims`] and [`Identity`](palisade_core::Identity); any other gets `401`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use palisade_core::problem::types;
use palisade_core::{BuildError, Problem, Protocol, Rejection, ResponseBody};
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tower_layer::Layer;
use tower_service::Service;

use crate::cache::{self, TokenCache};
use crate::error::{TokenError, TokenReason};
use crate::jwks::JwksSource;
use crate::key::JwtKeySet;
use crate::rules::{Rules, unix_seconds};
use crate::sources::{ExtractError, TokenSources};
use crate::token::DEFAULT_MAX_TOKEN_LEN;
use crate::verify::{self, IdentityClaims, Verified};

/// Where an issuer's keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// Keys configured once.
    Static(Arc<JwtKeySet>),
    /// Keys fetched and refreshed.
    Jwks(JwksSource),
}

impl From<JwtKeySet> for KeySource {
    fn from(keys: JwtKeySet) -> Self {
        Self::Static(Arc::new(keys))
    }
}

impl From<JwksSource> for KeySource {
    fn from(source: JwksSource) -> Self {
        Self::Jwks(source)
    }
}

/// One issuer's keys and rules.
#[derive(Clone, Debug)]
struct Authority {
    keys: KeySource,
    rules: Rules,
}

/// The registered claims every rejection may name, for rejections rendered once.
const CLAIMS: [&str; 8] = ["exp", "nbf", "iat", "iss", "aud", "sub", "jti", "typ"];

/// Verifies bearer tokens: the request gets the token's [`Claims`](crate::Claims) and
/// [`Identity`](palisade_core::Identity), or a `401` problem naming the failed check. Build it
/// with [`JwtLayer::builder`].
pub struct JwtLayer<T = Map<String, Value>> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for JwtLayer<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for JwtLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtLayer")
            .field("authorities", &self.shared.authorities.len())
            .field("optional", &self.shared.optional)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Shared<T> {
    /// One, or several chosen by the unverified `iss`.
    authorities: Vec<Authority>,
    by_issuer: Option<HashMap<String, usize>>,
    sources: TokenSources,
    optional: bool,
    identity: IdentityClaims,
    max_len: usize,
    cache: Option<TokenCache<T>>,
    /// Indexed by `(reason, claim)`; see `rejection`.
    rejections: Vec<Rejection>,
}

impl<T> JwtLayer<T> {
    /// Where tokens are read from.
    pub fn sources(&self) -> &TokenSources {
        &self.shared.sources
    }
}

impl JwtLayer {
    /// A builder; give it keys (or a JWKS source) and rules.
    pub fn builder() -> JwtLayerBuilder {
        JwtLayerBuilder {
            authorities: Vec::new(),
            single: None,
            sources: TokenSources::default(),
            optional: false,
            identity: IdentityClaims::default(),
            max_len: DEFAULT_MAX_TOKEN_LEN,
            cache_capacity: 10_000,
            realm: "api".to_owned(),
            claims: PhantomData,
        }
    }
}

/// Builds a [`JwtLayer`].
#[must_use]
pub struct JwtLayerBuilder<T = Map<String, Value>> {
    authorities: Vec<(String, Authority)>,
    single: Option<Authority>,
    sources: TokenSources,
    optional: bool,
    identity: IdentityClaims,
    max_len: usize,
    cache_capacity: usize,
    realm: String,
    claims: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for JwtLayerBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtLayerBuilder")
            .field("issuers", &self.authorities.len())
            .field("optional", &self.optional)
            .finish_non_exhaustive()
    }
}

impl<T> JwtLayerBuilder<T> {
    /// The keys and rules for every token (one issuer, or issuer not distinguished).
    pub fn keys(mut self, keys: impl Into<KeySource>, rules: Rules) -> Self {
        self.single = Some(Authority {
            keys: keys.into(),
            rules,
        });
        self
    }

    /// Adds an issuer (multi-tenant): a token's unverified `iss` picks the issuer, and the
    /// token is then verified against that issuer's keys and rules only. `rules`' issuer is set
    /// to `issuer`. Tokens from issuers not added are refused.
    pub fn issuer(
        mut self,
        issuer: impl Into<String>,
        keys: impl Into<KeySource>,
        rules: Rules,
    ) -> Self {
        let issuer = issuer.into();
        let rules = rules.with_issuer(issuer.clone());
        self.authorities.push((
            issuer,
            Authority {
                keys: keys.into(),
                rules,
            },
        ));
        self
    }

    /// Where tokens are read from (default: `Authorization: Bearer`).
    pub fn sources(mut self, sources: TokenSources) -> Self {
        self.sources = sources;
        self
    }

    /// Optional authentication: a request without a token passes on as anonymous (no
    /// `Claims`, no `Identity`); a request with a bad token is still refused.
    pub fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }

    /// How the [`Identity`](palisade_core::Identity) is read from claims.
    pub fn identity_claims(mut self, identity: IdentityClaims) -> Self {
        self.identity = identity;
        self
    }

    /// The longest token accepted, in bytes (default 8 KiB), checked before any decoding.
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.max_len = bytes;
        self
    }

    /// How many verified tokens are remembered (default 10,000; 0 turns the cache off).
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// The realm in `WWW-Authenticate` (default `api`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Decodes the claims of accepted tokens into `U` as well (a token whose claims do not fit
    /// is refused), available as `Claims<U>`.
    pub fn claims<U>(self) -> JwtLayerBuilder<U> {
        JwtLayerBuilder {
            authorities: self.authorities,
            single: self.single,
            sources: self.sources,
            optional: self.optional,
            identity: self.identity,
            max_len: self.max_len,
            cache_capacity: self.cache_capacity,
            realm: self.realm,
            claims: PhantomData,
        }
    }

    /// Checks the settings and builds the layer.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for no keys, both [`keys`](Self::keys) and [`issuer`](Self::issuer), an
    /// issuer added twice, no token source, a zero token length, or a realm that is not plain
    /// visible ASCII.
    pub fn build(self) -> Result<JwtLayer<T>, BuildError> {
        let (authorities, by_issuer) = match (self.single, self.authorities.is_empty()) {
            (Some(_), false) => {
                return Err(BuildError::new(
                    "keys",
                    "use either keys (one issuer) or issuer (several), not both",
                ));
            }
            (None, true) => return Err(BuildError::new("keys", "no keys or issuers given")),
            (Some(single), true) => (vec![single], None),
            (None, false) => {
                let mut by_issuer = HashMap::new();
                let mut authorities = Vec::new();
                for (issuer, authority) in self.authorities {
                    if by_issuer.insert(issuer, authorities.len()).is_some() {
                        return Err(BuildError::new("issuer", "an issuer is added twice"));
                    }
                    authorities.push(authority);
                }
                (authorities, Some(by_issuer))
            }
        };
        if !self.sources.any() {
            return Err(BuildError::new("sources", "no place to read a token from"));
        }
        if self.max_len == 0 {
            return Err(BuildError::new("max_token_len", "must be at least 1"));
        }
        BuildError::check_realm(&self.realm)?;
        let mut rejections = Vec::with_capacity(TokenReason::ALL.len() * (CLAIMS.len() + 1));
        for reason in TokenReason::ALL {
            rejections.push(render(&self.realm, reason, None));
            for claim in CLAIMS {
                rejections.push(render(&self.realm, reason, Some(claim)));
            }
        }
        Ok(JwtLayer {
            shared: Arc::new(Shared {
                authorities,
                by_issuer,
                sources: self.sources,
                optional: self.optional,
                identity: self.identity,
                max_len: self.max_len,
                cache: (self.cache_capacity > 0).then(|| TokenCache::new(self.cache_capacity)),
                rejections,
            }),
        })
    }
}

/// The response for a refusal: `401` with an RFC 6750 challenge (no error code when no token
/// was sent), `400` `invalid_request` for several tokens, or `503` with `Retry-After` when keys
/// are unavailable.
fn render(realm: &str, reason: TokenReason, claim: Option<&'static str>) -> Rejection {
    if reason == TokenReason::KeysUnavailable {
        let problem = Problem::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_type(types::UNAVAILABLE)
            .with_title("Authentication unavailable")
            .with_detail(reason.describe())
            .with_extension("reason", reason.label());
        return Rejection::new(&problem).with_header(
            RETRY_AFTER,
            HeaderValue::from(KEYS_UNAVAILABLE_RETRY_AFTER.as_secs()),
        );
    }
    let detail = match claim {
        Some(claim) => format!("{} (`{claim}`)", reason.describe()),
        None => reason.describe().to_owned(),
    };
    let (status, type_uri, title) = match reason {
        // RFC 6750, section 3.1: more than one method of sending a token is `invalid_request`,
        // answered with 400.
        TokenReason::Several => (
            StatusCode::BAD_REQUEST,
            types::AMBIGUOUS_CREDENTIALS,
            "Several tokens",
        ),
        TokenReason::Missing => (
            StatusCode::UNAUTHORIZED,
            types::UNAUTHENTICATED,
            "Authentication required",
        ),
        _ => (
            StatusCode::UNAUTHORIZED,
            types::UNAUTHENTICATED,
            "Invalid token",
        ),
    };
    let mut problem = Problem::new(status)
        .with_type(type_uri)
        .with_title(title)
        .with_detail(detail.clone())
        .with_extension("reason", reason.label());
    if let Some(claim) = claim {
        problem = problem.with_extension("claim", claim);
    }
    let challenge = if reason == TokenReason::Missing {
        // RFC 6750, section 3.1: no error code when the request had no token.
        format!("Bearer realm=\"{realm}\"")
    } else {
        let error = if reason == TokenReason::Several {
            "invalid_request"
        } else {
            "invalid_token"
        };
        format!("Bearer realm=\"{realm}\", error=\"{error}\", error_description=\"{detail}\"")
    };
    let challenge = HeaderValue::try_from(challenge.replace('`', "'"))
        .unwrap_or(HeaderValue::from_static("Bearer"));
    Rejection::new(&problem).with_header(WWW_AUTHENTICATE, challenge)
}

impl<T> Shared<T> {
    fn rejection(&self, error: TokenError) -> Rejection {
        let reason = TokenReason::ALL
            .iter()
            .position(|r| *r == error.reason())
            .unwrap_or(0);
        let claim = error
            .claim_name()
            .and_then(|c| CLAIMS.iter().position(|known| *known == c))
            .map_or(0, |i| i + 1);
        self.rejections[reason * (CLAIMS.len() + 1) + claim].clone()
    }

    /// The issuer that verifies a token whose unverified `iss` is `iss`. With several, a token
    /// naming none of them (or no issuer) gets the answer a forged signature gets: the
    /// verdict comes before any signature was checked, so it must not tell a caller which
    /// issuers are accepted.
    fn authority(&self, iss: Option<&str>) -> Result<(usize, &Authority), TokenError> {
        let index = match &self.by_issuer {
            None => 0,
            Some(by_issuer) => *iss
                .and_then(|iss| by_issuer.get(iss))
                .ok_or(TokenError::new(TokenReason::BadSignature))?,
        };
        self.authorities
            .get(index)
            .map(|authority| (index, authority))
            .ok_or(TokenError::new(TokenReason::BadSignature))
    }
}

/// What a synchronous verification attempt ended with.
enum Step<T> {
    Done(Result<(Verified<T>, usize), TokenError>),
    /// Keys must be fetched first.
    Fetch,
}

impl<T: DeserializeOwned + Send + Sync + 'static> Shared<T> {
    /// From the cache, or verified now when the keys are at hand.
    fn verify_now(&self, token: &str, now: SystemTime) -> Step<T> {
        let now_secs = unix_seconds(now);
        let digest = self.cache.as_ref().map(|_| cache::digest(token));
        if let (Some(cache), Some(digest)) = (&self.cache, &digest) {
            if let Some((verified, authority)) = cache.get(digest, now_secs) {
                let still_held = match &self.authorities[authority].keys {
                    KeySource::Static(_) => true,
                    KeySource::Jwks(source) => {
                        source.keys().is_some_and(|keys| keys.holds(&verified.key))
                    }
                };
                // The claims were checked until `until`, which is no later than `exp`; `nbf`
                // and `iat` only become easier to meet as time passes.
                if still_held {
                    count_cache(true);
                    return Step::Done(Ok((verified, authority)));
                }
                cache.remove(digest);
            }
            count_cache(false);
        }
        #[cfg(feature = "metrics")]
        let started = std::time::Instant::now();
        let step = self.verify_uncached(token, now, now_secs, digest);
        // The signature and claims checks (not a key fetch, which has its own histogram).
        #[cfg(feature = "metrics")]
        if let Step::Done(_) = &step {
            metrics::histogram!("palisade_jwt_verify_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        step
    }

    /// Verified now when the keys are at hand (not from the cache; into it on success).
    fn verify_uncached(
        &self,
        token: &str,
        now: SystemTime,
        now_secs: i64,
        digest: Option<cache::TokenDigest>,
    ) -> Step<T> {
        let decoded = match verify::decode(token, self.max_len) {
            Ok(decoded) => decoded,
            Err(error) => return Step::Done(Err(error)),
        };
        let (index, authority) = match self.authority(decoded.registered.iss.as_deref()) {
            Ok(found) => found,
            Err(error) => return Step::Done(Err(error)),
        };
        let keys = match &authority.keys {
            KeySource::Static(keys) => keys.clone(),
            KeySource::Jwks(source) => match source.keys() {
                Some(keys) => keys,
                None => return Step::Fetch,
            },
        };
        let key = match verify::check_signature(&decoded.parsed, &keys, &authority.rules) {
            Ok(key) => key,
            Err(error)
                if error.reason() == TokenReason::UnknownKey
                    && matches!(authority.keys, KeySource::Jwks(_)) =>
            {
                return Step::Fetch;
            }
            Err(error) => return Step::Done(Err(error)),
        };
        let until = decoded.registered.exp.unwrap_or(i64::MAX);
        let result = verify::finish(decoded, key, &authority.rules, &self.identity, now);
        if let (Ok(verified), Some(cache), Some(digest)) = (&result, &self.cache, digest) {
            let ttl = i64::try_from(cache::MAX_TTL.as_secs()).unwrap_or(i64::MAX);
            let leeway = i64::try_from(authority.rules.leeway.as_secs()).unwrap_or(0);
            // Until `exp` (no leeway granted from the cache), at most MAX_TTL.
            let until = until
                .min(now_secs.saturating_add(ttl))
                .min(until.saturating_add(leeway));
            cache.insert(digest, verified.clone(), index, until, now_secs);
        }
        Step::Done(result.map(|verified| (verified, index)))
    }

    /// Verifies after fetching keys as the JWKS rules allow.
    async fn verify_fetching(self: Arc<Self>, token: String) -> Result<Verified<T>, TokenError> {
        // The checks' own time, not the fetches', goes to the verification histogram.
        let mut checking = CheckTime::default();
        let (decoded, authority) = checking.time(|| {
            let decoded = verify::decode(&token, self.max_len)?;
            let (_, authority) = self.authority(decoded.registered.iss.as_deref())?;
            Ok::<_, TokenError>((decoded, authority))
        })?;
        let KeySource::Jwks(source) = &authority.keys else {
            return Err(TokenReason::UnknownKey.into());
        };
        let keys = source
            .keys_or_fetch()
            .await
            .ok_or(TokenError::new(TokenReason::KeysUnavailable))?;
        let checked =
            checking.time(|| verify::check_signature(&decoded.parsed, &keys, &authority.rules));
        let key = match checked {
            Err(error) if error.reason() == TokenReason::UnknownKey => {
                let keys = source
                    .refetch_for_unknown_kid()
                    .await
                    .ok_or(TokenError::new(TokenReason::UnknownKey))?;
                checking
                    .time(|| verify::check_signature(&decoded.parsed, &keys, &authority.rules))?
            }
            other => other?,
        };
        checking.time(|| {
            verify::finish(
                decoded,
                key,
                &authority.rules,
                &self.identity,
                SystemTime::now(),
            )
        })
    }
}

/// The time spent checking a token across the awaits of a key fetch, recorded in
/// `palisade_jwt_verify_seconds` when the verification ends, however it ends.
#[derive(Default)]
struct CheckTime(std::time::Duration);

impl CheckTime {
    fn time<R>(&mut self, check: impl FnOnce() -> R) -> R {
        let started = std::time::Instant::now();
        let result = check();
        self.0 += started.elapsed();
        result
    }
}

impl Drop for CheckTime {
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        metrics::histogram!("palisade_jwt_verify_seconds").record(self.0.as_secs_f64());
    }
}

fn count_cache(hit: bool) {
    #[cfg(feature = "metrics")]
    if hit {
        metrics::counter!("palisade_jwt_cache_total", "outcome" => "hit").increment(1);
    } else {
        metrics::counter!("palisade_jwt_cache_total", "outcome" => "miss").increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = hit;
}

fn count(outcome: &'static str) {
    #[cfg(feature = "metrics")]
    palisade_core::__count_labelled!(
        "palisade_jwt_requests_total",
        "outcome",
        outcome,
        [
            "accepted",
            "anonymous",
            "missing",
            "several",
            "malformed",
            "too_large",
            "unsupported_algorithm",
            "algorithm_mismatch",
            "unknown_key",
            "bad_signature",
            "expired",
            "not_yet_valid",
            "issued_in_future",
            "missing_claim",
            "invalid_claim",
            "wrong_issuer",
            "wrong_audience",
            "wrong_type",
            "critical_header",
            "nested_token",
            "claims_shape",
            "keys_unavailable",
        ]
    );
    #[cfg(not(feature = "metrics"))]
    let _ = outcome;
}

impl<S, T> Layer<S> for JwtLayer<T> {
    type Service = Jwt<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        Jwt {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`JwtLayer`].
pub struct Jwt<S, T = Map<String, Value>> {
    inner: S,
    shared: Arc<Shared<T>>,
}

impl<S: Clone, T> Clone for Jwt<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, T> fmt::Debug for Jwt<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwt")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, T> Jwt<S, T> {
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

fn accept<B, T: Send + Sync + 'static>(request: &mut Request<B>, verified: Verified<T>) {
    count("accepted");
    request.extensions_mut().insert(verified.identity);
    request.extensions_mut().insert(verified.claims);
}

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for Jwt<S, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    T: DeserializeOwned + Send + Sync + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, T>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        call_with(&self.shared, &mut self.inner, request)
    }
}

impl<T> JwtLayer<T> {
    /// What the layer's service does with `request`, on an inner service the caller holds and
    /// has made ready: for combinators (`palisade::AnyCredential`) that route a request to one
    /// of several layers without a service per layer. Not a stable API.
    #[doc(hidden)]
    pub fn __call_with<S, ReqBody, ResBody>(
        &self,
        inner: &mut S,
        request: Request<ReqBody>,
    ) -> ResponseFuture<S, ReqBody, T>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
        S::Future: Send,
        ReqBody: Send + 'static,
        T: DeserializeOwned + Send + Sync + 'static,
    {
        call_with(&self.shared, inner, request)
    }
}

/// The service's call with its state and inner service apart ([`Jwt::call`] and
/// [`JwtLayer::__call_with`]).
fn call_with<S, T, ReqBody, ResBody>(
    shared: &Arc<Shared<T>>,
    inner: &mut S,
    mut request: Request<ReqBody>,
) -> ResponseFuture<S, ReqBody, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    T: DeserializeOwned + Send + Sync + 'static,
{
    {
        let protocol = Protocol::of(request.headers());
        let token = match shared.sources.extract(request.headers()) {
            Ok(Some(token)) => token,
            Ok(None) if shared.optional => {
                count("anonymous");
                return ResponseFuture::calling(inner.call(request));
            }
            Ok(None) => return reject(shared, TokenError::new(TokenReason::Missing), protocol),
            Err(ExtractError::Several) => {
                return reject(shared, TokenError::new(TokenReason::Several), protocol);
            }
        };
        match shared.verify_now(token, SystemTime::now()) {
            Step::Done(Ok((verified, _))) => {
                accept(&mut request, verified);
                ResponseFuture::calling(inner.call(request))
            }
            Step::Done(Err(error)) => reject(shared, error, protocol),
            Step::Fetch => {
                let token = token.to_owned();
                let clone = inner.clone();
                let service = std::mem::replace(inner, clone);
                ResponseFuture {
                    state: State::Fetching {
                        verifying: Box::pin(shared.clone().verify_fetching(token)),
                        request: Some(request),
                        service: Some(service),
                        shared: shared.clone(),
                        protocol,
                    },
                }
            }
        }
    }
}

fn reject<S, T, ReqBody>(
    shared: &Shared<T>,
    error: TokenError,
    protocol: Protocol,
) -> ResponseFuture<S, ReqBody, T>
where
    S: Service<Request<ReqBody>>,
{
    {
        count(error.reason().label());
        tracing::debug!(
            reason = error.reason().label(),
            claim = error.claim_name(),
            "bearer token refused"
        );
        ResponseFuture {
            state: State::Rejected {
                rejection: Some((shared.rejection(error), protocol)),
            },
        }
    }
}

type Verifying<T> = Pin<Box<dyn Future<Output = Result<Verified<T>, TokenError>> + Send>>;

pin_project! {
    /// The response future of [`Jwt`].
    pub struct ResponseFuture<S, ReqBody, T>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody, T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, T>
    where
        S: Service<Request<ReqBody>>,
    {
        Calling {
            #[pin]
            future: S::Future,
        },
        Fetching {
            verifying: Verifying<T>,
            request: Option<Request<ReqBody>>,
            service: Option<S>,
            shared: Arc<Shared<T>>,
            protocol: Protocol,
        },
        Rejected {
            rejection: Option<(Rejection, Protocol)>,
        },
    }
}

impl<S, ReqBody, T> fmt::Debug for ResponseFuture<S, ReqBody, T>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, ReqBody, T> ResponseFuture<S, ReqBody, T>
where
    S: Service<Request<ReqBody>>,
{
    fn calling(future: S::Future) -> Self {
        Self {
            state: State::Calling { future },
        }
    }
}

impl<S, ReqBody, ResBody, T> Future for ResponseFuture<S, ReqBody, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    T: Send + Sync + 'static,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().state.project() {
                StateProj::Calling { future } => {
                    return future
                        .poll(cx)
                        .map(|result| result.map(|r| r.map(ResponseBody::inner)));
                }
                StateProj::Rejected { rejection } => {
                    let (rejection, protocol) = rejection
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(rejection.to_response_for(protocol)));
                }
                StateProj::Fetching {
                    verifying,
                    request,
                    service,
                    shared,
                    protocol,
                } => match std::task::ready!(verifying.as_mut().poll(cx)) {
                    Ok(verified) => {
                        let mut request = request.take().expect("taken once");
                        accept(&mut request, verified);
                        let mut service = service.take().expect("taken once");
                        State::Calling {
                            future: service.call(request),
                        }
                    }
                    Err(error) => {
                        count(error.reason().label());
                        tracing::debug!(
                            reason = error.reason().label(),
                            claim = error.claim_name(),
                            "bearer token refused"
                        );
                        State::Rejected {
                            rejection: Some((shared.rejection(error), *protocol)),
                        }
                    }
                },
            };
            self.as_mut().project().state.set(next);
        }
    }
}

/// How long a refusal tells a client to wait before retrying when keys are unavailable.
pub const KEYS_UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(5);
