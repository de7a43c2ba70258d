//! Backoff schedules: pure, seedable, checked once when built.
//!
//! A [`Backoff`] says how long to wait before each retry. Retry `n` (from 0) has a *cap*
//! `c(n)`: `min(cap, base × factor^n)` for an exponential schedule, `min(cap, base + step × n)`
//! for a linear one, `min(cap, delay)` for a constant one. The caps never decrease. The delay is
//! then drawn with the [`Jitter`]:
//!
//! | jitter | delay of retry `n` |
//! |---|---|
//! | [`None`](Jitter::None) | `c(n)` |
//! | [`Full`](Jitter::Full) | uniform in `[0, c(n)]` (AWS "full jitter": the fewest collisions) |
//! | [`Equal`](Jitter::Equal) | `c(n)/2` + uniform in `[0, c(n)/2]` |
//! | [`Decorrelated`](Jitter::Decorrelated) | `min(cap, uniform in [base, 3 × previous delay])` (AWS "decorrelated jitter") |
//!
//! Every delay lies in `[0, cap]`. A schedule also ends: after
//! [`max_attempts`](BackoffBuilder::max_attempts) attempts in all (the first included), or when
//! the next wait would take the retries past [`max_elapsed`](BackoffBuilder::max_elapsed).
//!
//! ```
//! use std::time::Duration;
//! use palisade::retry::{Backoff, Jitter};
//!
//! let backoff = Backoff::exponential(Duration::from_millis(100))
//!     .factor(2.0)
//!     .cap(Duration::from_secs(1))
//!     .jitter(Jitter::None)
//!     .max_attempts(5)
//!     .build()
//!     .unwrap();
//! let mut schedule = backoff.schedule_seeded(7);
//! let delays: Vec<_> = std::iter::from_fn(|| schedule.next_delay()).collect();
//! assert_eq!(
//!     delays,
//!     [100, 200, 400, 800].map(Duration::from_millis),
//!     "five attempts: four waits"
//! );
//! ```

use std::time::Duration;

use palisade_core::BuildError;
use palisade_core::jitter::JitterRng;

/// How the delay of each retry is drawn below its cap; see the [module documentation](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Jitter {
    /// The cap itself: every client that failed together retries together.
    None,
    /// Uniform between zero and the cap (the default).
    #[default]
    Full,
    /// Half the cap, plus uniform up to the other half.
    Equal,
    /// Uniform between the base and three times the previous delay, capped.
    Decorrelated,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Exponential { base: Duration, factor: f64 },
    Linear { base: Duration, step: Duration },
    Constant { delay: Duration },
}

/// A backoff schedule's settings, checked; see the [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    shape: Shape,
    cap: Duration,
    jitter: Jitter,
    max_attempts: u32,
    max_elapsed: Option<Duration>,
}

/// Builds a [`Backoff`]; [`build`](Self::build) checks it once.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct BackoffBuilder {
    backoff: Backoff,
}

/// The default most attempts, the first included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The most attempts a schedule may allow.
pub const MAX_ATTEMPTS: u32 = 100;

impl Backoff {
    fn builder(shape: Shape, cap: Duration) -> BackoffBuilder {
        BackoffBuilder {
            backoff: Self {
                shape,
                cap,
                jitter: Jitter::Full,
                max_attempts: DEFAULT_MAX_ATTEMPTS,
                max_elapsed: None,
            },
        }
    }

    /// `base × factor^n` (factor 2 unless set), capped at 30 s unless set; full jitter.
    pub fn exponential(base: Duration) -> BackoffBuilder {
        Self::builder(
            Shape::Exponential { base, factor: 2.0 },
            Duration::from_secs(30),
        )
    }

    /// `base + step × n`, capped at 30 s unless set; full jitter.
    pub fn linear(base: Duration, step: Duration) -> BackoffBuilder {
        Self::builder(Shape::Linear { base, step }, Duration::from_secs(30))
    }

    /// The same `delay` before every retry; full jitter unless set.
    pub fn constant(delay: Duration) -> BackoffBuilder {
        Self::builder(Shape::Constant { delay }, delay)
    }

    /// The most attempts, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The longest all waits may add up to, if limited.
    pub fn max_elapsed(&self) -> Option<Duration> {
        self.max_elapsed
    }

    /// The cap of retry `n` (from 0): the largest delay it can get.
    pub fn cap_of(&self, n: u32) -> Duration {
        let raw = match self.shape {
            Shape::Exponential { base, factor } => {
                let exponent = i32::try_from(n).unwrap_or(i32::MAX);
                Duration::try_from_secs_f64(base.as_secs_f64() * factor.powi(exponent))
                    .unwrap_or(Duration::MAX)
            }
            Shape::Linear { base, step } => base.saturating_add(step.saturating_mul(n)),
            Shape::Constant { delay } => delay,
        };
        raw.min(self.cap)
    }

    fn base(&self) -> Duration {
        match self.shape {
            Shape::Exponential { base, .. } | Shape::Linear { base, .. } => base,
            Shape::Constant { delay } => delay,
        }
    }

    /// A schedule with jitter from a random seed.
    pub fn schedule(&self) -> Schedule {
        Schedule::new(*self, JitterRng::from_entropy())
    }

    /// A schedule whose jitter is fixed by `seed`, for tests.
    pub fn schedule_seeded(&self, seed: u64) -> Schedule {
        Schedule::new(*self, JitterRng::seeded(seed))
    }
}

impl BackoffBuilder {
    /// The growth factor of an exponential schedule (default 2; at least 1).
    pub fn factor(mut self, factor: f64) -> Self {
        if let Shape::Exponential { base, .. } = self.backoff.shape {
            self.backoff.shape = Shape::Exponential { base, factor };
        }
        self
    }

    /// The largest delay.
    pub fn cap(mut self, cap: Duration) -> Self {
        self.backoff.cap = cap;
        self
    }

    /// How delays are drawn below their caps (default [`Jitter::Full`]).
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.backoff.jitter = jitter;
        self
    }

    /// The most attempts in all, the first included (default 3; 1 means no retry).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.backoff.max_attempts = attempts;
        self
    }

    /// The longest the waits may add up to (default: unlimited).
    pub fn max_elapsed(mut self, elapsed: Duration) -> Self {
        self.backoff.max_elapsed = Some(elapsed);
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming `base`, `factor`, `step`, `cap`, `max_attempts` or
    /// `max_elapsed`.
    pub fn build(self) -> Result<Backoff, BuildError> {
        let backoff = self.backoff;
        match backoff.shape {
            Shape::Exponential { base, factor } => {
                if base.is_zero() {
                    return Err(BuildError::new("base", "must be more than zero"));
                }
                if !factor.is_finite() || factor < 1.0 {
                    return Err(BuildError::new(
                        "factor",
                        format!("a finite number of at least 1, not {factor}"),
                    ));
                }
            }
            Shape::Linear { base, step } => {
                if base.is_zero() && step.is_zero() {
                    return Err(BuildError::new(
                        "step",
                        "a linear schedule needs a base or a step above zero",
                    ));
                }
            }
            Shape::Constant { delay } => {
                if delay.is_zero() {
                    return Err(BuildError::new("base", "must be more than zero"));
                }
            }
        }
        if backoff.cap.is_zero() || backoff.cap < backoff.base() {
            return Err(BuildError::new(
                "cap",
                "must be more than zero and at least the base delay",
            ));
        }
        if backoff.max_attempts == 0 || backoff.max_attempts > MAX_ATTEMPTS {
            return Err(BuildError::new(
                "max_attempts",
                format!(
                    "1 to {MAX_ATTEMPTS} attempts in all, not {}",
                    backoff.max_attempts
                ),
            ));
        }
        if backoff.max_elapsed.is_some_and(|d| d.is_zero()) {
            return Err(BuildError::new("max_elapsed", "must be more than zero"));
        }
        Ok(backoff)
    }
}

/// One request's way through a [`Backoff`]: the delay before each retry, until it ends.
#[derive(Clone, Debug)]
pub struct Schedule {
    backoff: Backoff,
    /// Retries handed out so far.
    retries: u32,
    /// The delays handed out so far, added up.
    elapsed: Duration,
    previous: Duration,
    rng: JitterRng,
}

impl Schedule {
    fn new(backoff: Backoff, rng: JitterRng) -> Self {
        Self {
            previous: backoff.base(),
            backoff,
            retries: 0,
            elapsed: Duration::ZERO,
            rng,
        }
    }

    /// The delay before the next retry, or `None` when the schedule is over (attempts used up,
    /// or the wait would take the retries past `max_elapsed`).
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.retries + 1 >= self.backoff.max_attempts {
            return None;
        }
        let cap = self.backoff.cap_of(self.retries);
        let delay = match self.backoff.jitter {
            Jitter::None => cap,
            Jitter::Full => self.rng.between(Duration::ZERO, cap),
            Jitter::Equal => {
                let half = cap / 2;
                half + self.rng.between(Duration::ZERO, cap.saturating_sub(half))
            }
            Jitter::Decorrelated => {
                let high = self.previous.saturating_mul(3).min(self.backoff.cap);
                self.rng.between(self.backoff.base(), high)
            }
        };
        let elapsed = self.elapsed.saturating_add(delay);
        if self.backoff.max_elapsed.is_some_and(|max| elapsed > max) {
            return None;
        }
        self.retries += 1;
        self.elapsed = elapsed;
        self.previous = delay;
        Some(delay)
    }

    /// Retries handed out so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }
}

/// Makes a fresh schedule for each request: [`Backoff`], or (feature `backoff`) a
/// `backoff::backoff::Backoff` through [`FromBackoffCrate`].
pub trait MakeSchedule {
    /// The schedule of one request.
    type Schedule: NextDelay;

    /// A fresh schedule.
    fn make_schedule(&self) -> Self::Schedule;
}

/// What a schedule does: hand out delays until it ends.
pub trait NextDelay {
    /// The delay before the next retry, or `None` when there is none.
    fn next_delay(&mut self) -> Option<Duration>;
}

impl NextDelay for Schedule {
    fn next_delay(&mut self) -> Option<Duration> {
        Schedule::next_delay(self)
    }
}

impl MakeSchedule for Backoff {
    type Schedule = Schedule;

    fn make_schedule(&self) -> Schedule {
        self.schedule()
    }
}

/// A schedule from the `backoff` crate (feature `backoff`), for users migrating from it.
///
/// The `backoff` crate is unmaintained upstream (RUSTSEC-2025-0012): prefer [`Backoff`]. Each
/// request gets a clone, [`reset`](backoff::backoff::Backoff::reset) first; its
/// `next_backoff() == None` ends the retries. `max_attempts` of the layer still applies.
#[cfg(feature = "backoff")]
#[derive(Clone, Debug)]
pub struct FromBackoffCrate<B>(pub B);

#[cfg(feature = "backoff")]
impl<B: backoff::backoff::Backoff + Clone> MakeSchedule for FromBackoffCrate<B> {
    type Schedule = FromBackoffCrate<B>;

    fn make_schedule(&self) -> Self::Schedule {
        let mut fresh = self.0.clone();
        fresh.reset();
        Self(fresh)
    }
}

#[cfg(feature = "backoff")]
impl<B: backoff::backoff::Backoff> NextDelay for FromBackoffCrate<B> {
    fn next_delay(&mut self) -> Option<Duration> {
        self.0.next_backoff()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn delays(backoff: &Backoff, seed: u64) -> Vec<Duration> {
        let mut schedule = backoff.schedule_seeded(seed);
        std::iter::from_fn(|| schedule.next_delay()).collect()
    }

    #[test]
    fn schedule_values_without_jitter() {
        let cases: [(&str, BackoffBuilder, &[u64]); 5] = [
            (
                "exponential, capped",
                Backoff::exponential(ms(100)).cap(ms(1000)).max_attempts(7),
                &[100, 200, 400, 800, 1000, 1000],
            ),
            (
                "exponential, factor 3",
                Backoff::exponential(ms(10)).factor(3.0).max_attempts(5),
                &[10, 30, 90, 270],
            ),
            (
                "linear",
                Backoff::linear(ms(100), ms(50))
                    .cap(ms(220))
                    .max_attempts(5),
                &[100, 150, 200, 220],
            ),
            (
                "constant",
                Backoff::constant(ms(250)).max_attempts(4),
                &[250, 250, 250],
            ),
            (
                "one attempt: no retry",
                Backoff::exponential(ms(100)).max_attempts(1),
                &[],
            ),
        ];
        for (name, builder, expected) in cases {
            let backoff = builder.jitter(Jitter::None).build().unwrap();
            let expected: Vec<_> = expected.iter().map(|n| ms(*n)).collect();
            assert_eq!(delays(&backoff, 1), expected, "{name}");
        }
    }

    #[test]
    fn max_elapsed_stops_before_the_wait_that_would_cross_it() {
        let backoff = Backoff::exponential(ms(100))
            .jitter(Jitter::None)
            .max_attempts(10)
            .max_elapsed(ms(800))
            .build()
            .unwrap();
        // 100 + 200 + 400 = 700; + 800 would cross 800 ms.
        assert_eq!(delays(&backoff, 1), [ms(100), ms(200), ms(400)]);
    }

    #[test]
    fn jitter_bounds_by_kind() {
        for seed in 0..200 {
            let full = Backoff::exponential(ms(100)).cap(ms(400)).max_attempts(6);
            let full = delays(&full.jitter(Jitter::Full).build().unwrap(), seed);
            for (n, d) in full.iter().enumerate() {
                let cap = ms((100 << n).min(400));
                assert!(*d <= cap, "full: {d:?} over {cap:?}");
            }
            let equal = Backoff::exponential(ms(100)).cap(ms(400)).max_attempts(6);
            let equal = delays(&equal.jitter(Jitter::Equal).build().unwrap(), seed);
            for (n, d) in equal.iter().enumerate() {
                let cap = ms((100 << n).min(400));
                assert!(*d >= cap / 2 && *d <= cap, "equal: {d:?} for {cap:?}");
            }
            let decorrelated = Backoff::exponential(ms(100)).cap(ms(2000)).max_attempts(8);
            let decorrelated = delays(
                &decorrelated.jitter(Jitter::Decorrelated).build().unwrap(),
                seed,
            );
            let mut previous = ms(100);
            for d in decorrelated {
                assert!(d >= ms(100) && d <= (previous * 3).min(ms(2000)), "{d:?}");
                previous = d;
            }
        }
    }

    #[test]
    fn seeds_fix_the_sequence() {
        let backoff = Backoff::exponential(ms(100))
            .max_attempts(6)
            .build()
            .unwrap();
        assert_eq!(delays(&backoff, 42), delays(&backoff, 42));
        assert_ne!(delays(&backoff, 42), delays(&backoff, 43));
    }

    #[test]
    fn full_jitter_spreads_evenly() {
        let backoff = Backoff::constant(ms(1000)).max_attempts(2).build().unwrap();
        let n = 10_000u32;
        let mut below_half = 0u32;
        let mut sum = 0.0;
        for seed in 0..u64::from(n) {
            let d = delays(&backoff, seed)[0];
            sum += d.as_secs_f64();
            if d < ms(500) {
                below_half += 1;
            }
        }
        let mean = sum / f64::from(n);
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        let share = f64::from(below_half) / f64::from(n);
        assert!((share - 0.5).abs() < 0.03, "{share}");
    }

    #[test]
    fn builder_errors_name_the_setting() {
        let cases: [(BackoffBuilder, &str); 9] = [
            (Backoff::exponential(Duration::ZERO), "base"),
            (Backoff::exponential(ms(1)).factor(0.5), "factor"),
            (Backoff::exponential(ms(1)).factor(f64::NAN), "factor"),
            (Backoff::exponential(ms(10)).cap(ms(5)), "cap"),
            (Backoff::linear(Duration::ZERO, Duration::ZERO), "step"),
            (Backoff::constant(Duration::ZERO), "base"),
            (Backoff::exponential(ms(1)).max_attempts(0), "max_attempts"),
            (
                Backoff::exponential(ms(1)).max_attempts(1000),
                "max_attempts",
            ),
            (
                Backoff::exponential(ms(1)).max_elapsed(Duration::ZERO),
                "max_elapsed",
            ),
        ];
        for (builder, field) in cases {
            assert_eq!(builder.build().unwrap_err().field(), field);
        }
    }

    fn any_backoff() -> impl Strategy<Value = Backoff> {
        (
            1u64..1_000,
            1.0f64..4.0,
            1u64..60_000,
            prop_oneof![
                Just(Jitter::None),
                Just(Jitter::Full),
                Just(Jitter::Equal),
                Just(Jitter::Decorrelated)
            ],
            1u32..30,
            0u8..3,
        )
            .prop_filter_map("valid", |(base, factor, cap, jitter, attempts, shape)| {
                let builder = match shape {
                    0 => Backoff::exponential(ms(base)).factor(factor),
                    1 => Backoff::linear(ms(base), ms(base / 2)),
                    _ => Backoff::constant(ms(base)),
                };
                builder
                    .cap(ms(cap.max(base)))
                    .jitter(jitter)
                    .max_attempts(attempts)
                    .build()
                    .ok()
            })
    }

    proptest! {
        /// Every delay is within [0, cap], caps never decrease, and there are at most
        /// max_attempts - 1 delays.
        #[test]
        fn delays_stay_under_non_decreasing_caps(backoff in any_backoff(), seed in any::<u64>()) {
            let all = delays(&backoff, seed);
            prop_assert!(all.len() < backoff.max_attempts() as usize);
            for (n, delay) in all.iter().enumerate() {
                let n = u32::try_from(n).unwrap();
                prop_assert!(*delay <= backoff.cap);
                prop_assert!(backoff.cap_of(n) <= backoff.cap_of(n + 1));
                if backoff.jitter != Jitter::Decorrelated {
                    prop_assert!(*delay <= backoff.cap_of(n));
                }
            }
        }
    }
}
