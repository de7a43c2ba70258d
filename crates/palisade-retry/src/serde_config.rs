//! The retry settings as an operator writes them (feature `serde`).

use std::time::Duration;

use palisade_core::BuildError;
use serde::Deserialize;

use crate::{Backoff, HttpRetryLayer, Jitter, RetryBudget};

/// The settings of an [`HttpRetryLayer`] in a configuration file, with human durations.
///
/// ```
/// use palisade::retry::RetryConfig;
///
/// let config: RetryConfig = serde_json::from_value(serde_json::json!({
///     "backoff": { "exponential": { "base": "100ms", "cap": "2s" } },
///     "max_attempts": 4,
///     "budget": { "ratio": 0.1, "floor_per_second": 5, "burst": 50 },
///     "retry_after_cap": "10s",
/// })).unwrap();
/// let layer = config.build().unwrap();
/// # let _ = layer;
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// The schedule's shape (default: exponential from 100 ms, doubling, capped at 30 s).
    #[serde(default = "default_backoff")]
    pub backoff: BackoffShape,
    /// How delays are drawn below their caps (default `full`).
    #[serde(default)]
    pub jitter: Jitter,
    /// The most attempts, the first included (default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// The longest the waits may add up to.
    #[serde(default, with = "palisade_core::serde_duration::option")]
    pub max_elapsed: Option<Duration>,
    /// The retry budget (default: 20 % of requests, 10 a second, 100 banked); `false` (or
    /// `null` where the format has it) for none, `true` for the default.
    #[serde(default = "default_budget", deserialize_with = "budget_setting")]
    pub budget: Option<BudgetConfig>,
    /// The longest `Retry-After` honoured (default 30 s).
    #[serde(default, with = "palisade_core::serde_duration::option")]
    pub retry_after_cap: Option<Duration>,
    /// The most bytes of a body kept for a retry (default 64 KiB).
    #[serde(default)]
    pub replay_limit: Option<usize>,
    /// Retry every method, `POST` without an `Idempotency-Key` included (default `false`).
    #[serde(default)]
    pub retry_any_method: bool,
}

/// The shape of a backoff schedule.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BackoffShape {
    /// `base × factor^n`, capped.
    Exponential {
        /// The first delay's cap.
        #[serde(with = "palisade_core::serde_duration")]
        base: Duration,
        /// The growth factor (default 2).
        #[serde(default)]
        factor: Option<f64>,
        /// The largest delay (default 30 s).
        #[serde(default, with = "palisade_core::serde_duration::option")]
        cap: Option<Duration>,
    },
    /// `base + step × n`, capped.
    Linear {
        /// The first delay's cap.
        #[serde(with = "palisade_core::serde_duration")]
        base: Duration,
        /// The growth per retry.
        #[serde(with = "palisade_core::serde_duration")]
        step: Duration,
        /// The largest delay (default 30 s).
        #[serde(default, with = "palisade_core::serde_duration::option")]
        cap: Option<Duration>,
    },
    /// The same delay each time.
    Constant {
        /// The delay.
        #[serde(with = "palisade_core::serde_duration")]
        delay: Duration,
    },
}

/// A retry budget's settings.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Retries per request.
    pub ratio: f64,
    /// Retries a second regardless.
    pub floor_per_second: u32,
    /// Retries banked at most.
    pub burst: u32,
}

/// `budget`: a table, `true` (the default), `false` or `null` (none). TOML has no `null`.
fn budget_setting<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<BudgetConfig>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Setting {
        On(bool),
        Budget(BudgetConfig),
    }
    Ok(match Option::<Setting>::deserialize(deserializer)? {
        None | Some(Setting::On(false)) => None,
        Some(Setting::On(true)) => default_budget(),
        Some(Setting::Budget(budget)) => Some(budget),
    })
}

#[allow(
    clippy::unnecessary_wraps,
    reason = "serde's default functions return the field's type"
)]
fn default_budget() -> Option<BudgetConfig> {
    Some(BudgetConfig {
        ratio: 0.2,
        floor_per_second: 10,
        burst: 100,
    })
}

fn default_backoff() -> BackoffShape {
    BackoffShape::Exponential {
        base: Duration::from_millis(100),
        factor: None,
        cap: None,
    }
}

impl Default for RetryConfig {
    /// Every default: exponential backoff from 100 ms with full jitter, 3 attempts, the
    /// default budget, idempotent requests only.
    fn default() -> Self {
        Self {
            backoff: default_backoff(),
            jitter: Jitter::default(),
            max_attempts: None,
            max_elapsed: None,
            budget: default_budget(),
            retry_after_cap: None,
            replay_limit: None,
            retry_any_method: false,
        }
    }
}

impl RetryConfig {
    /// Builds the layer.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming the setting that is wrong.
    pub fn build(&self) -> Result<HttpRetryLayer, BuildError> {
        let mut builder = match self.backoff {
            BackoffShape::Exponential { base, factor, cap } => {
                let mut b = Backoff::exponential(base);
                if let Some(factor) = factor {
                    b = b.factor(factor);
                }
                if let Some(cap) = cap {
                    b = b.cap(cap);
                }
                b
            }
            BackoffShape::Linear { base, step, cap } => {
                let mut b = Backoff::linear(base, step);
                if let Some(cap) = cap {
                    b = b.cap(cap);
                }
                b
            }
            BackoffShape::Constant { delay } => Backoff::constant(delay),
        }
        .jitter(self.jitter);
        if let Some(attempts) = self.max_attempts {
            builder = builder.max_attempts(attempts);
        }
        if let Some(elapsed) = self.max_elapsed {
            builder = builder.max_elapsed(elapsed);
        }
        let mut layer = HttpRetryLayer::new(builder.build()?);
        layer = match self.budget {
            Some(budget) => layer.budget(RetryBudget::new(
                budget.ratio,
                budget.floor_per_second,
                budget.burst,
            )?),
            None => layer.without_budget(),
        };
        if let Some(cap) = self.retry_after_cap {
            layer = layer.retry_after_cap(cap);
        }
        if let Some(limit) = self.replay_limit {
            layer = layer.replay_limit(limit);
        }
        if self.retry_any_method {
            layer = layer.retry_any_method();
        }
        Ok(layer)
    }
}
