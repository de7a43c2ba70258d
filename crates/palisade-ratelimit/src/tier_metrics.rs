//! The tiers' metrics (feature `metrics`; without it every call here is empty), listed in the
//! crate's docs.
//!
//! A tier registers its metrics on its first request, with the recorder installed then (install
//! it before serving); the hot path then adds to a counter it already holds.

#[cfg(feature = "metrics")]
use std::sync::OnceLock;

#[cfg(feature = "metrics")]
use metrics::{Counter, Gauge, Histogram};

/// One tier's metrics.
#[derive(Debug)]
pub(crate) struct TierMetrics {
    #[cfg(feature = "metrics")]
    name: String,
    #[cfg(feature = "metrics")]
    handles: OnceLock<Handles>,
    /// Registered by the first Redis check (local tiers show no Redis series).
    #[cfg(feature = "metrics")]
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    redis: OnceLock<(Counter, Histogram)>,
    #[cfg(feature = "metrics")]
    checks: std::sync::atomic::AtomicU32,
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
struct Handles {
    admitted: Counter,
    refused: Counter,
    shadow_refused: Counter,
    keyless_refused: Counter,
    unavailable: Counter,
    keyless: Counter,
    penalties: Counter,
    keys: Gauge,
}

/// A tier's decision on one request.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Decided {
    Admitted,
    Refused,
    ShadowRefused,
    KeylessRefused,
    /// A remote backend did not answer (only tiers kept in Redis).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Unavailable,
}

impl TierMetrics {
    pub(crate) fn new(tier: &str) -> Self {
        #[cfg(feature = "metrics")]
        return Self {
            name: tier.to_owned(),
            handles: OnceLock::new(),
            redis: OnceLock::new(),
            checks: std::sync::atomic::AtomicU32::new(0),
        };
        #[cfg(not(feature = "metrics"))]
        {
            let _ = tier;
            Self {}
        }
    }

    #[cfg(feature = "metrics")]
    #[inline]
    fn handles(&self) -> &Handles {
        self.handles.get_or_init(|| {
            let requests = |outcome: &'static str| {
                metrics::counter!(
                    "palisade_ratelimit_requests_total",
                    "tier" => self.name.clone(),
                    "outcome" => outcome
                )
            };
            let tier = || self.name.clone();
            Handles {
                admitted: requests("admitted"),
                refused: requests("refused"),
                shadow_refused: requests("shadow_refused"),
                keyless_refused: requests("keyless_refused"),
                unavailable: requests("unavailable"),
                keyless: metrics::counter!("palisade_ratelimit_keyless_total", "tier" => tier()),
                penalties: metrics::counter!("palisade_ratelimit_penalties_total", "tier" => tier()),
                keys: metrics::gauge!("palisade_ratelimit_keys", "tier" => tier()),
            }
        })
    }

    /// Counts the tier's decision.
    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(clippy::unused_self, unused_variables))]
    pub(crate) fn decided(&self, decided: Decided) {
        #[cfg(feature = "metrics")]
        {
            let handles = self.handles();
            match decided {
                Decided::Admitted => &handles.admitted,
                Decided::Refused => &handles.refused,
                Decided::ShadowRefused => &handles.shadow_refused,
                Decided::KeylessRefused => &handles.keyless_refused,
                Decided::Unavailable => &handles.unavailable,
            }
            .increment(1);
        }
    }

    /// Counts a request without the tier's key.
    #[cfg_attr(not(feature = "metrics"), allow(clippy::unused_self))]
    pub(crate) fn keyless(&self) {
        #[cfg(feature = "metrics")]
        self.handles().keyless.increment(1);
    }

    /// Counts a failure a penalty tier charged.
    #[cfg_attr(not(feature = "metrics"), allow(clippy::unused_self))]
    pub(crate) fn penalized(&self) {
        #[cfg(feature = "metrics")]
        self.handles().penalties.increment(1);
    }

    /// Records one Redis check: how long it took, and whether it failed.
    #[cfg_attr(
        not(feature = "metrics"),
        allow(clippy::unused_self, unused_variables, dead_code)
    )]
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn redis_checked(&self, took: std::time::Duration, failed: bool) {
        #[cfg(feature = "metrics")]
        {
            let (errors, seconds) = self.redis.get_or_init(|| {
                (
                    metrics::counter!(
                        "palisade_ratelimit_backend_errors_total",
                        "tier" => self.name.clone()
                    ),
                    metrics::histogram!(
                        "palisade_ratelimit_redis_seconds",
                        "tier" => self.name.clone()
                    ),
                )
            });
            seconds.record(took.as_secs_f64());
            if failed {
                errors.increment(1);
            }
        }
    }

    /// Counts a local check, setting the key-count gauge to `len()` on each of the first 256
    /// checks, then every 4096.
    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(clippy::unused_self, unused_variables))]
    pub(crate) fn sample_keys(&self, len: impl FnOnce() -> usize) {
        #[cfg(feature = "metrics")]
        let checks = self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if checks < 256 || checks.trailing_zeros() >= 12 {
            #[allow(clippy::cast_precision_loss, reason = "a gauge")]
            self.handles().keys.set(len() as f64);
        }
    }
}

/// A client-side limiter's metrics: `palisade_ratelimit_client_calls_total{limiter,outcome}`
/// (`immediate`, `delayed`, `refused`) and `palisade_ratelimit_client_wait_seconds{limiter}`
/// (the wait of each delayed call).
#[derive(Debug)]
pub(crate) struct ClientMetrics {
    #[cfg(feature = "metrics")]
    name: String,
    #[cfg(feature = "metrics")]
    handles: OnceLock<ClientHandles>,
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
struct ClientHandles {
    immediate: Counter,
    delayed: Counter,
    refused: Counter,
    wait_seconds: Histogram,
}

impl ClientMetrics {
    pub(crate) fn new(limiter: &str) -> Self {
        #[cfg(feature = "metrics")]
        return Self {
            name: limiter.to_owned(),
            handles: OnceLock::new(),
        };
        #[cfg(not(feature = "metrics"))]
        {
            let _ = limiter;
            Self {}
        }
    }

    /// Counts a call: sent at once (`wait` zero), after `wait`, or refused (`None`).
    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(clippy::unused_self, unused_variables))]
    pub(crate) fn called(&self, wait: Option<std::time::Duration>) {
        #[cfg(feature = "metrics")]
        {
            let handles = self.handles.get_or_init(|| {
                let calls = |outcome: &'static str| {
                    metrics::counter!(
                        "palisade_ratelimit_client_calls_total",
                        "limiter" => self.name.clone(),
                        "outcome" => outcome
                    )
                };
                ClientHandles {
                    immediate: calls("immediate"),
                    delayed: calls("delayed"),
                    refused: calls("refused"),
                    wait_seconds: metrics::histogram!(
                        "palisade_ratelimit_client_wait_seconds",
                        "limiter" => self.name.clone()
                    ),
                }
            });
            match wait {
                Some(wait) if wait.is_zero() => handles.immediate.increment(1),
                Some(wait) => {
                    handles.delayed.increment(1);
                    handles.wait_seconds.record(wait.as_secs_f64());
                }
                None => handles.refused.increment(1),
            }
        }
    }
}
