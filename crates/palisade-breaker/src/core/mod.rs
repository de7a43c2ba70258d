//! The breaker's state machine, apart from tower: time comes in as nanoseconds since the
//! breaker was built, and every method says what changed instead of logging or calling hooks.
//!
//! The closed state, which is where a breaker spends its life, takes no lock and allocates
//! nothing: a call loads the state word, and its outcome goes into the lock-free window. Only
//! a state change takes the `control` lock, which nothing else waits on for long. Half-open
//! probes are counted in one atomic word tagged with the state's generation, so a permit from
//! an earlier generation can never release or fill a place of the current one.

pub(crate) mod window;

#[cfg(all(test, palisade_loom))]
mod loom_tests;

use std::time::Duration;

use palisade_core::Outcome;
use palisade_core::jitter::JitterRng;

use self::window::{Counts, Window};
use crate::config::BreakerBuilder;
use crate::sync::{AtomicU32, AtomicU64, Mutex, Ordering};

/// Where a breaker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BreakerState {
    /// Calls go through and their outcomes are counted.
    Closed = 0,
    /// Calls are rejected until the wait is over.
    Open = 1,
    /// A few probe calls go through; their outcomes decide between closed and open.
    HalfOpen = 2,
    /// Opened by hand: calls are rejected until [`reset`](crate::Breaker::reset).
    ForcedOpen = 3,
    /// Turned off by hand: calls go through and nothing is counted.
    Disabled = 4,
}

impl BreakerState {
    fn from_bits(bits: u64) -> Self {
        match bits & 0b111 {
            0 => Self::Closed,
            1 => Self::Open,
            2 => Self::HalfOpen,
            3 => Self::ForcedOpen,
            _ => Self::Disabled,
        }
    }

    /// The state's name in logs and metrics: `closed`, `open`, `half_open`, `forced_open`,
    /// `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
        }
    }

    /// Whether calls are let through (closed, half-open or disabled).
    pub fn admits_calls(self) -> bool {
        matches!(self, Self::Closed | Self::HalfOpen | Self::Disabled)
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn pack(state: BreakerState, generation: u64) -> u64 {
    generation << 3 | state as u64
}

fn unpack(word: u64) -> (BreakerState, u64) {
    (BreakerState::from_bits(word), word >> 3)
}

/// Half-open words: `generation (low 32 bits) << 32 | a << 16 | b`.
fn pack_probe(generation: u64, a: u64, b: u64) -> u64 {
    (generation & 0xffff_ffff) << 32 | (a & 0xffff) << 16 | (b & 0xffff)
}

fn probe_generation(word: u64) -> u64 {
    word >> 32
}

/// The settings, turned into what the hot path compares.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    failure_ppm: Option<u64>,
    slow: Option<(u64, u64)>,
    consecutive: Option<u32>,
    minimum_calls: u32,
    wait: Duration,
    growth: Option<(f64, Duration)>,
    jitter: f64,
    pub(crate) probes: u32,
    half_open_max: u64,
    /// Whether completing a call needs the clock (a time window or slow-call detection).
    clock_on_complete: bool,
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "rates are checked to be in (0, 1]"
)]
fn ppm(rate: f64) -> u64 {
    (rate * 1_000_000.0).round() as u64
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// What a call was admitted as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Closed,
    HalfOpen,
    Disabled,
}

/// A call let through: hand it back to [`Core::complete`] or [`Core::cancel`].
#[derive(Debug)]
pub(crate) struct Permit {
    generation: u64,
    pub(crate) admission: Admission,
    /// When the call started (0 unless slow calls are detected).
    start: u64,
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// Open, for this many more nanoseconds.
    Open { remaining: u64 },
    /// Half-open, with every probe place taken.
    HalfOpenFull,
    /// Forced open.
    Forced,
}

/// A state change the core made; the caller reports it, outside any lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) from: BreakerState,
    pub(crate) to: BreakerState,
    /// For a change to open: how long it stays open.
    pub(crate) wait: Option<Duration>,
}

struct Control {
    /// Trips in a row without closing, for the growing wait.
    trips: u32,
    rng: JitterRng,
}

pub(crate) struct Core {
    pub(crate) settings: Settings,
    state: AtomicU64,
    window: Window,
    consecutive: AtomicU32,
    open_until: AtomicU64,
    half_open_since: AtomicU64,
    /// `generation, issued, completed`: probes admitted (a cancelled one gives its place back)
    /// and probes finished.
    probes: AtomicU64,
    /// `generation, failures, slow` among the finished probes.
    probe_results: AtomicU64,
    control: Mutex<Control>,
}

impl Core {
    pub(crate) fn new(builder: &BreakerBuilder) -> Self {
        let window = match builder.window {
            crate::Window::Count { calls } => Window::Count(window::CountWindow::new(calls)),
            crate::Window::Time { length, buckets } => {
                Window::Time(window::TimeWindow::new(nanos(length), buckets))
            }
        };
        let settings = Settings {
            failure_ppm: builder.failure_rate.map(ppm),
            slow: builder
                .slow_call
                .map(|(threshold, rate)| (nanos(threshold), ppm(rate))),
            consecutive: builder.consecutive_failures,
            // A count window of fewer calls than the minimum would never be judged:
            // resilience4j's rule, the minimum is at most the window.
            minimum_calls: match builder.window {
                crate::Window::Count { calls } => builder.minimum_calls.min(calls),
                crate::Window::Time { .. } => builder.minimum_calls,
            },
            wait: builder.wait,
            growth: builder.growth,
            jitter: builder.jitter,
            probes: builder.half_open_probes,
            half_open_max: nanos(builder.half_open_max),
            clock_on_complete: builder.slow_call.is_some()
                || matches!(builder.window, crate::Window::Time { .. }),
        };
        let rng = builder
            .seed
            .map_or_else(JitterRng::from_entropy, JitterRng::seeded);
        Self {
            settings,
            state: AtomicU64::new(pack(BreakerState::Closed, 0)),
            window,
            consecutive: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            half_open_since: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            probe_results: AtomicU64::new(0),
            control: Mutex::new(Control { trips: 0, rng }),
        }
    }

    /// The state now (open stays open until a call asks, even once the wait is over).
    pub(crate) fn state(&self) -> BreakerState {
        unpack(self.state.load(Ordering::Acquire)).0
    }

    /// How long an open breaker stays open from `now` (`None` unless open).
    pub(crate) fn open_for(&self, now: u64) -> Option<Duration> {
        (self.state() == BreakerState::Open).then(|| {
            Duration::from_nanos(self.open_until.load(Ordering::Acquire).saturating_sub(now))
        })
    }

    pub(crate) fn counts(&self, now: u64) -> Counts {
        self.window.counts(now)
    }

    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive.load(Ordering::Relaxed)
    }

    /// Admits a call or says why not; `clock` is read only when the state needs it (never in
    /// the closed state unless slow calls are detected).
    pub(crate) fn acquire(
        &self,
        clock: &impl Fn() -> u64,
    ) -> (Result<Permit, Rejected>, Option<Transition>) {
        let mut changed = None;
        loop {
            let word = self.state.load(Ordering::Acquire);
            let (state, generation) = unpack(word);
            match state {
                BreakerState::Closed => {
                    let start = if self.settings.slow.is_some() {
                        clock()
                    } else {
                        0
                    };
                    let permit = Permit {
                        generation,
                        admission: Admission::Closed,
                        start,
                    };
                    return (Ok(permit), changed);
                }
                BreakerState::Disabled => {
                    let permit = Permit {
                        generation,
                        admission: Admission::Disabled,
                        start: 0,
                    };
                    return (Ok(permit), changed);
                }
                BreakerState::ForcedOpen => return (Err(Rejected::Forced), changed),
                BreakerState::Open => {
                    let now = clock();
                    let until = self.open_until.load(Ordering::Acquire);
                    if now < until {
                        return (
                            Err(Rejected::Open {
                                remaining: until - now,
                            }),
                            changed,
                        );
                    }
                    if let Some(transition) = self.transition(word, BreakerState::HalfOpen, now) {
                        changed = Some(transition);
                    }
                }
                BreakerState::HalfOpen => {
                    let now = clock();
                    let since = self.half_open_since.load(Ordering::Acquire);
                    if now.saturating_sub(since) >= self.settings.half_open_max {
                        // The probes took too long: open again.
                        if let Some(transition) = self.transition(word, BreakerState::Open, now) {
                            changed = Some(transition);
                        }
                        continue;
                    }
                    if self.take_probe(generation) {
                        let permit = Permit {
                            generation,
                            admission: Admission::HalfOpen,
                            start: now,
                        };
                        return (Ok(permit), changed);
                    }
                    return (Err(Rejected::HalfOpenFull), changed);
                }
            }
        }
    }

    fn take_probe(&self, generation: u64) -> bool {
        let tag = generation & 0xffff_ffff;
        let mut word = self.probes.load(Ordering::Acquire);
        loop {
            if probe_generation(word) != tag {
                return false;
            }
            let issued = (word >> 16) & 0xffff;
            if issued >= u64::from(self.settings.probes) {
                return false;
            }
            match self.probes.compare_exchange_weak(
                word,
                word + (1 << 16),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => word = actual,
            }
        }
    }

    /// A call that ends without an outcome (dropped, or judged
    /// [`Ignored`](Outcome::Ignored)): a probe gives its place back and is not counted.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "a permit is used up: it cannot be cancelled or completed twice"
    )]
    pub(crate) fn cancel(&self, permit: Permit) {
        if permit.admission != Admission::HalfOpen {
            return;
        }
        let tag = permit.generation & 0xffff_ffff;
        let mut word = self.probes.load(Ordering::Acquire);
        loop {
            let issued = (word >> 16) & 0xffff;
            let completed = word & 0xffff;
            if probe_generation(word) != tag || issued <= completed {
                return;
            }
            match self.probes.compare_exchange_weak(
                word,
                word - (1 << 16),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => word = actual,
            }
        }
    }

    /// Records how a call ended. `clock` is read only when the window or slow-call detection
    /// needs it.
    pub(crate) fn complete(
        &self,
        permit: Permit,
        outcome: Outcome,
        clock: &impl Fn() -> u64,
    ) -> Option<Transition> {
        let failure = match outcome {
            Outcome::Success | Outcome::Deferred => false,
            Outcome::Failure => true,
            Outcome::Ignored => {
                self.cancel(permit);
                return None;
            }
        };
        match permit.admission {
            Admission::Disabled => None,
            Admission::Closed => self.complete_closed(&permit, failure, clock),
            Admission::HalfOpen => self.complete_probe(&permit, failure, clock()),
        }
    }

    fn is_slow(&self, start: u64, now: u64) -> bool {
        self.settings
            .slow
            .is_some_and(|(threshold, _)| now.saturating_sub(start) >= threshold)
    }

    fn complete_closed(
        &self,
        permit: &Permit,
        failure: bool,
        clock: &impl Fn() -> u64,
    ) -> Option<Transition> {
        let word = self.state.load(Ordering::Acquire);
        if word != pack(BreakerState::Closed, permit.generation) {
            // Admitted before a state change: its outcome belongs to a window that is gone.
            return None;
        }
        let now = if self.settings.clock_on_complete {
            clock()
        } else {
            0
        };
        let slow = self.is_slow(permit.start, now);
        // Whether the rates can have risen: a success that replaces a call in a full count
        // window cannot raise either rate, and every call before it was judged already.
        let judge = failure || slow || !self.window.is_full();
        self.window.record(now, failure, slow);
        let consecutive = if failure {
            self.consecutive.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            if self.consecutive.load(Ordering::Relaxed) != 0 {
                self.consecutive.store(0, Ordering::Relaxed);
            }
            0
        };
        if judge && self.should_trip(now, consecutive) {
            // The wait runs from now: read the clock if the window did not need it.
            let now = if self.settings.clock_on_complete {
                now
            } else {
                clock()
            };
            return self.transition(word, BreakerState::Open, now);
        }
        None
    }

    fn should_trip(&self, now: u64, consecutive: u32) -> bool {
        if self
            .settings
            .consecutive
            .is_some_and(|limit| consecutive >= limit)
        {
            return true;
        }
        if self.settings.failure_ppm.is_none() && self.settings.slow.is_none() {
            return false;
        }
        let counts = self.window.counts(now);
        counts.calls >= self.settings.minimum_calls && self.over(counts)
    }

    /// Whether `counts` reach a trip rate.
    fn over(&self, counts: Counts) -> bool {
        let calls = u64::from(counts.calls);
        if calls == 0 {
            return false;
        }
        let failed = self
            .settings
            .failure_ppm
            .is_some_and(|ppm| u64::from(counts.failures) * 1_000_000 >= ppm * calls);
        let slow = self
            .settings
            .slow
            .is_some_and(|(_, ppm)| u64::from(counts.slow) * 1_000_000 >= ppm * calls);
        failed || slow
    }

    fn complete_probe(&self, permit: &Permit, failure: bool, now: u64) -> Option<Transition> {
        let tag = permit.generation & 0xffff_ffff;
        let slow = self.is_slow(permit.start, now);
        // The result first, then the completion that may trigger the judgement, so the
        // judging thread sees every result.
        let mut word = self.probe_results.load(Ordering::Acquire);
        loop {
            if probe_generation(word) != tag {
                return None;
            }
            let next = word + (u64::from(failure) << 16) + u64::from(slow);
            match self.probe_results.compare_exchange_weak(
                word,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => word = actual,
            }
        }
        let mut word = self.probes.load(Ordering::Acquire);
        let completed = loop {
            if probe_generation(word) != tag {
                return None;
            }
            match self.probes.compare_exchange_weak(
                word,
                word + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break (word & 0xffff) + 1,
                Err(actual) => word = actual,
            }
        };
        if completed < u64::from(self.settings.probes) {
            return None;
        }
        let results = self.probe_results.load(Ordering::Acquire);
        if probe_generation(results) != tag {
            return None;
        }
        let counts = Counts {
            calls: self.settings.probes,
            failures: u32::try_from((results >> 16) & 0xffff).unwrap_or(u32::MAX),
            slow: u32::try_from(results & 0xffff).unwrap_or(u32::MAX),
        };
        let reopen =
            self.over(counts) || (self.settings.failure_ppm.is_none() && counts.failures > 0);
        let to = if reopen {
            BreakerState::Open
        } else {
            BreakerState::Closed
        };
        self.transition(pack(BreakerState::HalfOpen, permit.generation), to, now)
    }

    /// Moves to `to` by hand (`reset` is `Closed`): from any state, clearing the window when
    /// closing. `None` when the breaker is already there (a reset still clears the window).
    pub(crate) fn set(&self, to: BreakerState, now: u64) -> Option<Transition> {
        loop {
            let word = self.state.load(Ordering::Acquire);
            let (state, _) = unpack(word);
            if state == to && to != BreakerState::Closed {
                return None;
            }
            if let Some(transition) = self.transition(word, to, now) {
                return (transition.from != transition.to).then_some(transition);
            }
        }
    }

    /// Changes the state if it is still `expected`; the one place that takes the lock.
    fn transition(&self, expected: u64, to: BreakerState, now: u64) -> Option<Transition> {
        let mut control = self
            .control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.state.load(Ordering::Acquire) != expected {
            return None;
        }
        let (from, generation) = unpack(expected);
        let next = generation + 1;
        let mut wait = None;
        match to {
            BreakerState::Open => {
                control.trips = control.trips.saturating_add(1);
                let open_for = self.wait(&mut control);
                self.open_until
                    .store(now.saturating_add(nanos(open_for)), Ordering::Release);
                wait = Some(open_for);
            }
            BreakerState::HalfOpen => {
                self.half_open_since.store(now, Ordering::Release);
                // Read-modify-writes, not stores: a probe of the old generation may be giving
                // its place back (a compare-exchange on the same word) at this very moment,
                // and the fresh word must come after it in the word's history.
                self.probes.swap(pack_probe(next, 0, 0), Ordering::AcqRel);
                self.probe_results
                    .swap(pack_probe(next, 0, 0), Ordering::AcqRel);
            }
            BreakerState::Closed => {
                self.window.reset();
                self.consecutive.store(0, Ordering::Relaxed);
                control.trips = 0;
            }
            BreakerState::ForcedOpen | BreakerState::Disabled => {}
        }
        self.state.store(pack(to, next), Ordering::Release);
        Some(Transition { from, to, wait })
    }

    /// The wait of the current trip: grown, capped, then jittered.
    fn wait(&self, control: &mut Control) -> Duration {
        let base = self.settings.wait;
        let grown = match self.settings.growth {
            Some((factor, max)) => {
                let exponent = i32::try_from(control.trips.saturating_sub(1)).unwrap_or(i32::MAX);
                let seconds = (base.as_secs_f64() * factor.powi(exponent)).min(max.as_secs_f64());
                Duration::try_from_secs_f64(seconds).unwrap_or(max)
            }
            None => base,
        };
        if self.settings.jitter > 0.0 {
            control.rng.jitter(grown, self.settings.jitter)
        } else {
            grown
        }
    }
}
