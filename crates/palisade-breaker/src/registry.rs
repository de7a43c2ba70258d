//! Keyed breakers: one [`Breaker`] per upstream (authority) or route, from a bounded registry.
//!
//! ```
//! use http::Request;
//! use palisade_breaker::{Breaker, BreakerRegistry, KeyedBreakerLayer};
//! use tower::{service_fn, Layer, ServiceExt};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//!
//! // One breaker per upstream host, at most 64 of them.
//! let registry = BreakerRegistry::new(Breaker::builder().name("upstream"), 64).unwrap();
//! let client = service_fn(|_: Request<()>| async { Ok::<_, std::io::Error>("ok") });
//! let client = KeyedBreakerLayer::by_authority(registry.clone()).layer(client);
//!
//! registry.get("billing.internal:8443").force_open();
//! let refused = client.clone().oneshot(Request::get("http://billing.internal:8443/a").body(()).unwrap()).await;
//! assert!(refused.is_err());
//! let fine = client.oneshot(Request::get("http://search.internal/q").body(()).unwrap()).await;
//! assert_eq!(fine.unwrap(), "ok");
//! # }
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use palisade_core::{BuildError, Classify, ErrorClassifier};
use tower_layer::Layer;
use tower_service::Service;

use crate::service::ResponseFuture;
use crate::{BoxError, Breaker, BreakerBuilder, BreakerState};

/// The longest key a registry keeps a breaker for; longer keys share the overflow breaker.
pub const MAX_KEY_LEN: usize = 256;

/// A bounded set of breakers built from one template, one per key.
///
/// Looking up a known key takes no lock (the map is replaced whole when a key is added). When
/// the registry is full, a new key evicts the least recently used breaker that is closed; if
/// every breaker is open or half-open, none is evicted (their state matters) and the new key
/// shares the registry's *overflow* breaker until room frees up. Keys longer than
/// [`MAX_KEY_LEN`] share the overflow breaker too.
///
/// Cloning is cheap and shares the registry.
#[derive(Clone)]
pub struct BreakerRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    template: BreakerBuilder,
    max: usize,
    map: ArcSwap<HashMap<Box<str>, Breaker>>,
    write: Mutex<()>,
    /// Counts insertions; a breaker's `last_used` is the count when it was last handed out.
    tick: AtomicU64,
    overflow: Breaker,
}

impl std::fmt::Debug for BreakerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerRegistry")
            .field("breakers", &self.inner.map.load().len())
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
                map: ArcSwap::from_pointee(HashMap::new()),
                write: Mutex::new(()),
                tick: AtomicU64::new(0),
                overflow,
            }),
        })
    }

    /// The breaker for `key`, made on first use.
    pub fn get(&self, key: &str) -> Breaker {
        if let Some(breaker) = self.inner.map.load().get(key) {
            let tick = self.inner.tick.load(Ordering::Relaxed);
            let used = breaker.last_used();
            if used.load(Ordering::Relaxed) != tick {
                used.store(tick, Ordering::Relaxed);
            }
            return breaker.clone();
        }
        self.insert(key)
    }

    fn insert(&self, key: &str) -> Breaker {
        if key.len() > MAX_KEY_LEN {
            return self.inner.overflow.clone();
        }
        let _guard = self
            .inner
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.inner.map.load_full();
        if let Some(breaker) = current.get(key) {
            return breaker.clone();
        }
        let mut next = (*current).clone();
        if next.len() >= self.inner.max {
            let evict = next
                .iter()
                .filter(|(_, breaker)| breaker.state() == BreakerState::Closed)
                .min_by_key(|(_, breaker)| breaker.last_used().load(Ordering::Relaxed))
                .map(|(key, _)| key.clone());
            let Some(evicted) = evict else {
                tracing::warn!(
                    max = self.inner.max,
                    "breaker registry full of open breakers: a new key shares the overflow breaker"
                );
                return self.inner.overflow.clone();
            };
            tracing::debug!(
                key = %evicted,
                "breaker registry full: evicting the least recently used closed breaker"
            );
            next.remove(&evicted);
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
        next.insert(key.into(), breaker.clone());
        self.inner.map.store(Arc::new(next));
        breaker
    }

    /// Every breaker with its key, for a readiness or status page (the overflow breaker is
    /// [`overflow`](Self::overflow)).
    pub fn breakers(&self) -> Vec<(String, Breaker)> {
        let mut all: Vec<_> = self
            .inner
            .map
            .load()
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
        self.inner.map.load().len()
    }

    /// Whether there are none yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `breaker` belongs to this registry (test support).
    #[doc(hidden)]
    pub fn holds(&self, breaker: &Breaker) -> bool {
        self.inner.map.load().values().any(|b| b.same(breaker))
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
pub struct KeyedBreakerLayer<K = ByAuthority, C = ErrorClassifier> {
    registry: BreakerRegistry,
    key: K,
    classifier: C,
}

impl KeyedBreakerLayer {
    /// One breaker per upstream authority, judging calls with [`ErrorClassifier`].
    pub fn by_authority(registry: BreakerRegistry) -> Self {
        Self {
            registry,
            key: ByAuthority,
            classifier: ErrorClassifier,
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
            registry: self.registry.clone(),
            key: self.key.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// The service of [`KeyedBreakerLayer`].
#[derive(Clone, Debug)]
pub struct KeyedBreaker<S, K, C> {
    inner: S,
    registry: BreakerRegistry,
    key: K,
    classifier: C,
}

impl<S, K, C> KeyedBreaker<S, K, C> {
    /// The registry.
    pub fn registry(&self) -> &BreakerRegistry {
        &self.registry
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
        let breaker = match self.key.key(&request) {
            Some(key) => self.registry.get(&key),
            None => self.registry.overflow().clone(),
        };
        match breaker.try_acquire() {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(request), permit, self.classifier.clone())
            }
            Err(open) => {
                tracing::debug!(breaker = breaker.name(), "call refused: circuit open");
                ResponseFuture::rejected(open)
            }
        }
    }
}
