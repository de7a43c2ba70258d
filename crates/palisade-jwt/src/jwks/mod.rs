//! Keys fetched from a JWKS URL or found through OIDC discovery, cached, refreshed in the
//! background, and re-fetched for an unknown `kid` at most once per cooldown.
//!
//! - **Lifetime.** A document's keys are fresh for its `Cache-Control` `max-age` (or
//!   `s-maxage`), held within [`JwksPolicy::min_lifetime`] and [`JwksPolicy::max_lifetime`];
//!   [`JwksPolicy::default_lifetime`] without one. A background task refreshes them when three
//!   quarters of that has passed.
//! - **Unknown `kid`.** A token naming a key the set lacks (a rotation the cache has not seen)
//!   starts one fetch, which every concurrent request with an unknown `kid` shares. After it,
//!   no other such fetch starts for [`JwksPolicy::unknown_kid_cooldown`]: requests with
//!   unknown `kid`s in that time are refused at once, without waiting. The `kid` itself never
//!   reaches a URL, a log line's field of its own, or anything fetched.
//! - **Outages.** When a refresh fails, the last good keys keep serving for
//!   [`JwksPolicy::stale_for`] past their lifetime; then verification fails closed (`503`)
//!   until a fetch succeeds. Fetches are bounded by [`JwksPolicy::fetch_timeout`] and
//!   [`JwksPolicy::max_document_bytes`].
//! - **Transport.** HTTPS is required, except for loopback addresses or with
//!   [`JwksSourceBuilder::allow_insecure_http`]. The fetcher is a tower `Service`
//!   ([`JwksSourceBuilder::fetcher`]), so it can be wrapped in Palisade's timeout, retry and
//!   breaker; by default hyper-util over rustls with the system's roots (feature `https`).
//! - **OIDC.** [`JwksSource::oidc`] reads `<issuer>/.well-known/openid-configuration`, refuses
//!   a document whose `issuer` is not exactly the configured one, and takes its `jwks_uri`
//!   (held to the same transport rule).
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod cache_control;
mod fetch;
pub mod oidc;

use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use palisade_core::BuildError;
use tokio::sync::watch;
use tokio::time::Instant;
use tower_service::Service;

pub use self::fetch::FetchError;
use self::fetch::{Fetch, ServiceFetch};
pub use self::oidc::DiscoveryError;
use crate::key::{JwkOptions, JwtKeySet, KeyError};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a JWKS is cached and fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct JwksPolicy {
    /// The shortest time keys are used before a refresh, whatever `Cache-Control` says
    /// (default 60 s): a `max-age=0` cannot make every request a fetch.
    #[cfg_attr(feature = "serde", serde(with = "palisade_core::serde_duration"))]
    pub min_lifetime: Duration,
    /// The longest (default 24 h).
    #[cfg_attr(feature = "serde", serde(with = "palisade_core::serde_duration"))]
    pub max_lifetime: Duration,
    /// Without `Cache-Control` (default 10 min).
    #[cfg_attr(feature = "serde", serde(with = "palisade_core::serde_duration"))]
    pub default_lifetime: Duration,
    /// After a fetch for an unknown `kid`, how long before another may start (default 30 s).
    #[cfg_attr(feature = "serde", serde(with = "palisade_core::serde_duration"))]
    pub unknown_kid_cooldown: Duration,
    /// How long past their lifetime the last good keys serve while refreshes fail (default
    /// 30 min); then verification fails closed.
    #[cfg_attr(feature = "serde", serde(with = "palisade_core::serde_duration"))]
    pub stale_for: Duration,
    /// The most one fetch may take (default 5 s).
    #[cfg_attr(feature = "serde", serde(with = "palisade_core::serde_duration"))]
    pub fetch_timeout: Duration,
    /// The largest document accepted (default 256 KiB).
    pub max_document_bytes: usize,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        Self {
            min_lifetime: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(24 * 3600),
            default_lifetime: Duration::from_secs(600),
            unknown_kid_cooldown: Duration::from_secs(30),
            stale_for: Duration::from_secs(1800),
            fetch_timeout: Duration::from_secs(5),
            max_document_bytes: 256 * 1024,
        }
    }
}

impl JwksPolicy {
    fn check(&self) -> Result<(), BuildError> {
        if self.min_lifetime > self.max_lifetime {
            return Err(BuildError::new(
                "min_lifetime",
                "must not exceed max_lifetime",
            ));
        }
        if self.max_lifetime.is_zero() {
            return Err(BuildError::new("max_lifetime", "must be more than zero"));
        }
        if self.fetch_timeout.is_zero() {
            return Err(BuildError::new("fetch_timeout", "must be more than zero"));
        }
        if self.max_document_bytes < 64 {
            return Err(BuildError::new("max_document_bytes", "must be at least 64"));
        }
        Ok(())
    }

    fn lifetime(&self, granted: Option<Duration>) -> Duration {
        granted
            .unwrap_or(self.default_lifetime)
            .clamp(self.min_lifetime, self.max_lifetime)
    }
}

/// Why keys could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksError {
    /// The fetch failed.
    Fetch(FetchError),
    /// The document is not a usable JWK set.
    Document(KeyError),
    /// OIDC discovery failed.
    Discovery(DiscoveryError),
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fetch(e) => write!(f, "fetching the key set: {e}"),
            Self::Document(e) => write!(f, "reading the key set: {e}"),
            Self::Discovery(e) => write!(f, "OIDC discovery: {e}"),
        }
    }
}

impl std::error::Error for JwksError {}

/// Whether `uri` may be fetched: HTTPS, or HTTP to a loopback host, or HTTP when allowed.
pub(crate) fn transport_allowed(uri: &Uri, allow_http: bool) -> bool {
    match uri.scheme_str() {
        Some("https") => uri.host().is_some(),
        Some("http") => allow_http || uri.host().is_some_and(is_loopback_host),
        _ => false,
    }
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Where the keys come from.
enum Target {
    Jwks(Uri),
    Oidc { issuer: String, discovery: Uri },
}

/// Keys loaded, with their lifetime.
struct Loaded {
    keys: Arc<JwtKeySet>,
    body: Bytes,
    fresh_until: Instant,
    usable_until: Instant,
}

/// What the fetch side knows, behind a lock never held across an `.await`.
#[derive(Default)]
struct Control {
    /// The fetch in progress: completes (turns `true`) when it ends, whatever its outcome.
    in_flight: Option<watch::Receiver<bool>>,
    /// When the last fetch started on behalf of a request (unknown `kid`, or no usable keys).
    last_request_fetch: Option<Instant>,
    /// The discovered `jwks_uri` (OIDC).
    jwks_uri: Option<Uri>,
    refresher: bool,
    failures: u32,
}

struct Inner {
    target: Target,
    policy: JwksPolicy,
    options: JwkOptions,
    allow_http: bool,
    fetcher: Box<dyn Fetch>,
    state: ArcSwapOption<Loaded>,
    control: Mutex<Control>,
}

/// A cached, refreshed JWKS; see the [module documentation](self). Cheap to clone: clones
/// share the cache.
#[derive(Clone)]
pub struct JwksSource {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.inner.target {
            Target::Jwks(uri) => uri.to_string(),
            Target::Oidc { issuer, .. } => format!("oidc:{issuer}"),
        };
        f.debug_struct("JwksSource")
            .field("target", &target)
            .field("keys", &self.keys().map(|k| k.len()))
            .finish_non_exhaustive()
    }
}

/// Builds a [`JwksSource`].
#[must_use]
pub struct JwksSourceBuilder {
    target: Result<Target, BuildError>,
    policy: JwksPolicy,
    options: JwkOptions,
    allow_http: bool,
    fetcher: Option<Box<dyn Fetch>>,
}

impl fmt::Debug for JwksSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksSourceBuilder")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl JwksSource {
    /// Keys from a JWKS URL.
    pub fn builder(jwks_url: &str) -> JwksSourceBuilder {
        let target = jwks_url
            .parse::<Uri>()
            .map(Target::Jwks)
            .map_err(|_| BuildError::new("jwks_url", "not a URL"));
        JwksSourceBuilder::new(target)
    }

    /// Keys found through OIDC discovery from `issuer` (its `jwks_uri`).
    pub fn oidc(issuer: &str) -> JwksSourceBuilder {
        let target = oidc::discovery_uri(issuer)
            .map(|discovery| Target::Oidc {
                issuer: issuer.to_owned(),
                discovery,
            })
            .map_err(|_| BuildError::new("issuer", "not an http(s) URL"));
        JwksSourceBuilder::new(target)
    }

    /// The keys now usable (fresh, or stale within [`JwksPolicy::stale_for`]), if any.
    pub fn keys(&self) -> Option<Arc<JwtKeySet>> {
        let loaded = self.inner.state.load_full()?;
        (Instant::now() < loaded.usable_until).then(|| loaded.keys.clone())
    }

    /// Fetches the keys now (for start-up: a bad URL, issuer or document shows at once), and
    /// starts the background refresh. Answers how many keys are usable.
    ///
    /// # Errors
    ///
    /// [`JwksError`] saying what failed; the source still works, and retries on demand.
    pub async fn load(&self) -> Result<usize, JwksError> {
        let outcome = self.inner.clone().fetch_now("load").await;
        outcome.map(|keys| keys.len())
    }

    /// The usable keys, fetching them first if none are held (a first request, or after the
    /// stale window). Requests share that fetch; after a failed one, the next waits for the
    /// cooldown, and requests in between fail at once.
    pub(crate) async fn keys_or_fetch(&self) -> Option<Arc<JwtKeySet>> {
        if let Some(keys) = self.keys() {
            self.inner.clone().refresh_if_due();
            return Some(keys);
        }
        let wait = self.inner.clone().request_fetch("no_keys")?;
        wait_done(wait).await;
        self.keys()
    }

    /// After a token named a `kid` the keys lack: joins the fetch in progress, or starts one
    /// unless one started within the cooldown, and answers the keys after it. `None` at once
    /// when cooling down.
    pub(crate) async fn refetch_for_unknown_kid(&self) -> Option<Arc<JwtKeySet>> {
        let wait = self.inner.clone().request_fetch("unknown_kid")?;
        wait_done(wait).await;
        self.keys()
    }
}

async fn wait_done(mut wait: watch::Receiver<bool>) {
    // Err: the fetch task ended without sending (it cannot, but then there is nothing to wait
    // for either).
    let _ = wait.wait_for(|done| *done).await;
}

impl JwksSourceBuilder {
    fn new(target: Result<Target, BuildError>) -> Self {
        Self {
            target,
            policy: JwksPolicy::default(),
            options: JwkOptions::default(),
            allow_http: false,
            fetcher: None,
        }
    }

    /// The cache and fetch policy.
    pub fn policy(mut self, policy: JwksPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How JWKs are read (the algorithm of RSA keys without `alg`). Symmetric keys are never
    /// accepted from a fetched set, whatever `options` say.
    pub fn jwk_options(mut self, options: &JwkOptions) -> Self {
        self.options = JwkOptions {
            allow_symmetric: false,
            rsa_alg: options.rsa_alg,
        };
        self
    }

    /// Allows plain HTTP to hosts other than loopback (default: no). Keys fetched without TLS
    /// can be replaced by anyone on the path.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// The HTTP client: any service from `Request<Full<Bytes>>` to `Response<B>`, for example
    /// a hyper-util client wrapped in Palisade's timeout, retry and breaker layers.
    pub fn fetcher<S, B>(mut self, service: S) -> Self
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        self.fetcher = Some(Box::new(ServiceFetch { service }));
        self
    }

    /// Checks the settings and builds the source. Nothing is fetched until the first request
    /// or [`JwksSource::load`].
    ///
    /// # Errors
    ///
    /// [`BuildError`] for a URL that is not HTTPS (outside loopback, unless allowed), a policy
    /// out of range, or no default client (no TLS roots).
    pub fn build(self) -> Result<JwksSource, BuildError> {
        let target = self.target?;
        self.policy.check()?;
        let url = match &target {
            Target::Jwks(uri) => uri,
            Target::Oidc { discovery, .. } => discovery,
        };
        if !transport_allowed(url, self.allow_http) {
            return Err(BuildError::new(
                "url",
                "must be https (plain http only to a loopback address, or with allow_insecure_http)",
            ));
        }
        let fetcher = match self.fetcher {
            Some(fetcher) => fetcher,
            None => fetch::default_client().map_err(|e| BuildError::new("fetcher", e))?,
        };
        Ok(JwksSource {
            inner: Arc::new(Inner {
                target,
                policy: self.policy,
                options: self.options,
                allow_http: self.allow_http,
                fetcher,
                state: ArcSwapOption::empty(),
                control: Mutex::new(Control::default()),
            }),
        })
    }
}

impl Inner {
    fn control(&self) -> std::sync::MutexGuard<'_, Control> {
        // A panic while holding it cannot leave the fields inconsistent: each is set whole.
        self.control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Joins the fetch in progress, or starts one if the request cooldown allows; `None` when
    /// cooling down.
    fn request_fetch(self: Arc<Self>, trigger: &'static str) -> Option<watch::Receiver<bool>> {
        let mut control = self.control();
        if let Some(wait) = &control.in_flight {
            return Some(wait.clone());
        }
        let now = Instant::now();
        if control
            .last_request_fetch
            .is_some_and(|at| now < at + self.policy.unknown_kid_cooldown)
        {
            count_fetch(trigger, "cooling_down");
            return None;
        }
        control.last_request_fetch = Some(now);
        Some(self.clone().start_fetch(&mut control, trigger))
    }

    /// Starts a background refresh when the keys are past three quarters of their lifetime.
    fn refresh_if_due(self: Arc<Self>) {
        let Some(loaded) = self.state.load_full() else {
            return;
        };
        let now = Instant::now();
        if now < loaded.fresh_until {
            return;
        }
        let mut control = self.control();
        if control.in_flight.is_none() {
            let _ = self.clone().start_fetch(&mut control, "expired");
        }
    }

    /// Spawns a fetch; the caller holds the control lock and saw none in flight.
    fn start_fetch(
        self: Arc<Self>,
        control: &mut Control,
        trigger: &'static str,
    ) -> watch::Receiver<bool> {
        let (done, wait) = watch::channel(false);
        control.in_flight = Some(wait.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = self.fetch_traced(trigger).await;
            self.finish(&outcome, trigger, started.elapsed());
            let _ = done.send(true);
        });
        wait
    }

    /// Fetches now, sharing a fetch in progress; answers the outcome of the fetch waited for.
    async fn fetch_now(
        self: Arc<Self>,
        trigger: &'static str,
    ) -> Result<Arc<JwtKeySet>, JwksError> {
        let joined = {
            let control = self.control();
            control.in_flight.clone()
        };
        if let Some(wait) = joined {
            wait_done(wait).await;
        }
        let started = Instant::now();
        let outcome = self.fetch_traced(trigger).await;
        self.finish(&outcome, trigger, started.elapsed());
        outcome
    }

    /// [`fetch_and_store`](Self::fetch_and_store) in a span of its own.
    async fn fetch_traced(&self, trigger: &'static str) -> Result<Arc<JwtKeySet>, JwksError> {
        use tracing::Instrument;
        self.fetch_and_store()
            .instrument(tracing::info_span!("palisade.jwt.jwks_fetch", trigger))
            .await
    }

    /// Records the outcome of a fetch, starts the refresher after the first success.
    fn finish(
        self: &Arc<Self>,
        outcome: &Result<Arc<JwtKeySet>, JwksError>,
        trigger: &'static str,
        took: Duration,
    ) {
        let start_refresher = {
            let mut control = self.control();
            control.in_flight = None;
            match outcome {
                Ok(_) => control.failures = 0,
                Err(_) => control.failures = control.failures.saturating_add(1),
            }
            let start = outcome.is_ok() && !control.refresher;
            if start {
                control.refresher = true;
            }
            start
        };
        match outcome {
            Ok(keys) => {
                count_fetch(trigger, "ok");
                record_fetch("ok", took);
                tracing::debug!(keys = keys.len(), trigger, "JWKS fetched");
            }
            Err(error) => {
                count_fetch(trigger, "error");
                record_fetch("error", took);
                tracing::warn!(%error, trigger, "JWKS fetch failed; the last good keys serve until their stale window ends");
            }
        }
        if start_refresher {
            tokio::spawn(refresh_loop(Arc::downgrade(self)));
        }
    }

    /// One fetch (after discovery, for OIDC), stored on success.
    async fn fetch_and_store(&self) -> Result<Arc<JwtKeySet>, JwksError> {
        let uri = self.jwks_uri().await?;
        let fetched = tokio::time::timeout(
            self.policy.fetch_timeout,
            self.fetcher.fetch(uri, self.policy.max_document_bytes),
        )
        .await
        .map_err(|_| JwksError::Fetch(FetchError::Timeout))?
        .map_err(|error| {
            if error == FetchError::Status(404) {
                // A moved key set: discover again next time.
                self.control().jwks_uri = None;
            }
            JwksError::Fetch(error)
        })?;
        let previous = self.state.load_full();
        let keys = match &previous {
            // The same document: the same keys (verified-token cache entries stay valid).
            Some(loaded) if loaded.body == fetched.body => loaded.keys.clone(),
            _ => {
                let keys = JwtKeySet::from_jwks(&fetched.body, &self.options)
                    .map_err(JwksError::Document)?;
                for skipped in keys.skipped() {
                    tracing::debug!(kid = ?skipped.kid, error = %skipped.error, "JWK skipped");
                }
                Arc::new(keys)
            }
        };
        let lifetime = self.policy.lifetime(fetched.lifetime);
        let now = Instant::now();
        self.state.store(Some(Arc::new(Loaded {
            keys: keys.clone(),
            body: fetched.body,
            fresh_until: now + lifetime,
            usable_until: now + lifetime + self.policy.stale_for,
        })));
        Ok(keys)
    }

    /// The JWKS URL: configured, or discovered once.
    async fn jwks_uri(&self) -> Result<Uri, JwksError> {
        let (issuer, discovery) = match &self.target {
            Target::Jwks(uri) => return Ok(uri.clone()),
            Target::Oidc { issuer, discovery } => (issuer, discovery),
        };
        if let Some(uri) = self.control().jwks_uri.clone() {
            return Ok(uri);
        }
        let fetched = tokio::time::timeout(
            self.policy.fetch_timeout,
            self.fetcher
                .fetch(discovery.clone(), self.policy.max_document_bytes),
        )
        .await
        .map_err(|_| JwksError::Fetch(FetchError::Timeout))?
        .map_err(JwksError::Fetch)?;
        let uri =
            oidc::jwks_uri(&fetched.body, issuer, self.allow_http).map_err(JwksError::Discovery)?;
        self.control().jwks_uri = Some(uri.clone());
        Ok(uri)
    }
}

/// Refreshes the keys at three quarters of their lifetime, and after a failure retries with a
/// doubling delay (1 s to 5 min); ends when the source is dropped.
async fn refresh_loop(inner: Weak<Inner>) {
    loop {
        let delay = {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let failures = inner.control().failures;
            if failures > 0 {
                Duration::from_secs(1)
                    .saturating_mul(1 << (failures - 1).min(9))
                    .min(Duration::from_secs(300))
            } else {
                match inner.state.load_full() {
                    Some(loaded) => {
                        let now = Instant::now();
                        let lifetime = loaded.fresh_until.saturating_duration_since(now);
                        // Three quarters of what is left: early, never late.
                        lifetime.mul_f64(0.75).max(Duration::from_millis(100))
                    }
                    None => Duration::from_secs(5),
                }
            }
        };
        tokio::time::sleep(delay).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let wait = {
            let mut control = inner.control();
            match &control.in_flight {
                Some(wait) => wait.clone(),
                None => inner.clone().start_fetch(&mut control, "refresh"),
            }
        };
        drop(inner);
        wait_done(wait).await;
    }
}

/// `palisade_jwt_jwks_fetch_seconds{outcome}`: one fetch (with discovery, when it ran).
fn record_fetch(outcome: &'static str, took: Duration) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("palisade_jwt_jwks_fetch_seconds", "outcome" => outcome)
        .record(took.as_secs_f64());
    #[cfg(not(feature = "metrics"))]
    let _ = (outcome, took);
}

fn count_fetch(trigger: &'static str, outcome: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("palisade_jwt_jwks_fetches_total", "trigger" => trigger, "outcome" => outcome)
        .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (trigger, outcome);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_rule() {
        let ok = |url: &str, allow: bool| transport_allowed(&url.parse().unwrap(), allow);
        assert!(ok("https://idp.example/jwks", false));
        assert!(ok("http://127.0.0.1:8080/jwks", false));
        assert!(ok("http://[::1]:8080/jwks", false));
        assert!(ok("http://localhost/jwks", false));
        assert!(!ok("http://idp.example/jwks", false));
        assert!(ok("http://idp.example/jwks", true));
        assert!(!ok("ftp://idp.example/jwks", true));
        assert!(!ok("/jwks", true));
        assert!(!ok("http://127.0.0.1.evil.example/jwks", false));
    }

    #[test]
    fn lifetimes_are_clamped() {
        let policy = JwksPolicy::default();
        assert_eq!(policy.lifetime(None), Duration::from_secs(600));
        assert_eq!(
            policy.lifetime(Some(Duration::ZERO)),
            Duration::from_secs(60)
        );
        assert_eq!(
            policy.lifetime(Some(Duration::from_secs(10 * 24 * 3600))),
            Duration::from_secs(24 * 3600)
        );
        assert_eq!(
            policy.lifetime(Some(Duration::from_secs(3600))),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn policies_are_checked() {
        let bad = JwksPolicy {
            min_lifetime: Duration::from_secs(100),
            max_lifetime: Duration::from_secs(10),
            ..JwksPolicy::default()
        };
        assert_eq!(bad.check().unwrap_err().field(), "min_lifetime");
        assert!(
            JwksSource::builder("http://idp.example/jwks")
                .build()
                .is_err()
        );
        assert!(JwksSource::builder("not a url at all").build().is_err());
    }
}
