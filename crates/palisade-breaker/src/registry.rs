//! Keyed breakers: one [`Breaker`] per upstream (authority) or route, from a bounded registry.
//!
//! ```
//! use http::Request;
//! use palisade::breaker::{Breaker, BreakerRegistry, KeyedBreakerLayer};
//! use tower::{service_fn, Layer, ServiceExt};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//!
//! // One breaker per upstream host, at most 64 of them.
//! let registry = BreakerRegistry::new(Breaker::builder().name("upstream"), 64).unwrap();
//! let client = service_fn(|_: Request<()>| async {
//!     Ok::<_, std::io::Error>(http::Response::new("ok"))
//! });
//! let client = KeyedBreakerLayer::by_authority(registry.clone()).layer(client);
//!
//! registry.get("billing.internal:8443").force_open();
//! let refused = client.clone().oneshot(Request::get("http://billing.internal:8443/a").body(()).unwrap()).await;
//! assert!(refused.is_err());
//! let fine = client.oneshot(Request::get("http://search.internal/q").body(()).unwrap()).await;
//! assert_eq!(*fine.unwrap().body(), "ok");
//! # }
//! ```

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use palisade_core::{BuildError, Classify, HttpClassifier};
use tower_layer::Layer;
use tower_service::Service;

use crate::service::ResponseFuture;
use crate::{BoxError, Breaker, BreakerBuilder, BreakerState};

/// The longest key a registry keeps a breaker for; longer keys share the overflow breaker.
pub const MAX_KEY_LEN: usize = 256;

/// A bounded set of breakers built from one template, one per key.
///
/// Looking up a known key takes a shared read lock; adding a key costs the same however many
/// there are. When the registry is full, a new key evicts a closed breaker that was not used
/// since it was last looked at, oldest first (a second-chance clock over at most
/// [`EVICTION_SCAN`] breakers: an approximation of least recently used); open and half-open
/// breakers are never evicted (their state matters), and if none of those looked at can go,
/// the new key shares the registry's *overflow* breaker until room frees up. Keys longer than
/// [`MAX_KEY_LEN`] share the overflow breaker too.
///
/// Cloning is cheap and shares the registry.
#[derive(Clone)]
pub struct BreakerRegistry {
    inner: Arc<Inner>,
}

/// The most breakers one insertion looks at to find one to evict.
pub const EVICTION_SCAN: usize = 128;

struct Inner {
    template: BreakerBuilder,
    max: usize,
    entries: RwLock<Entries>,
    /// Counts insertions. A breaker's `last_used` is one past the count when it was last
    /// handed out, so a use after it was queued shows as `last_used > queued`.
    tick: AtomicU64,
    overflow: Breaker,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Box<str>, Breaker>,
    /// Every key, in the order it was queued, with the tick it was queued at: the clock the
    /// eviction walks from the front.
    clock: VecDeque<(Box<str>, u64)>,
}

impl std::fmt::Debug for BreakerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerRegistry")
            .field("breakers", &self.len())
            .field("max", &self.inner.max)
            .finish_non_exhaustive()
    }
}

impl BreakerRegistry {
    /// A registry of at most `max_breakers` breakers built like `template`, each named
    /// `<template name>:<key>`.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when the template is invalid, or `max_breakers` is zero.
    pub fn new(template: BreakerBuilder, max_breakers: usize) -> Result<Self, BuildError> {
        template.check()?;
        if max_breakers == 0 {
            return Err(BuildError::new("max_breakers", "must be at least 1"));
        }
        let overflow = Breaker::from_builder(
            template
                .clone()
                .name(format!("{}:(overflow)", template.name)),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                template,
                max: max_breakers,
                entries: RwLock::new(Entries::default()),
                tick: AtomicU64::new(0),
                overflow,
            }),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        self.inner
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The breaker for `key`, made on first use.
    pub fn get(&self, key: &str) -> Breaker {
        if let Some(breaker) = self.read().map.get(key) {
            let used = self.inner.tick.load(Ordering::Relaxed) + 1;
            let last = breaker.last_used();
            // A store only when it changes: most lookups between insertions write nothing.
            if last.load(Ordering::Relaxed) != used {
                last.store(used, Ordering::Relaxed);
            }
            return breaker.clone();
        }
        self.insert(key)
    }

    fn insert(&self, key: &str) -> Breaker {
        if key.len() > MAX_KEY_LEN {
            return self.inner.overflow.clone();
        }
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(breaker) = entries.map.get(key) {
            return breaker.clone();
        }
        if entries.map.len() >= self.inner.max && !self.evict_one(&mut entries) {
            drop(entries);
            tracing::warn!(
                max = self.inner.max,
                "breaker registry full of open breakers: a new key shares the overflow breaker"
            );
            return self.inner.overflow.clone();
        }
        let mut template = self
            .inner
            .template
            .clone()
            .name(format!("{}:{key}", self.inner.template.name));
        if let Some(seed) = template.seed {
            // Keyed breakers that tripped together must not probe together.
            let mut hasher = std::hash::BuildHasherDefault::<
                std::collections::hash_map::DefaultHasher,
            >::default()
            .build_hasher();
            hasher.write(key.as_bytes());
            template = template.seed(seed ^ hasher.finish());
        }
        let breaker = Breaker::from_builder(template);
        let tick = self.inner.tick.fetch_add(1, Ordering::Relaxed) + 1;
        breaker.last_used().store(tick, Ordering::Relaxed);
        entries.clock.push_back((key.into(), tick));
        entries.map.insert(key.into(), breaker.clone());
        #[cfg(feature = "metrics")]
        #[allow(clippy::cast_precision_loss, reason = "a gauge")]
        metrics::gauge!("palisade_breaker_keys", "breaker" => self.inner.template.name.to_string())
            .set(entries.map.len() as f64);
        breaker
    }

    /// Evicts one closed breaker not used since it was queued, looking at most at
    /// [`EVICTION_SCAN`] from the front of the clock; those used since go to the back with a
    /// second chance, open ones too. Whether one was evicted.
    fn evict_one(&self, entries: &mut Entries) -> bool {
        let tick = self.inner.tick.load(Ordering::Relaxed);
        let looks = EVICTION_SCAN.min(entries.clock.len());
        for _ in 0..looks {
            let Some((key, queued)) = entries.clock.pop_front() else {
                return false;
            };
            let Some(breaker) = entries.map.get(&key) else {
                // Stale: the key left already.
                continue;
            };
            let used_since = breaker.last_used().load(Ordering::Relaxed) > queued;
            if breaker.state() == BreakerState::Closed && !used_since {
                tracing::debug!(
                    key = %key,
                    "breaker registry full: evicting a closed breaker unused since it was queued"
                );
                entries.map.remove(&key);
                return true;
            }
            entries.clock.push_back((key, tick));
        }
        false
    }

    /// Every breaker with its key, for a readiness or status page (the overflow breaker is
    /// [`overflow`](Self::overflow)).
    pub fn breakers(&self) -> Vec<(String, Breaker)> {
        let mut all: Vec<_> = self
            .read()
            .map
            .iter()
            .map(|(key, breaker)| (key.to_string(), breaker.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The breaker shared by keys that found no room.
    pub fn overflow(&self) -> &Breaker {
        &self.inner.overflow
    }

    /// How many keyed breakers there are.
    pub fn len(&self) -> usize {
        self.read().map.len()
    }

    /// Whether there are none yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `breaker` belongs to this registry (test support).
    #[doc(hidden)]
    pub fn holds(&self, breaker: &Breaker) -> bool {
        self.read().map.values().any(|b| b.same(breaker))
    }
}

/// Picks the key of a request's breaker.
pub trait BreakerKey<Request> {
    /// The key; `None` uses the registry's overflow breaker.
    fn key<'a>(&self, request: &'a Request) -> Option<Cow<'a, str>>;
}

/// Keys by the request URI's authority (`host:port`), for a client of several upstreams.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByAuthority;

impl<B> BreakerKey<http::Request<B>> for ByAuthority {
    fn key<'a>(&self, request: &'a http::Request<B>) -> Option<Cow<'a, str>> {
        request
            .uri()
            .authority()
            .map(|authority| Cow::Borrowed(authority.as_str()))
    }
}

impl<F, Request> BreakerKey<Request> for F
where
    F: Fn(&Request) -> Option<String>,
{
    fn key<'a>(&self, request: &'a Request) -> Option<Cow<'a, str>> {
        self(request).map(Cow::Owned)
    }
}

/// Guards a service with one breaker per key; see [`BreakerRegistry`].
#[derive(Clone, Debug)]
pub struct KeyedBreakerLayer<K = ByAuthority, C = HttpClassifier> {
    registry: BreakerRegistry,
    key: K,
    classifier: C,
}

impl KeyedBreakerLayer {
    /// One breaker per upstream authority, judging calls with [`HttpClassifier`] (a `5xx`, a
    /// timeout or a transport error fails); `.classify_with` another for other services.
    pub fn by_authority(registry: BreakerRegistry) -> Self {
        Self {
            registry,
            key: ByAuthority,
            classifier: HttpClassifier::default(),
        }
    }
}

impl<K, C> KeyedBreakerLayer<K, C> {
    /// Keys with `key` instead (a [`BreakerKey`], or `Fn(&Request) -> Option<String>`).
    pub fn key_with<K2>(self, key: K2) -> KeyedBreakerLayer<K2, C> {
        KeyedBreakerLayer {
            registry: self.registry,
            key,
            classifier: self.classifier,
        }
    }

    /// Judges calls with `classifier` instead.
    pub fn classify_with<C2>(self, classifier: C2) -> KeyedBreakerLayer<K, C2> {
        KeyedBreakerLayer {
            registry: self.registry,
            key: self.key,
            classifier,
        }
    }

    /// The registry.
    pub fn registry(&self) -> &BreakerRegistry {
        &self.registry
    }
}

impl<S, K: Clone, C: Clone> Layer<S> for KeyedBreakerLayer<K, C> {
    type Service = KeyedBreaker<S, K, C>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedBreaker {
            inner,
            shared: Arc::new(KeyedShared {
                registry: self.registry.clone(),
                key: self.key.clone(),
                classifier: self.classifier.clone(),
            }),
        }
    }
}

/// The service of [`KeyedBreakerLayer`]. A clone is the inner service's clone and one reference
/// count.
#[derive(Debug)]
pub struct KeyedBreaker<S, K, C> {
    inner: S,
    shared: Arc<KeyedShared<K, C>>,
}

/// What every clone of one [`KeyedBreaker`] shares.
#[derive(Debug)]
struct KeyedShared<K, C> {
    registry: BreakerRegistry,
    key: K,
    classifier: C,
}

impl<S: Clone, K, C> Clone for KeyedBreaker<S, K, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, K, C> KeyedBreaker<S, K, C> {
    /// The registry.
    pub fn registry(&self) -> &BreakerRegistry {
        &self.shared.registry
    }

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

impl<S, K, C, Request> Service<Request> for KeyedBreaker<S, K, C>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    K: BreakerKey<Request>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let shared = &*self.shared;
        let breaker = match shared.key.key(&request) {
            Some(key) => shared.registry.get(&key),
            None => shared.registry.overflow().clone(),
        };
        match breaker.try_acquire() {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(request), permit, shared.classifier.clone())
            }
            Err(open) => {
                tracing::debug!(breaker = breaker.name(), "call refused: circuit open");
                ResponseFuture::rejected(open)
            }
        }
    }
}
