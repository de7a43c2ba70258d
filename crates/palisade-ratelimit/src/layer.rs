//! The server layer: several limits (tiers) on one request, `429` when one is exhausted.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use arc_swap::ArcSwap;
use foldhash::fast::RandomState;
use http::header::HeaderValue;
use http::{HeaderName, Method, Request, Response, StatusCode};
use palisade_core::problem::types;
use palisade_core::{BuildError, Classify, Outcome, Problem, Protocol, Rejection, ResponseBody};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::headers::{is_policy_name, limit_item, policy_item};
use crate::key::KeyBy;
use crate::limiter::{Decision, FakeClock, Limiter, LimiterClock};
use crate::quota::Quota;
use crate::store::WhenFull;
use crate::tier_metrics::{Decided, TierMetrics};

/// `RateLimit-Policy`.
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`.
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

type StatusJudge = Arc<dyn Fn(StatusCode) -> Outcome + Send + Sync>;
type HeadJudge = Arc<dyn Fn(&Response<()>) -> Outcome + Send + Sync>;

/// How a penalty tier judges a response.
#[derive(Clone)]
enum Penalty {
    /// By its status alone.
    Status(StatusJudge),
    /// By a [`Classify`] of its head (status, version, headers).
    Classify(HeadJudge),
}

/// What a tier does with a request whose [`KeyBy`] cannot be formed: no `ClientIp` (no
/// `ClientIpLayer` outside, or one that found no peer address), no `Identity` (no
/// authentication before the tier), no such header. Whichever it is, the first such request
/// is logged at `error` once per tier, and `palisade_ratelimit_keyless_total{tier}` counts
/// them all (feature `metrics`): a tier is never silently unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Keyless {
    /// They share one bucket of the tier, as if they were one client (the default): a wiring
    /// mistake limits too much, never too little.
    #[default]
    Shared,
    /// They are refused with `503` (gRPC `UNAVAILABLE`): for tiers every request must have a
    /// key for, where a missing one means the stack is wired wrong.
    Refuse,
    /// They pass, not counted by this tier (say, an identity tier on a route where anonymous
    /// callers are allowed and limited by another tier).
    Pass,
}

/// One limit: a quota over a key, on some routes, enforced, shadowed or as a penalty.
#[derive(Clone)]
pub struct Tier {
    name: String,
    quota: Quota,
    key: KeyBy,
    keyless: Keyless,
    cost: u32,
    route: Option<(Option<Method>, String)>,
    shadow: bool,
    penalty: Option<Penalty>,
    #[cfg(feature = "redis")]
    redis: Option<crate::redis::RedisStore>,
}

impl fmt::Debug for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tier")
            .field("name", &self.name)
            .field("quota", &self.quota)
            .field("key", &self.key)
            .field("keyless", &self.keyless)
            .field("cost", &self.cost)
            .field("route", &self.route)
            .field("shadow", &self.shadow)
            .field("penalty", &self.penalty.is_some())
            .finish_non_exhaustive()
    }
}

impl Tier {
    /// A limit named `name` (in headers, logs and metrics: 1 to 32 of `[A-Za-z0-9_.-]`) of
    /// `quota` per `key`.
    pub fn new(name: impl Into<String>, quota: Quota, key: KeyBy) -> Self {
        Self {
            name: name.into(),
            quota,
            key,
            keyless: Keyless::default(),
            cost: 1,
            route: None,
            shadow: false,
            penalty: None,
            #[cfg(feature = "redis")]
            redis: None,
        }
    }

    /// Keeps this tier's state in Redis (feature `redis`), shared by every instance of the
    /// service; see [`RedisStore`](crate::redis::RedisStore). Checks against Redis run after
    /// the in-process tiers. Penalty mode stays in-process.
    #[cfg(feature = "redis")]
    #[must_use]
    pub fn redis(mut self, store: crate::redis::RedisStore) -> Self {
        self.redis = Some(store);
        self
    }

    fn is_remote(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.redis.is_some() && self.penalty.is_none();
        #[cfg(not(feature = "redis"))]
        false
    }

    /// What happens to a request whose key cannot be formed (default: [`Keyless::Shared`]).
    #[must_use]
    pub fn keyless(mut self, keyless: Keyless) -> Self {
        self.keyless = keyless;
        self
    }

    /// What one request costs (default 1), for expensive endpoints.
    #[must_use]
    pub fn cost(mut self, cost: u32) -> Self {
        self.cost = cost;
        self
    }

    /// Only requests to `path` (the matched route template under axum, else the path) with
    /// `method` (any, if `None`) count; a `GET` limit counts `HEAD` too.
    ///
    /// A template (`/users/{id}`) matches only axum's matched route, which exists inside the
    /// router: apply the layer with `Router::layer` or `route_layer`, not around the router
    /// (`.service(router)`), where a template never matches. Without the `axum` feature a
    /// template is refused at build; with it, the first request reaching such a tier without a
    /// matched route is logged as a warning.
    #[must_use]
    pub fn route(mut self, method: Option<Method>, path: impl Into<String>) -> Self {
        self.route = Some((method, path.into()));
        self
    }

    /// Shadow mode: never refuses; what it would refuse is logged and counted.
    #[must_use]
    pub fn shadow(mut self, shadow: bool) -> Self {
        self.shadow = shadow;
        self
    }

    /// Penalty mode: a request is charged only when `judge` calls its response's status a
    /// [`Outcome::Failure`] (e.g. a `401`), and refused while the key's failures exhausted the
    /// quota — to slow credential stuffing per IP without limiting good clients. Failures
    /// beyond the quota still count (a key that keeps failing stays refused longer); requests
    /// in flight together are admitted before any of their failures is charged; a request the
    /// inner service fails with an error is not charged.
    ///
    /// ```
    /// use http::StatusCode;
    /// use palisade::Outcome;
    /// use palisade::ratelimit::{KeyBy, Quota, Tier};
    ///
    /// let logins = Tier::new("logins", Quota::per_minute(10), KeyBy::client_ip()).penalty(|status| {
    ///     if status == StatusCode::UNAUTHORIZED { Outcome::Failure } else { Outcome::Success }
    /// });
    /// # let _ = logins;
    /// ```
    #[must_use]
    pub fn penalty(
        mut self,
        judge: impl Fn(StatusCode) -> Outcome + Send + Sync + 'static,
    ) -> Self {
        self.penalty = Some(Penalty::Status(Arc::new(judge)));
        self
    }

    /// Penalty mode with a palisade-core [`Classify`] judging the response's head (status,
    /// version and headers; the body is not read): `HttpClassifier` charges `5xx`,
    /// `GrpcClassifier` a trailers-only `grpc-status` failure. A response the classifier
    /// defers ([`Outcome::Deferred`], a gRPC status in streamed trailers) is not charged.
    ///
    /// ```
    /// use palisade::HttpClassifier;
    /// use palisade::ratelimit::{KeyBy, Quota, Tier};
    ///
    /// let errors = Tier::new("errors", Quota::per_minute(30), KeyBy::identity())
    ///     .penalty_classified(HttpClassifier::default());
    /// # let _ = errors;
    /// ```
    #[must_use]
    pub fn penalty_classified(
        mut self,
        classifier: impl Classify<Response<()>, std::convert::Infallible> + Send + Sync + 'static,
    ) -> Self {
        self.penalty = Some(Penalty::Classify(Arc::new(move |head| {
            classifier.classify(Ok(head))
        })));
        self
    }

    #[inline]
    fn applies<B>(&self, request: &Request<B>) -> bool {
        match &self.route {
            None => true,
            Some((method, path)) => {
                method.as_ref().is_none_or(|m| {
                    // A HEAD is served by the GET handler, so a GET limit counts it too.
                    m == request.method() || (m == Method::GET && request.method() == Method::HEAD)
                }) && route_matches(request, path)
            }
        }
    }
}

/// Whether `path` is an axum route template (`{id}`, `{*rest}`), which only a matched route
/// can equal. A `*` alone is a literal character of a path.
fn is_template(path: &str) -> bool {
    path.contains(['{', '}'])
}

fn check_route(path: &str) -> Result<(), BuildError> {
    if !path.starts_with('/') {
        return Err(BuildError::new("route", "a route starts with `/`"));
    }
    #[cfg(not(feature = "axum"))]
    if is_template(path) {
        return Err(BuildError::new(
            "route",
            "a route template matches only axum's matched route (feature `axum`, the layer \
             applied inside the router); give the exact path",
        ));
    }
    Ok(())
}

/// Whether the request's route is `path`: axum's matched route when there is one, else the
/// path (which a template never equals).
#[inline]
fn route_matches<B>(request: &Request<B>, path: &str) -> bool {
    #[cfg(feature = "axum")]
    {
        if let Some(matched) = request.extensions().get::<axum::extract::MatchedPath>() {
            return matched.as_str() == path;
        }
        if is_template(path) {
            template_unmatched();
            return false;
        }
    }
    request.uri().path() == path
}

/// A template tier met a request without a matched route: the request matched no route (a
/// fallback, a 404), or the layer is outside the router, where the tier can never apply. Said
/// once, as a warning that names both.
#[cfg(feature = "axum")]
#[cold]
fn template_unmatched() {
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !REPORTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            "a rate-limit tier's route is a template (`{{id}}`) and a request reached it without \
             axum's matched route: either it matched no route, or the layer is outside the \
             router, where the tier never applies (apply it with Router::layer or route_layer)"
        );
    }
}

pub(crate) struct TierState {
    metrics: TierMetrics,
    /// Whether a request without this tier's key was reported.
    keyless_reported: std::sync::atomic::AtomicBool,
    tier: Tier,
    limiter: Arc<ArcSwap<Limiter>>,
    refused: Rejection,
    /// The answer to a request without this tier's key under [`Keyless::Refuse`].
    keyless_refused: Rejection,
    policy: ArcSwap<String>,
}

struct Shared {
    tiers: Vec<Arc<TierState>>,
    seed: RandomState,
    /// The bucket of requests without a key, under [`Keyless::Shared`].
    keyless_key: u64,
    headers_on_success: bool,
    /// Held while a quota changes: two changes at once would rescale the store twice.
    quota_change: std::sync::Mutex<()>,
    /// Only local tiers, no penalty tier, no headers on admitted responses: a check needs
    /// nothing after the response.
    simple: bool,
}

/// Rate limits for a service: [`Tier`]s of a [`Quota`] over a [`KeyBy`], built with
/// [`RateLimitLayer::builder`].
#[derive(Clone)]
pub struct RateLimitLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tiers: Vec<&Tier> = self.shared.tiers.iter().map(|t| &t.tier).collect();
        f.debug_struct("RateLimitLayer")
            .field("tiers", &tiers)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RateLimitLayer`].
#[must_use]
#[derive(Debug)]
pub struct RateLimitBuilder {
    tiers: Vec<Tier>,
    capacity: usize,
    when_full: WhenFull,
    headers_on_success: bool,
    clock: Option<FakeClock>,
}

impl RateLimitLayer {
    /// A builder: add tiers.
    pub fn builder() -> RateLimitBuilder {
        RateLimitBuilder {
            tiers: Vec::new(),
            capacity: 100_000,
            when_full: WhenFull::default(),
            headers_on_success: false,
            clock: None,
        }
    }

    /// A layer with no tier: every request passes, nothing is counted. For stacks whose shape
    /// is fixed but whose limits come from configuration (a configuration with no limit);
    /// [`builder`](Self::builder) refuses to build a layer without tiers.
    pub fn unlimited() -> Self {
        Self::builder()
            .assemble()
            .unwrap_or_else(|_| unreachable!("no tier, nothing to refuse"))
    }

    /// Replaces the quota of the tier `name` at run time; each key keeps what it has used.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for no such tier or an invalid quota.
    pub fn set_quota(&self, name: &str, quota: Quota) -> Result<(), BuildError> {
        quota.check()?;
        let tier = self
            .shared
            .tiers
            .iter()
            .find(|t| t.tier.name == name)
            .ok_or_else(|| BuildError::new("tier", "no tier has that name"))?;
        if tier.tier.cost > quota.burst() {
            return Err(BuildError::new(
                "quota",
                "the burst must be at least the tier's cost",
            ));
        }
        let _one_at_a_time = self
            .shared
            .quota_change
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = tier.limiter.load();
        tier.limiter.store(Arc::new(current.with_quota(quota)));
        let mut policy = String::new();
        policy_item(&mut policy, name, &quota);
        tier.policy.store(Arc::new(policy));
        tracing::info!(tier = name, %quota, "rate limit changed");
        Ok(())
    }

    /// Keys tracked by the tier `name`, and its capacity.
    pub fn tracked_keys(&self, name: &str) -> Option<(usize, usize)> {
        self.shared
            .tiers
            .iter()
            .find(|t| t.tier.name == name)
            .map(|t| {
                let limiter = t.limiter.load();
                (limiter.len(), limiter.capacity())
            })
    }
}

impl RateLimitBuilder {
    /// Adds a limit; a request passes only if every limit that applies admits it.
    pub fn tier(mut self, tier: Tier) -> Self {
        self.tiers.push(tier);
        self
    }

    /// The most keys each tier tracks (default 100,000); see [`WhenFull`].
    pub fn capacity(mut self, keys: usize) -> Self {
        self.capacity = keys;
        self
    }

    /// What a new key gets when a tier is full of keys still limited.
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.when_full = policy;
        self
    }

    /// Also sends `RateLimit-Policy` and `RateLimit` on admitted responses (default: only on
    /// `429`).
    ///
    /// Rate-limit layers may be stacked (per IP before authentication, per caller after): an
    /// admitted response then carries the fields of every layer it passed, combined into one
    /// list per header (the inner layer's first), while a `429` carries only the fields of the
    /// tier that refused it.
    pub fn headers_on_success(mut self, on: bool) -> Self {
        self.headers_on_success = on;
        self
    }

    /// A clock moved by hand, for tests.
    pub fn clock(mut self, clock: FakeClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks the tiers and builds the layer.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for no tier, a name that is not `[A-Za-z0-9_.-]{1,32}` or is used twice,
    /// an invalid quota, a cost of 0 or above the burst, or a capacity below 64.
    pub fn build(self) -> Result<RateLimitLayer, BuildError> {
        if self.tiers.is_empty() {
            return Err(BuildError::new("tiers", "add at least one tier"));
        }
        self.assemble()
    }

    /// [`build`](Self::build), allowing no tier at all.
    fn assemble(self) -> Result<RateLimitLayer, BuildError> {
        if self.tiers.len() > 64 {
            return Err(BuildError::new("tiers", "at most 64 tiers per layer"));
        }
        if self.capacity < 64 {
            return Err(BuildError::new("capacity", "must be at least 64 keys"));
        }
        let clock = self
            .clock
            .map_or_else(LimiterClock::real, LimiterClock::Fake);
        let mut tiers = Vec::with_capacity(self.tiers.len());
        for tier in self.tiers {
            if !is_policy_name(&tier.name) {
                return Err(BuildError::new(
                    "tier",
                    "a name is 1 to 32 of A-Z, a-z, 0-9, `_`, `.`, `-`",
                ));
            }
            if tiers
                .iter()
                .any(|t: &Arc<TierState>| t.tier.name == tier.name)
            {
                return Err(BuildError::new("tier", "two tiers have the same name"));
            }
            tier.quota.check()?;
            tier.key.check()?;
            if let Some((_, path)) = &tier.route {
                check_route(path)?;
            }
            if tier.cost == 0 || tier.cost > tier.quota.burst() {
                return Err(BuildError::new(
                    "cost",
                    "must be at least 1 and at most the quota's burst",
                ));
            }
            let limiter = Limiter::new(tier.quota, self.capacity, self.when_full, clock.clone());
            let refused = Rejection::new(
                &Problem::new(StatusCode::TOO_MANY_REQUESTS)
                    .with_type(types::RATE_LIMITED)
                    .with_title("Too many requests")
                    .with_detail(format!(
                        "the rate limit `{}` ({}) is exhausted; retry after the time `Retry-After` gives",
                        tier.name, tier.quota
                    ))
                    .with_extension("limit", tier.name.clone()),
            );
            let keyless_refused = Rejection::new(
                &Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                    .with_type(types::UNAVAILABLE)
                    .with_title("Rate limit cannot identify the request")
                    .with_detail(format!(
                        "the rate limit `{}` needs to know who sent this request and cannot tell",
                        tier.name
                    ))
                    .with_extension("limit", tier.name.clone()),
            );
            let mut policy = String::new();
            policy_item(&mut policy, &tier.name, &tier.quota);
            tiers.push(Arc::new(TierState {
                metrics: TierMetrics::new(&tier.name),
                keyless_reported: std::sync::atomic::AtomicBool::new(false),
                limiter: Arc::new(ArcSwap::from_pointee(limiter)),
                refused,
                keyless_refused,
                policy: ArcSwap::from_pointee(policy),
                tier,
            }));
        }
        let simple = !self.headers_on_success
            && tiers
                .iter()
                .all(|t| !t.tier.is_remote() && t.tier.penalty.is_none());
        let seed = RandomState::default();
        // A key no request hashes to: every part starts with a tag below 0xFE.
        let keyless_key = std::hash::BuildHasher::hash_one(&seed, 0xFEu8);
        Ok(RateLimitLayer {
            shared: Arc::new(Shared {
                tiers,
                seed,
                keyless_key,
                headers_on_success: self.headers_on_success,
                quota_change: std::sync::Mutex::new(()),
                simple,
            }),
        })
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`RateLimitLayer`]. A clone is the inner service's clone and one reference
/// count: axum clones a route's services for every request.
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// What the response phase still has to do.
struct After {
    /// Headers for an admitted response.
    headers: Option<(HeaderValue, HeaderValue)>,
    /// Penalty tiers to charge if the response is a failure.
    penalties: Vec<(Arc<TierState>, u64)>,
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static(""))
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, ResBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if self.shared.simple {
            return self.call_simple(request);
        }
        self.call_general(request)
    }
}

impl<S> RateLimit<S> {
    /// Local tiers only and nothing to do after the response: each tier checks and the
    /// first refusal answers.
    #[inline]
    fn call_simple<ReqBody, ResBody>(
        &mut self,
        request: Request<ReqBody>,
    ) -> ResponseFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    {
        let shared = &*self.shared;
        // Tiers that charged this request, to give back if a later one refuses it.
        let mut charged = 0u64;
        for (index, state) in shared.tiers.iter().enumerate() {
            let tier = &state.tier;
            if !tier.applies(&request) {
                continue;
            }
            let key = match local_key(shared, state, &request) {
                TierKey::Key(key) => key,
                TierKey::Pass => continue,
                TierKey::Refuse => {
                    refund(shared, charged, &request);
                    return keyless_refused(state, &request);
                }
            };
            let limiter = state.limiter.load();
            let (decision, stored) = limiter.check_stored(key, tier.cost, false);
            state.metrics.sample_keys(|| limiter.len());
            if stored {
                charged |= 1 << index;
            }
            if decision.allowed {
                state.metrics.decided(Decided::Admitted);
            } else if !refused_in_shadow(state) {
                refund(shared, charged, &request);
                return refused(state, &decision, &request);
            }
        }
        ResponseFuture {
            state: State::Calling {
                future: self.inner.call(request),
                after: None,
            },
        }
    }

    /// Every other case: remote tiers, penalties, headers on admitted responses.
    #[inline(never)]
    fn call_general<ReqBody, ResBody>(
        &mut self,
        request: Request<ReqBody>,
    ) -> ResponseFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    {
        let shared = &self.shared;
        let mut applied: Vec<(Arc<TierState>, Decision)> = Vec::new();
        let mut penalties = Vec::new();
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut remote: Vec<(Arc<TierState>, String)> = Vec::new();
        let mut charged = 0u64;
        for (index, state) in shared.tiers.iter().enumerate() {
            let tier = &state.tier;
            if !tier.applies(&request) {
                continue;
            }
            if tier.is_remote() {
                #[cfg(feature = "redis")]
                match tier.key.shared_name(&request) {
                    Some(name) => remote.push((state.clone(), name)),
                    None => match keyless(state) {
                        Keyless::Shared => remote.push((state.clone(), KEYLESS_NAME.to_owned())),
                        Keyless::Pass => {}
                        Keyless::Refuse => {
                            refund(shared, charged, &request);
                            return keyless_refused(state, &request);
                        }
                    },
                }
                continue;
            }
            let key = match local_key(shared, state, &request) {
                TierKey::Key(key) => key,
                TierKey::Pass => continue,
                TierKey::Refuse => {
                    refund(shared, charged, &request);
                    return keyless_refused(state, &request);
                }
            };
            let limiter = state.limiter.load();
            let decision = if tier.penalty.is_some() {
                penalties.push((state.clone(), key));
                limiter.would_admit(key, tier.cost)
            } else {
                let (decision, stored) =
                    limiter.check_stored(key, tier.cost, shared.headers_on_success);
                if stored {
                    charged |= 1 << index;
                }
                decision
            };
            state.metrics.sample_keys(|| limiter.len());
            if decision.allowed {
                state.metrics.decided(Decided::Admitted);
                if shared.headers_on_success {
                    applied.push((state.clone(), decision));
                }
                continue;
            }
            if refused_in_shadow(state) {
                continue;
            }
            refund(shared, charged, &request);
            return refused(state, &decision, &request);
        }
        if remote.is_empty() {
            let after = after(&applied, penalties);
            return ResponseFuture {
                state: State::Calling {
                    future: self.inner.call(request),
                    after,
                },
            };
        }
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        let protocol = Protocol::of(request.headers());
        ResponseFuture {
            state: State::Remote {
                checking: Box::pin(check_remote(remote, shared.headers_on_success)),
                pending: Some(Box::new(Pending {
                    request,
                    service,
                    applied,
                    penalties,
                    protocol,
                    charged,
                    shared: self.shared.clone(),
                })),
            },
        }
    }
}

/// Gives back what the local tiers in `charged` took from this request: a later tier refused
/// it, and a refused request must not spend (say) a global tier's permits.
#[cold]
fn refund<B>(shared: &Shared, charged: u64, request: &Request<B>) {
    if charged == 0 {
        return;
    }
    for (index, state) in shared.tiers.iter().enumerate() {
        if charged & (1 << index) != 0 {
            // A tier charged only requests it had a key for, its own or the shared one.
            let key = state
                .tier
                .key
                .hash(&shared.seed, request)
                .unwrap_or(shared.keyless_key);
            state.limiter.load().refund(key, state.tier.cost);
        }
    }
}

/// A tier's key for a request, or what to do without one.
enum TierKey {
    Key(u64),
    Pass,
    Refuse,
}

/// The name of the shared bucket of requests without a key, in Redis (key digests are 32 hex
/// digits, so it names no other bucket).
#[cfg(feature = "redis")]
const KEYLESS_NAME: &str = "keyless";

/// The request's key for a local tier, seeded; without one, what [`Keyless`] says.
#[inline]
fn local_key<B>(shared: &Shared, state: &TierState, request: &Request<B>) -> TierKey {
    match state.tier.key.hash(&shared.seed, request) {
        Some(key) => TierKey::Key(key),
        None => match keyless(state) {
            Keyless::Shared => TierKey::Key(shared.keyless_key),
            Keyless::Pass => TierKey::Pass,
            Keyless::Refuse => TierKey::Refuse,
        },
    }
}

/// A request lacked the tier's key (no `ClientIp`, no `Identity`, no such header): counted,
/// said once per tier (a missing `ClientIpLayer`, or one finding no peer, would otherwise
/// leave the tier silently unlimited); answers the tier's [`Keyless`] policy.
#[cold]
fn keyless(state: &TierState) -> Keyless {
    state.metrics.keyless();
    if !state
        .keyless_reported
        .swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::error!(
            tier = state.tier.name,
            key = ?state.tier.key,
            keyless = ?state.tier.keyless,
            "a request lacked this rate limit's key (said once per tier): a ClientIp comes from \
             ClientIpLayer installed outside, which must find the connection's peer address; \
             an Identity from an authentication layer installed outside"
        );
    }
    state.tier.keyless
}

/// The future answering a request refused for lacking the tier's key.
#[cold]
#[inline(never)]
fn keyless_refused<S, ReqBody, B>(
    state: &TierState,
    request: &Request<ReqBody>,
) -> ResponseFuture<S, ReqBody, B>
where
    S: Service<Request<ReqBody>>,
{
    state.metrics.decided(Decided::KeylessRefused);
    ResponseFuture {
        state: State::Refused {
            response: Some(Box::new(
                state
                    .keyless_refused
                    .to_response_for(Protocol::of(request.headers())),
            )),
        },
    }
}

/// Whether a refused check is only logged (shadow mode); counts it either way.
#[cold]
fn refused_in_shadow(state: &TierState) -> bool {
    let tier = &state.tier;
    if tier.shadow {
        state.metrics.decided(Decided::ShadowRefused);
        tracing::info!(tier = tier.name, "rate limit would refuse (shadow mode)");
        return true;
    }
    state.metrics.decided(Decided::Refused);
    tracing::debug!(tier = tier.name, "rate limited");
    false
}

/// The future answering a refusal by `state`.
#[cold]
#[inline(never)]
fn refused<S, ReqBody, B>(
    state: &TierState,
    decision: &Decision,
    request: &Request<ReqBody>,
) -> ResponseFuture<S, ReqBody, B>
where
    S: Service<Request<ReqBody>>,
{
    let protocol = Protocol::of(request.headers());
    ResponseFuture {
        state: State::Refused {
            response: Some(Box::new(refuse(state, decision, protocol))),
        },
    }
}

/// The `429` (or `503`) for a refusal by `state`.
fn refuse<B>(
    state: &TierState,
    decision: &Decision,
    protocol: Protocol,
) -> Response<ResponseBody<B>> {
    let wait = decision.retry_after.unwrap_or(Duration::from_secs(1));
    let mut response = state.refused.to_response_retry_after(protocol, wait);
    let mut limit = String::new();
    limit_item(&mut limit, &state.tier.name, decision);
    let headers = response.headers_mut();
    headers.insert(RATELIMIT_POLICY.clone(), header_value(&state.policy.load()));
    headers.insert(RATELIMIT.clone(), header_value(&limit));
    // Layers outside this one leave a refusal's `RateLimit` fields as they are.
    response.extensions_mut().insert(RefusedHere);
    response
}

/// Marks a response a rate limit refused: its `RateLimit` fields are the refusing tier's, and
/// the layers it passes through on the way out add none of theirs.
#[derive(Clone, Copy, Debug)]
struct RefusedHere;

/// Adds `item` to the list `name` already holds on `headers`, or sets it.
fn combine(headers: &mut http::HeaderMap, name: &HeaderName, item: HeaderValue) {
    let combined = match headers.get(name) {
        Some(existing) if !existing.is_empty() => {
            let mut list = Vec::with_capacity(existing.len() + 2 + item.len());
            list.extend_from_slice(existing.as_bytes());
            list.extend_from_slice(b", ");
            list.extend_from_slice(item.as_bytes());
            HeaderValue::from_bytes(&list).unwrap_or(item)
        }
        _ => item,
    };
    headers.insert(name.clone(), combined);
}

/// What the response phase must do, if anything.
fn after(
    applied: &[(Arc<TierState>, Decision)],
    penalties: Vec<(Arc<TierState>, u64)>,
) -> Option<Box<After>> {
    let headers = (!applied.is_empty()).then(|| {
        let mut policy = String::new();
        let mut limit = String::new();
        for (state, decision) in applied {
            if !policy.is_empty() {
                policy.push_str(", ");
            }
            policy.push_str(&state.policy.load());
            limit_item(&mut limit, &state.tier.name, decision);
        }
        (header_value(&policy), header_value(&limit))
    });
    (headers.is_some() || !penalties.is_empty()).then(|| Box::new(After { headers, penalties }))
}

/// How the remote tiers decided.
#[cfg_attr(
    not(feature = "redis"),
    allow(dead_code, reason = "only the Redis backend refuses remotely")
)]
enum Remote {
    /// Every remote tier admitted (with the decisions kept for headers).
    Admitted(Vec<(Arc<TierState>, Decision)>),
    /// A tier refused.
    Refused(Arc<TierState>, Decision),
    /// The backend failed and the tier fails closed.
    Unavailable,
}

#[cfg(feature = "redis")]
async fn check_remote(remote: Vec<(Arc<TierState>, String)>, keep: bool) -> Remote {
    use tracing::Instrument;
    let mut admitted = Vec::new();
    for (state, key) in remote {
        let Some(store) = &state.tier.redis else {
            continue;
        };
        let quota = state.limiter.load().quota();
        let started = std::time::Instant::now();
        let checked = store
            .check(&state.tier.name, &key, quota, state.tier.cost)
            .instrument(tracing::debug_span!("palisade.ratelimit.redis", tier = %state.tier.name))
            .await;
        state
            .metrics
            .redis_checked(started.elapsed(), checked.is_err());
        match checked {
            Ok(decision) if decision.allowed => {
                state.metrics.decided(Decided::Admitted);
                if keep {
                    admitted.push((state.clone(), decision));
                }
            }
            Ok(decision) => {
                if state.tier.shadow {
                    state.metrics.decided(Decided::ShadowRefused);
                    continue;
                }
                state.metrics.decided(Decided::Refused);
                return Remote::Refused(state, decision);
            }
            Err(error) => {
                tracing::warn!(tier = state.tier.name, ?error, policy = ?store.failure_policy(), "rate limit backend failed");
                if store.failure_policy() == crate::redis::FailurePolicy::FailClosed {
                    state.metrics.decided(Decided::Unavailable);
                    return Remote::Unavailable;
                }
                // Fail open: admitted without a check.
                state.metrics.decided(Decided::Admitted);
            }
        }
    }
    Remote::Admitted(admitted)
}

#[cfg(not(feature = "redis"))]
async fn check_remote(_remote: Vec<(Arc<TierState>, String)>, _keep: bool) -> Remote {
    Remote::Admitted(Vec::new())
}

/// A request waiting for the remote tiers.
struct Pending<S, ReqBody> {
    request: Request<ReqBody>,
    service: S,
    applied: Vec<(Arc<TierState>, Decision)>,
    penalties: Vec<(Arc<TierState>, u64)>,
    protocol: Protocol,
    /// The local tiers that charged the request (given back if a remote tier refuses).
    charged: u64,
    shared: Arc<Shared>,
}

pin_project! {
    /// The response future of [`RateLimit`].
    pub struct ResponseFuture<S, ReqBody, B>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody, B>,
    }
}

type Checking = Pin<Box<dyn Future<Output = Remote> + Send>>;

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, B>
    where
        S: Service<Request<ReqBody>>,
    {
        Calling {
            #[pin]
            future: S::Future,
            after: Option<Box<After>>,
        },
        Remote {
            checking: Checking,
            pending: Option<Box<Pending<S, ReqBody>>>,
        },
        Refused {
            response: Option<Box<Response<ResponseBody<B>>>>,
        },
    }
}

impl<S, ReqBody, B> fmt::Debug for ResponseFuture<S, ReqBody, B>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, ReqBody, B> Future for ResponseFuture<S, ReqBody, B>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
{
    type Output = Result<Response<ResponseBody<B>>, S::Error>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The admitted path stays small; waiting on remote tiers and refusals are elsewhere.
        if let StateProj::Calling { future, after } = self.as_mut().project().state.project() {
            let response = ready!(future.poll(cx))?;
            return Poll::Ready(Ok(match after.take() {
                None => response.map(ResponseBody::inner),
                Some(after) => finish(response, *after),
            }));
        }
        self.poll_other(cx)
    }
}

impl<S, ReqBody, B> ResponseFuture<S, ReqBody, B>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
{
    /// The states before the call: remote tiers deciding, or a refusal.
    #[inline(never)]
    fn poll_other(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response<ResponseBody<B>>, S::Error>> {
        let next = match self.as_mut().project().state.project() {
            StateProj::Refused { response } => {
                return Poll::Ready(Ok(*response
                    .take()
                    .expect("ResponseFuture polled after completion")));
            }
            StateProj::Remote { checking, pending } => {
                let outcome = ready!(checking.as_mut().poll(cx));
                let pending = *pending
                    .take()
                    .expect("ResponseFuture polled after completion");
                match outcome {
                    Remote::Refused(state, decision) => {
                        refund(&pending.shared, pending.charged, &pending.request);
                        State::Refused {
                            response: Some(Box::new(refuse(&state, &decision, pending.protocol))),
                        }
                    }
                    Remote::Unavailable => {
                        refund(&pending.shared, pending.charged, &pending.request);
                        State::Refused {
                            response: Some(Box::new(unavailable(pending.protocol))),
                        }
                    }
                    Remote::Admitted(remote) => {
                        let mut applied = pending.applied;
                        applied.extend(remote);
                        let mut service = pending.service;
                        State::Calling {
                            future: service.call(pending.request),
                            after: after(&applied, pending.penalties),
                        }
                    }
                }
            }
            // `poll` handles this state first.
            StateProj::Calling { .. } => return self.poll(cx),
        };
        self.as_mut().project().state.set(next);
        self.poll(cx)
    }
}

/// A copy of the response's head, for a classifier.
fn head_of<B>(response: &Response<B>) -> Response<()> {
    let mut head = Response::new(());
    *head.status_mut() = response.status();
    *head.version_mut() = response.version();
    *head.headers_mut() = response.headers().clone();
    head
}

/// Charges the penalty tiers for a failure and adds the headers.
fn finish<B>(mut response: Response<B>, after: After) -> Response<ResponseBody<B>> {
    let mut head: Option<Response<()>> = None;
    for (state, key) in &after.penalties {
        let outcome = match &state.tier.penalty {
            Some(Penalty::Status(judge)) => judge(response.status()),
            Some(Penalty::Classify(judge)) => judge(head.get_or_insert_with(|| head_of(&response))),
            None => continue,
        };
        if outcome == Outcome::Failure {
            state.metrics.penalized();
            state.limiter.load().charge(*key, state.tier.cost);
        }
    }
    if let Some((policy, limit)) = after.headers {
        // A layer inside refused: its tier's fields are what the client must see. Else the
        // fields of every layer the request passed combine (the draft allows several
        // policies), inner layers' first.
        if response.extensions().get::<RefusedHere>().is_none() {
            let headers = response.headers_mut();
            combine(headers, &RATELIMIT_POLICY, policy);
            combine(headers, &RATELIMIT, limit);
        }
    }
    response.map(ResponseBody::inner)
}

/// `503`: a tier that fails closed could not reach its backend.
fn unavailable<B>(protocol: Protocol) -> Response<ResponseBody<B>> {
    Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .with_type(types::UNAVAILABLE)
        .with_title("Rate limit unavailable")
        .with_detail("the rate limit's shared store did not answer; try again shortly")
        .into_response_for(protocol)
}
