//! The breaker itself, shared by every service it guards, and its control handle.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use palisade_core::Outcome;
use tokio::time::Instant;

use crate::config::{BreakerBuilder, Hook};
use crate::core::{Core, Permit, Transition};
use crate::{BreakerOpen, BreakerState};

/// A circuit breaker: shared state, and the handle to read and steer it.
///
/// Cloning is cheap and shares the breaker: every [`BreakerLayer`](crate::BreakerLayer) and
/// [`HttpBreakerLayer`](crate::HttpBreakerLayer) built from clones of one breaker counts into
/// the same window. Keep a clone to report the state (`/readyz`) or to force it.
///
/// ```
/// use std::time::Duration;
/// use palisade::breaker::{Breaker, BreakerState, Window};
///
/// let breaker = Breaker::builder()
///     .name("billing")
///     .window(Window::count(50))
///     .failure_rate(0.5)
///     .minimum_calls(10)
///     .wait(Duration::from_secs(5))
///     .build()
///     .unwrap();
/// assert_eq!(breaker.state(), BreakerState::Closed);
///
/// breaker.force_open();
/// assert!(breaker.try_acquire().is_err());
/// breaker.reset();
/// assert!(breaker.try_acquire().is_ok());
/// ```
#[derive(Clone)]
pub struct Breaker {
    shared: Arc<Shared>,
}

struct Shared {
    name: Arc<str>,
    core: Core,
    origin: Instant,
    hooks: Vec<Hook>,
    /// For [`BreakerRegistry`](crate::BreakerRegistry): when it last handed this breaker out.
    pub(crate) last_used: AtomicU64,
    #[cfg(feature = "metrics")]
    metrics: Metrics,
}

/// A state change, as hooks receive it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateChange<'a> {
    /// The breaker's name.
    pub breaker: &'a str,
    /// The state it left.
    pub from: BreakerState,
    /// The state it is in now.
    pub to: BreakerState,
    /// For a change to open: how long it stays open.
    pub open_for: Option<Duration>,
}

/// What a breaker's window holds, for dashboards and readiness checks.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The state.
    pub state: BreakerState,
    /// Calls in the window.
    pub calls: u32,
    /// Failed calls in the window.
    pub failures: u32,
    /// Slow calls in the window.
    pub slow_calls: u32,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// How long an open breaker stays open.
    pub open_for: Option<Duration>,
}

impl Snapshot {
    /// The window's failure rate, from 0 to 1 (0 when empty).
    pub fn failure_rate(&self) -> f64 {
        ratio(self.failures, self.calls)
    }

    /// The window's slow-call rate, from 0 to 1 (0 when empty).
    pub fn slow_call_rate(&self) -> f64 {
        ratio(self.slow_calls, self.calls)
    }
}

fn ratio(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.name())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Breaker {
    /// A builder with the default settings.
    pub fn builder() -> BreakerBuilder {
        BreakerBuilder::default()
    }

    pub(crate) fn from_builder(builder: BreakerBuilder) -> Self {
        let name: Arc<str> = match &builder.name {
            Cow::Borrowed(name) => Arc::from(*name),
            Cow::Owned(name) => Arc::from(name.as_str()),
        };
        Self {
            shared: Arc::new(Shared {
                core: Core::new(&builder),
                origin: Instant::now(),
                hooks: builder.hooks,
                last_used: AtomicU64::new(0),
                #[cfg(feature = "metrics")]
                metrics: Metrics::new(&name),
                name,
            }),
        }
    }

    /// The name in logs, metrics and hooks.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The state now. An open breaker whose wait is over stays open until the next call asks
    /// to go through, which moves it to half-open.
    pub fn state(&self) -> BreakerState {
        self.shared.core.state()
    }

    /// The state and the window's counts.
    pub fn snapshot(&self) -> Snapshot {
        let now = self.now();
        let core = &self.shared.core;
        let counts = core.counts(now);
        Snapshot {
            state: core.state(),
            calls: counts.calls,
            failures: counts.failures,
            slow_calls: counts.slow,
            consecutive_failures: core.consecutive_failures(),
            open_for: core.open_for(now),
        }
    }

    /// Opens the breaker until [`reset`](Self::reset), whatever the window says.
    pub fn force_open(&self) {
        self.set(BreakerState::ForcedOpen);
    }

    /// Lets every call through and counts nothing, until [`reset`](Self::reset).
    pub fn disable(&self) {
        self.set(BreakerState::Disabled);
    }

    /// Closes the breaker with an empty window, from any state.
    pub fn reset(&self) {
        self.set(BreakerState::Closed);
    }

    fn set(&self, to: BreakerState) {
        if let Some(transition) = self.shared.core.set(to, self.now()) {
            self.report(transition);
        }
    }

    /// Asks to make one call. Hand the outcome to [`CallPermit::complete`]; dropping the
    /// permit instead (the call was cancelled) gives a half-open probe's place back and counts
    /// nothing. For code that is not a tower service; the layers do this for you.
    ///
    /// # Errors
    ///
    /// [`BreakerOpen`] when the breaker is open (or half-open with every probe place taken).
    pub fn try_acquire(&self) -> Result<CallPermit, BreakerOpen> {
        let (admitted, transition) = self.shared.core.acquire(&|| self.now());
        if let Some(transition) = transition {
            self.report(transition);
        }
        match admitted {
            Ok(permit) => Ok(CallPermit {
                breaker: self.clone(),
                permit: Some(permit),
            }),
            Err(rejected) => {
                #[cfg(feature = "metrics")]
                self.shared.metrics.rejected(|| self.state());
                Err(BreakerOpen::from(rejected))
            }
        }
    }

    /// Nanoseconds since the breaker was built, on tokio's clock (so paused-time tests drive
    /// it).
    fn now(&self) -> u64 {
        u64::try_from(
            Instant::now()
                .saturating_duration_since(self.shared.origin)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX)
    }

    fn complete(&self, permit: Permit, outcome: Outcome) {
        #[cfg(feature = "metrics")]
        self.shared.metrics.outcome(outcome, || self.state());
        if let Some(transition) = self.shared.core.complete(permit, outcome, &|| self.now()) {
            self.report(transition);
        }
    }

    fn cancel(&self, permit: Permit) {
        self.shared.core.cancel(permit);
    }

    /// Logs, counts and announces a state change; never called with a lock held.
    fn report(&self, transition: Transition) {
        let Transition { from, to, wait } = transition;
        let name = self.name();
        match to {
            BreakerState::Open | BreakerState::ForcedOpen => tracing::warn!(
                breaker = name,
                %from,
                %to,
                open_for = ?wait,
                "circuit breaker opened"
            ),
            _ => tracing::warn!(breaker = name, %from, %to, "circuit breaker changed state"),
        }
        #[cfg(feature = "metrics")]
        self.shared.metrics.transition(from, to);
        let change = StateChange {
            breaker: name,
            from,
            to,
            open_for: wait,
        };
        for hook in &self.shared.hooks {
            hook(&change);
        }
    }

    pub(crate) fn last_used(&self) -> &AtomicU64 {
        &self.shared.last_used
    }

    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

/// One call let through by a [`Breaker`]; see [`Breaker::try_acquire`].
#[derive(Debug)]
pub struct CallPermit {
    breaker: Breaker,
    permit: Option<Permit>,
}

impl CallPermit {
    /// Records how the call ended. A [`Deferred`](Outcome::Deferred) outcome counts as a
    /// success here: judge the trailers first.
    pub fn complete(mut self, outcome: Outcome) {
        if let Some(permit) = self.permit.take() {
            self.breaker.complete(permit, outcome);
        }
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.breaker.cancel(permit);
        }
    }
}

/// The breaker's metrics, registered on its first call (with the recorder installed by then).
#[cfg(feature = "metrics")]
struct Metrics {
    name: Arc<str>,
    handles: std::sync::OnceLock<Handles>,
}

#[cfg(feature = "metrics")]
struct Handles {
    success: metrics::Counter,
    failure: metrics::Counter,
    ignored: metrics::Counter,
    rejected: metrics::Counter,
    gauge: metrics::Gauge,
}

#[cfg(feature = "metrics")]
impl Metrics {
    fn new(name: &Arc<str>) -> Self {
        Self {
            name: name.clone(),
            handles: std::sync::OnceLock::new(),
        }
    }

    /// The handles; registering them sets the state gauge to `state()`.
    fn handles(&self, state: impl FnOnce() -> BreakerState) -> &Handles {
        self.handles.get_or_init(|| {
            let name = &self.name;
            let calls = |outcome: &'static str| {
                metrics::counter!(
                    "palisade_breaker_calls_total",
                    "breaker" => name.to_string(),
                    "outcome" => outcome
                )
            };
            let handles = Handles {
                success: calls("success"),
                failure: calls("failure"),
                ignored: calls("ignored"),
                rejected: metrics::counter!(
                    "palisade_breaker_rejected_total",
                    "breaker" => name.to_string()
                ),
                gauge: metrics::gauge!("palisade_breaker_state", "breaker" => name.to_string()),
            };
            handles.gauge.set(f64::from(state() as u8));
            handles
        })
    }

    fn outcome(&self, outcome: Outcome, state: impl FnOnce() -> BreakerState) {
        let handles = self.handles(state);
        match outcome {
            Outcome::Success | Outcome::Deferred => handles.success.increment(1),
            Outcome::Failure => handles.failure.increment(1),
            Outcome::Ignored => handles.ignored.increment(1),
        }
    }

    fn rejected(&self, state: impl FnOnce() -> BreakerState) {
        self.handles(state).rejected.increment(1);
    }

    fn transition(&self, from: BreakerState, to: BreakerState) {
        self.handles(|| to).gauge.set(f64::from(to as u8));
        metrics::counter!(
            "palisade_breaker_transitions_total",
            "breaker" => self.name.to_string(),
            "from" => from.as_str(),
            "to" => to.as_str()
        )
        .increment(1);
    }
}
