//! The breaker's settings, checked once by [`BreakerBuilder::build`].

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use palisade_core::BuildError;

use crate::breaker::{Breaker, StateChange};

/// Which recent calls the failure and slow-call rates are computed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
pub enum Window {
    /// The last `calls` calls.
    Count {
        /// How many calls (1 to 1,048,576).
        calls: u32,
    },
    /// The calls of the last `length`, counted in `buckets` slices that expire one at a time.
    Time {
        /// How far back (at least 1 ms per bucket).
        #[cfg_attr(feature = "serde", serde(with = "palisade_core::serde_duration"))]
        length: Duration,
        /// How many slices (1 to 1,024): more is smoother, each costs a little when rates are
        /// read.
        buckets: u32,
    },
}

impl Window {
    /// The last `calls` calls. Its rates are judged once it holds
    /// [`minimum_calls`](BreakerBuilder::minimum_calls) of them, or all `calls` if that is fewer.
    pub fn count(calls: u32) -> Self {
        Self::Count { calls }
    }

    /// The calls of the last `length`, in `buckets` slices.
    pub fn time(length: Duration, buckets: u32) -> Self {
        Self::Time { length, buckets }
    }
}

impl Default for Window {
    fn default() -> Self {
        Self::count(100)
    }
}

/// A state-change hook.
pub(crate) type Hook = Arc<dyn Fn(&StateChange<'_>) + Send + Sync>;

/// Builds a [`Breaker`]; each method says what its setting does.
///
/// Every setting has a default safe for a client of one upstream: trip when at least half of
/// the last 100 calls failed, once 20 calls were seen; stay open 30 s; let 3 probes through in
/// half-open, for at most 30 s.
#[derive(Clone)]
#[must_use]
pub struct BreakerBuilder {
    pub(crate) name: Cow<'static, str>,
    pub(crate) window: Window,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) slow_call: Option<(Duration, f64)>,
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) minimum_calls: u32,
    pub(crate) wait: Duration,
    pub(crate) growth: Option<(f64, Duration)>,
    pub(crate) jitter: f64,
    pub(crate) half_open_probes: u32,
    pub(crate) half_open_max: Duration,
    pub(crate) seed: Option<u64>,
    pub(crate) hooks: Vec<Hook>,
}

impl std::fmt::Debug for BreakerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerBuilder")
            .field("name", &self.name)
            .field("window", &self.window)
            .field("failure_rate", &self.failure_rate)
            .field("slow_call", &self.slow_call)
            .field("consecutive_failures", &self.consecutive_failures)
            .field("minimum_calls", &self.minimum_calls)
            .field("wait", &self.wait)
            .field("growth", &self.growth)
            .field("jitter", &self.jitter)
            .field("half_open_probes", &self.half_open_probes)
            .field("half_open_max", &self.half_open_max)
            .field("hooks", &self.hooks.len())
            .finish_non_exhaustive()
    }
}

impl Default for BreakerBuilder {
    fn default() -> Self {
        Self {
            name: Cow::Borrowed("default"),
            window: Window::default(),
            failure_rate: Some(0.5),
            slow_call: None,
            consecutive_failures: None,
            minimum_calls: 20,
            wait: Duration::from_secs(30),
            growth: None,
            jitter: 0.0,
            half_open_probes: 3,
            half_open_max: Duration::from_secs(30),
            seed: None,
            hooks: Vec::new(),
        }
    }
}

/// The most calls a count window holds.
pub const MAX_WINDOW_CALLS: u32 = 1 << 20;
/// The most buckets a time window has.
pub const MAX_WINDOW_BUCKETS: u32 = 1024;
/// The most probes half-open admits.
pub const MAX_HALF_OPEN_PROBES: u32 = 10_000;

impl BreakerBuilder {
    /// The name in logs, metrics and state-change hooks (default `default`).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The window the rates are computed over (default: the last 100 calls).
    pub fn window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    /// Trips when at least this fraction of the window's calls failed (default `0.5`), once
    /// [`minimum_calls`](Self::minimum_calls) were seen. `None` turns the rate off (then any
    /// failed probe reopens a half-open breaker).
    pub fn failure_rate(mut self, rate: impl Into<Option<f64>>) -> Self {
        self.failure_rate = rate.into();
        self
    }

    /// Counts calls slower than `threshold` as slow, and trips when at least `rate` of the
    /// window's calls were slow (off by default; a slow call may also have failed). Detecting
    /// slow calls reads the clock twice per call.
    pub fn slow_calls(mut self, threshold: Duration, rate: f64) -> Self {
        self.slow_call = Some((threshold, rate));
        self
    }

    /// Trips after this many failures in a row, whatever the window says (off by default).
    pub fn consecutive_failures(mut self, failures: u32) -> Self {
        self.consecutive_failures = Some(failures);
        self
    }

    /// The rates are only judged once the window holds this many calls (default 20). With a
    /// count window smaller than this, the window's size is the minimum (as in resilience4j):
    /// `Window::count(10)` is judged from its tenth call, whatever this says, so a small
    /// window with the default minimum still trips.
    pub fn minimum_calls(mut self, calls: u32) -> Self {
        self.minimum_calls = calls;
        self
    }

    /// How long the breaker stays open before it lets probes through (default 30 s).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Each trip in a row (half-open failing again) multiplies the wait by `factor`, up to
    /// `max` (off by default). A breaker that closes starts again from [`wait`](Self::wait).
    pub fn wait_growth(mut self, factor: f64, max: Duration) -> Self {
        self.growth = Some((factor, max));
        self
    }

    /// Moves each wait by a uniform amount within `±fraction` of it (default 0), so breakers
    /// of many clients that tripped together do not probe together.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// Seeds the jitter, for reproducible tests (default: a random seed).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How many calls half-open lets through as probes (default 3). Others are rejected while
    /// they run; a probe that is cancelled gives its place back and is not counted.
    pub fn half_open_probes(mut self, probes: u32) -> Self {
        self.half_open_probes = probes;
        self
    }

    /// The longest the breaker stays half-open waiting for its probes (default 30 s); past it,
    /// the breaker opens again.
    pub fn half_open_max(mut self, max: Duration) -> Self {
        self.half_open_max = max;
        self
    }

    /// Calls `hook` after each state change, outside any lock, on the thread that caused it.
    pub fn on_state_change(
        mut self,
        hook: impl Fn(&StateChange<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Checks the settings and builds the breaker.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming the setting: `window`, `failure_rate`, `slow_calls`,
    /// `consecutive_failures`, `minimum_calls`, `wait`, `wait_growth`, `jitter`,
    /// `half_open_probes` or `half_open_max`.
    pub fn build(self) -> Result<Breaker, BuildError> {
        self.check()?;
        Ok(Breaker::from_builder(self))
    }

    pub(crate) fn check(&self) -> Result<(), BuildError> {
        match self.window {
            Window::Count { calls } => {
                if calls == 0 || calls > MAX_WINDOW_CALLS {
                    return Err(BuildError::new(
                        "window",
                        format!("a count window holds 1 to {MAX_WINDOW_CALLS} calls, not {calls}"),
                    ));
                }
            }
            Window::Time { length, buckets } => {
                if buckets == 0 || buckets > MAX_WINDOW_BUCKETS {
                    return Err(BuildError::new(
                        "window",
                        format!(
                            "a time window has 1 to {MAX_WINDOW_BUCKETS} buckets, not {buckets}"
                        ),
                    ));
                }
                if length < Duration::from_millis(u64::from(buckets)) {
                    return Err(BuildError::new(
                        "window",
                        "each bucket of a time window must last at least 1 ms",
                    ));
                }
            }
        }
        if let Some(rate) = self.failure_rate {
            check_rate("failure_rate", rate)?;
        }
        if let Some((threshold, rate)) = self.slow_call {
            check_rate("slow_calls", rate)?;
            if threshold.is_zero() {
                return Err(BuildError::new(
                    "slow_calls",
                    "the slow-call threshold must be more than zero",
                ));
            }
        }
        if self.consecutive_failures == Some(0) {
            return Err(BuildError::new(
                "consecutive_failures",
                "must be at least 1",
            ));
        }
        if self.failure_rate.is_none()
            && self.slow_call.is_none()
            && self.consecutive_failures.is_none()
        {
            return Err(BuildError::new(
                "failure_rate",
                "no trip condition: set a failure rate, a slow-call rate or consecutive failures",
            ));
        }
        if self.minimum_calls == 0 {
            return Err(BuildError::new("minimum_calls", "must be at least 1"));
        }
        if self.wait.is_zero() {
            return Err(BuildError::new("wait", "must be more than zero"));
        }
        if let Some((factor, max)) = self.growth {
            if !factor.is_finite() || factor < 1.0 {
                return Err(BuildError::new(
                    "wait_growth",
                    format!("the factor must be a finite number of at least 1, not {factor}"),
                ));
            }
            if max < self.wait {
                return Err(BuildError::new(
                    "wait_growth",
                    "the longest wait must be at least the first",
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(BuildError::new(
                "jitter",
                format!("a fraction from 0 to 1, not {}", self.jitter),
            ));
        }
        if self.half_open_probes == 0 || self.half_open_probes > MAX_HALF_OPEN_PROBES {
            return Err(BuildError::new(
                "half_open_probes",
                format!(
                    "1 to {MAX_HALF_OPEN_PROBES} probes, not {}",
                    self.half_open_probes
                ),
            ));
        }
        if self.half_open_max.is_zero() {
            return Err(BuildError::new("half_open_max", "must be more than zero"));
        }
        Ok(())
    }
}

fn check_rate(field: &'static str, rate: f64) -> Result<(), BuildError> {
    if rate.is_nan() || rate <= 0.0 || rate > 1.0 {
        return Err(BuildError::new(
            field,
            format!("a rate above 0 and at most 1, not {rate}"),
        ));
    }
    Ok(())
}

/// The breaker's settings in a configuration file (feature `serde`), with human durations.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use palisade::breaker::BreakerConfig;
///
/// let config: BreakerConfig = serde_json::from_value(serde_json::json!({
///     "name": "billing",
///     "window": { "time": { "length": "60s", "buckets": 6 } },
///     "failure_rate": 0.25,
///     "slow_call_threshold": "800ms",
///     "slow_call_rate": 0.5,
///     "wait": "10s",
///     "wait_growth": { "factor": 2.0, "max": "5m" },
/// })).unwrap();
/// let breaker = config.builder().build().unwrap();
/// assert_eq!(breaker.name(), "billing");
/// # }
/// ```
#[cfg(feature = "serde")]
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// The name in logs and metrics.
    #[serde(default)]
    pub name: Option<String>,
    /// The window (default: the last 100 calls).
    #[serde(default)]
    pub window: Option<Window>,
    /// The failure rate that trips (default 0.5; `null` turns it off).
    #[serde(default = "default_failure_rate")]
    pub failure_rate: Option<f64>,
    /// Calls slower than this are slow (off by default).
    #[serde(default, with = "palisade_core::serde_duration::option")]
    pub slow_call_threshold: Option<Duration>,
    /// The slow-call rate that trips (default 1.0 when a threshold is set).
    #[serde(default)]
    pub slow_call_rate: Option<f64>,
    /// Failures in a row that trip (off by default).
    #[serde(default)]
    pub consecutive_failures: Option<u32>,
    /// Calls the window must hold before rates are judged (default 20).
    #[serde(default)]
    pub minimum_calls: Option<u32>,
    /// How long the breaker stays open (default 30 s).
    #[serde(default, with = "palisade_core::serde_duration::option")]
    pub wait: Option<Duration>,
    /// Growth of the wait on repeated trips.
    #[serde(default)]
    pub wait_growth: Option<WaitGrowth>,
    /// Jitter of the wait, a fraction (default 0).
    #[serde(default)]
    pub jitter: Option<f64>,
    /// Probes in half-open (default 3).
    #[serde(default)]
    pub half_open_probes: Option<u32>,
    /// The longest half-open lasts (default 30 s).
    #[serde(default, with = "palisade_core::serde_duration::option")]
    pub half_open_max: Option<Duration>,
}

/// How the wait grows on repeated trips (feature `serde`).
#[cfg(feature = "serde")]
#[derive(Clone, Copy, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitGrowth {
    /// The factor per trip.
    pub factor: f64,
    /// The longest wait.
    #[serde(with = "palisade_core::serde_duration")]
    pub max: Duration,
}

#[cfg(feature = "serde")]
#[allow(
    clippy::unnecessary_wraps,
    reason = "serde's default functions return the field's type"
)]
fn default_failure_rate() -> Option<f64> {
    Some(0.5)
}

#[cfg(feature = "serde")]
impl Default for BreakerConfig {
    /// Every default (see [`BreakerBuilder`]).
    fn default() -> Self {
        Self {
            name: None,
            window: None,
            failure_rate: default_failure_rate(),
            slow_call_threshold: None,
            slow_call_rate: None,
            consecutive_failures: None,
            minimum_calls: None,
            wait: None,
            wait_growth: None,
            jitter: None,
            half_open_probes: None,
            half_open_max: None,
        }
    }
}

#[cfg(feature = "serde")]
impl BreakerConfig {
    /// A builder with these settings; add hooks, then [`build`](BreakerBuilder::build).
    pub fn builder(&self) -> BreakerBuilder {
        let mut builder = Breaker::builder().failure_rate(self.failure_rate);
        if let Some(name) = &self.name {
            builder = builder.name(name.clone());
        }
        if let Some(window) = self.window {
            builder = builder.window(window);
        }
        if let Some(threshold) = self.slow_call_threshold {
            builder = builder.slow_calls(threshold, self.slow_call_rate.unwrap_or(1.0));
        }
        if let Some(failures) = self.consecutive_failures {
            builder = builder.consecutive_failures(failures);
        }
        if let Some(calls) = self.minimum_calls {
            builder = builder.minimum_calls(calls);
        }
        if let Some(wait) = self.wait {
            builder = builder.wait(wait);
        }
        if let Some(growth) = self.wait_growth {
            builder = builder.wait_growth(growth.factor, growth.max);
        }
        if let Some(jitter) = self.jitter {
            builder = builder.jitter(jitter);
        }
        if let Some(probes) = self.half_open_probes {
            builder = builder.half_open_probes(probes);
        }
        if let Some(max) = self.half_open_max {
            builder = builder.half_open_max(max);
        }
        builder
    }
}
