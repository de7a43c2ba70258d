//! A reference model of the breaker, written the plain way (a list of recent calls, a few
//! counters, no atomics), and a harness that drives the real core and the model with the
//! same sequence of calls and clock steps and asserts they agree on every answer and state.
//! The property tests and the `breaker_model` fuzz target use it.

use std::collections::VecDeque;
use std::time::Duration;

use palisade_core::Outcome;
use palisade_core::jitter::JitterRng;

use crate::core::{Admission, Core, Permit, Rejected};
use crate::{BreakerBuilder, BreakerState, Window};

struct ModelPermit {
    generation: u64,
    admission: Admission,
    start: u64,
}

/// The specification, as directly as it can be written.
struct Model {
    builder: BreakerBuilder,
    state: BreakerState,
    generation: u64,
    /// `(time, failed, slow)` of the calls recorded since the window was last cleared.
    calls: VecDeque<(u64, bool, bool)>,
    consecutive: u32,
    open_until: u64,
    half_open_since: u64,
    trips: u32,
    issued: u32,
    completed: u32,
    probe_failures: u32,
    probe_slow: u32,
    rng: JitterRng,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Model {
    fn new(builder: BreakerBuilder) -> Self {
        let rng = JitterRng::seeded(builder.seed.unwrap_or(0));
        Self {
            builder,
            state: BreakerState::Closed,
            generation: 0,
            calls: VecDeque::new(),
            consecutive: 0,
            open_until: 0,
            half_open_since: 0,
            trips: 0,
            issued: 0,
            completed: 0,
            probe_failures: 0,
            probe_slow: 0,
            rng,
        }
    }

    /// The calls a window must hold before its rates are judged: never more than a count
    /// window can hold (resilience4j's rule).
    fn minimum_calls(&self) -> u64 {
        let minimum = u64::from(self.builder.minimum_calls);
        match self.builder.window {
            crate::Window::Count { calls } => minimum.min(u64::from(calls)),
            crate::Window::Time { .. } => minimum,
        }
    }

    /// The window's `(calls, failures, slow)` at `now`.
    fn window(&self, now: u64) -> (u64, u64, u64) {
        let in_window: Vec<_> = match self.builder.window {
            Window::Count { calls } => self
                .calls
                .iter()
                .rev()
                .take(calls as usize)
                .copied()
                .collect(),
            Window::Time { length, buckets } => {
                let width = (nanos(length) / u64::from(buckets)).max(1);
                let current = now / width;
                let oldest = current.saturating_sub(u64::from(buckets) - 1);
                self.calls
                    .iter()
                    .filter(|(t, _, _)| (oldest..=current).contains(&(t / width)))
                    .copied()
                    .collect()
            }
        };
        let failures = in_window.iter().filter(|c| c.1).count() as u64;
        let slow = in_window.iter().filter(|c| c.2).count() as u64;
        (in_window.len() as u64, failures, slow)
    }

    /// Whether `failures` and `slow` of `calls` reach a trip rate.
    fn over(&self, calls: u64, failures: u64, slow: u64) -> bool {
        let reaches =
            |count: u64, rate: f64| calls > 0 && count * 1_000_000 >= rate_ppm(rate) * calls;
        self.builder
            .failure_rate
            .is_some_and(|rate| reaches(failures, rate))
            || self
                .builder
                .slow_call
                .is_some_and(|(_, rate)| reaches(slow, rate))
    }

    fn change(&mut self, to: BreakerState, now: u64) {
        self.generation += 1;
        match to {
            BreakerState::Open => {
                self.trips += 1;
                let mut wait = self.builder.wait;
                if let Some((factor, max)) = self.builder.growth {
                    let exponent = i32::try_from(self.trips - 1).unwrap_or(i32::MAX);
                    let seconds =
                        (wait.as_secs_f64() * factor.powi(exponent)).min(max.as_secs_f64());
                    wait = Duration::try_from_secs_f64(seconds).unwrap_or(max);
                }
                if self.builder.jitter > 0.0 {
                    wait = self.rng.jitter(wait, self.builder.jitter);
                }
                self.open_until = now.saturating_add(nanos(wait));
            }
            BreakerState::HalfOpen => {
                self.half_open_since = now;
                self.issued = 0;
                self.completed = 0;
                self.probe_failures = 0;
                self.probe_slow = 0;
            }
            BreakerState::Closed => {
                self.calls.clear();
                self.consecutive = 0;
                self.trips = 0;
            }
            BreakerState::ForcedOpen | BreakerState::Disabled => {}
        }
        self.state = to;
    }

    fn acquire(&mut self, now: u64) -> Result<ModelPermit, Rejected> {
        loop {
            match self.state {
                BreakerState::Closed => {
                    return Ok(ModelPermit {
                        generation: self.generation,
                        admission: Admission::Closed,
                        start: now,
                    });
                }
                BreakerState::Disabled => {
                    return Ok(ModelPermit {
                        generation: self.generation,
                        admission: Admission::Disabled,
                        start: now,
                    });
                }
                BreakerState::ForcedOpen => return Err(Rejected::Forced),
                BreakerState::Open => {
                    if now < self.open_until {
                        return Err(Rejected::Open {
                            remaining: self.open_until - now,
                        });
                    }
                    self.change(BreakerState::HalfOpen, now);
                }
                BreakerState::HalfOpen => {
                    if now - self.half_open_since >= nanos(self.builder.half_open_max) {
                        self.change(BreakerState::Open, now);
                        continue;
                    }
                    if self.issued >= self.builder.half_open_probes {
                        return Err(Rejected::HalfOpenFull);
                    }
                    self.issued += 1;
                    return Ok(ModelPermit {
                        generation: self.generation,
                        admission: Admission::HalfOpen,
                        start: now,
                    });
                }
            }
        }
    }

    fn cancel(&mut self, permit: &ModelPermit) {
        if permit.admission == Admission::HalfOpen
            && permit.generation == self.generation
            && self.issued > self.completed
        {
            self.issued -= 1;
        }
    }

    fn complete(&mut self, permit: &ModelPermit, outcome: Outcome, now: u64) {
        let failed = match outcome {
            Outcome::Failure => true,
            Outcome::Success | Outcome::Deferred => false,
            Outcome::Ignored => return self.cancel(permit),
        };
        if permit.generation != self.generation {
            return;
        }
        let slow = self
            .builder
            .slow_call
            .is_some_and(|(threshold, _)| now - permit.start >= nanos(threshold));
        match permit.admission {
            Admission::Disabled => {}
            Admission::Closed => {
                self.calls.push_back((now, failed, slow));
                self.consecutive = if failed { self.consecutive + 1 } else { 0 };
                let (calls, failures, slow_calls) = self.window(now);
                let trip = self
                    .builder
                    .consecutive_failures
                    .is_some_and(|limit| self.consecutive >= limit)
                    || (calls >= self.minimum_calls() && self.over(calls, failures, slow_calls));
                if trip {
                    self.change(BreakerState::Open, now);
                }
            }
            Admission::HalfOpen => {
                self.completed += 1;
                self.probe_failures += u32::from(failed);
                self.probe_slow += u32::from(slow);
                if self.completed == self.builder.half_open_probes {
                    let probes = u64::from(self.completed);
                    let reopen = self.over(
                        probes,
                        u64::from(self.probe_failures),
                        u64::from(self.probe_slow),
                    ) || (self.builder.failure_rate.is_none()
                        && self.probe_failures > 0);
                    let to = if reopen {
                        BreakerState::Open
                    } else {
                        BreakerState::Closed
                    };
                    self.change(to, now);
                }
            }
        }
    }

    fn set(&mut self, to: BreakerState, now: u64) {
        if self.state != to || to == BreakerState::Closed {
            self.change(to, now);
        }
    }
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "rates are checked to be in (0, 1]"
)]
fn rate_ppm(rate: f64) -> u64 {
    (rate * 1_000_000.0).round() as u64
}

/// One step of a run.
#[derive(Clone, Debug)]
pub enum Step {
    /// A call asks to go through.
    Call,
    /// The `n`th call in flight (modulo how many there are) ends.
    End {
        /// Which call.
        n: usize,
        /// How it went.
        outcome: Outcome,
    },
    /// The `n`th call in flight is dropped before it ends.
    Cancel {
        /// Which call.
        n: usize,
    },
    /// Time passes.
    Advance {
        /// How much, in milliseconds.
        ms: u64,
    },
    /// Forced to a state by hand (`Closed` is a reset).
    Set {
        /// The state.
        to: BreakerState,
    },
}

/// Runs `steps` against the core and the model built from `builder` (its seed fixed so both
/// draw the same jitter), asserting they agree after every step.
///
/// # Panics
///
/// When they disagree: that is the finding.
pub fn check(builder: &BreakerBuilder, steps: &[Step]) {
    let builder = builder.clone().seed(builder.seed.unwrap_or(7));
    let core = Core::new(&builder);
    let mut model = Model::new(builder);
    let mut now = 0u64;
    let mut in_flight: Vec<(Permit, ModelPermit)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Call => {
                let (real, _) = core.acquire(&|| now);
                let expected = model.acquire(now);
                match (real, expected) {
                    (Ok(permit), Ok(model_permit)) => {
                        assert_eq!(permit.admission, model_permit.admission, "step {i}");
                        in_flight.push((permit, model_permit));
                    }
                    (Err(real), Err(expected)) => assert_eq!(real, expected, "step {i}"),
                    (real, expected) => panic!(
                        "step {i}: the core said {:?}, the model {:?}",
                        real.map(|p| p.admission),
                        expected.map(|p| p.admission)
                    ),
                }
            }
            Step::End { n, outcome } => {
                if !in_flight.is_empty() {
                    let (permit, model_permit) = in_flight.remove(n % in_flight.len());
                    core.complete(permit, *outcome, &|| now);
                    model.complete(&model_permit, *outcome, now);
                }
            }
            Step::Cancel { n } => {
                if !in_flight.is_empty() {
                    let (permit, model_permit) = in_flight.remove(n % in_flight.len());
                    core.cancel(permit);
                    model.cancel(&model_permit);
                }
            }
            Step::Advance { ms } => now = now.saturating_add(ms.saturating_mul(1_000_000)),
            Step::Set { to } => {
                core.set(*to, now);
                model.set(*to, now);
            }
        }
        assert_eq!(core.state(), model.state, "state after step {i}: {step:?}");
        let counts = core.counts(now);
        let (calls, failures, slow) = model.window(now);
        if model.state == BreakerState::Closed {
            assert_eq!(
                (
                    u64::from(counts.calls),
                    u64::from(counts.failures),
                    u64::from(counts.slow)
                ),
                (calls, failures, slow),
                "window after step {i}: {step:?}"
            );
        }
    }
}

/// Fuzz harness: decodes a breaker configuration and a sequence of steps from bytes, then
/// [`check`]s the core against the model.
#[doc(hidden)]
pub fn fuzz_steps(data: &[u8]) {
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next();
    let Some(shape) = next() else { return };
    let window = if shape & 1 == 0 {
        Window::count(u32::from(next().unwrap_or(10) % 32) + 1)
    } else {
        Window::time(
            Duration::from_millis(u64::from(next().unwrap_or(100)) * 10 + 100),
            u32::from(next().unwrap_or(4) % 8) + 1,
        )
    };
    let mut builder = BreakerBuilder::default()
        .window(window)
        .minimum_calls(u32::from(next().unwrap_or(5) % 16) + 1)
        .failure_rate(if shape & 2 == 0 {
            Some(f64::from(next().unwrap_or(128) % 100 + 1) / 100.0)
        } else {
            None
        })
        .wait(Duration::from_millis(
            u64::from(next().unwrap_or(50)) * 10 + 1,
        ))
        .half_open_probes(u32::from(next().unwrap_or(2) % 5) + 1)
        .half_open_max(Duration::from_millis(
            u64::from(next().unwrap_or(200)) * 10 + 1,
        ));
    if shape & 4 != 0 {
        builder = builder.slow_calls(
            Duration::from_millis(u64::from(next().unwrap_or(20)) + 1),
            f64::from(next().unwrap_or(50) % 100 + 1) / 100.0,
        );
    }
    if shape & 8 != 0 || shape & 2 != 0 {
        builder = builder.consecutive_failures(u32::from(next().unwrap_or(3) % 8) + 1);
    }
    if shape & 16 != 0 {
        builder = builder
            .wait_growth(2.0, Duration::from_secs(60))
            .jitter(0.3);
    }
    if builder.check().is_err() {
        return;
    }
    let mut steps = Vec::new();
    while let Some(op) = next() {
        let arg = next().unwrap_or(0);
        steps.push(match op % 8 {
            0..=2 => Step::Call,
            3 => Step::End {
                n: usize::from(arg),
                outcome: Outcome::Success,
            },
            4 => Step::End {
                n: usize::from(arg),
                outcome: if arg & 0x80 == 0 {
                    Outcome::Failure
                } else {
                    Outcome::Ignored
                },
            },
            5 => Step::Cancel {
                n: usize::from(arg),
            },
            6 => Step::Advance {
                ms: u64::from(arg) * u64::from(arg / 16 + 1),
            },
            _ => Step::Set {
                to: match arg % 3 {
                    0 => BreakerState::Closed,
                    1 => BreakerState::ForcedOpen,
                    _ => BreakerState::Disabled,
                },
            },
        });
    }
    check(&builder, &steps);
}

#[cfg(all(test, not(palisade_loom)))]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => Just(Step::Call),
            3 => (any::<usize>(), prop_oneof![
                3 => Just(Outcome::Success),
                3 => Just(Outcome::Failure),
                1 => Just(Outcome::Ignored),
            ]).prop_map(|(n, outcome)| Step::End { n, outcome }),
            1 => any::<usize>().prop_map(|n| Step::Cancel { n }),
            2 => (0u64..400).prop_map(|ms| Step::Advance { ms }),
            1 => prop_oneof![
                Just(BreakerState::Closed),
                Just(BreakerState::ForcedOpen),
                Just(BreakerState::Disabled),
            ].prop_map(|to| Step::Set { to }),
        ]
    }

    fn builder() -> impl Strategy<Value = BreakerBuilder> {
        (
            prop_oneof![
                (1u32..40).prop_map(Window::count),
                (1u64..50, 1u32..8).prop_map(|(tenths, buckets)| {
                    Window::time(Duration::from_millis(tenths * 100), buckets)
                }),
            ],
            1u32..20,
            proptest::option::of(1u32..=100),
            proptest::option::of((1u64..300, 1u32..=100)),
            proptest::option::of(1u32..8),
            1u64..2_000,
            1u32..5,
            1u64..3_000,
            any::<bool>(),
        )
            .prop_map(
                |(window, minimum, rate, slow, consecutive, wait, probes, max, growth)| {
                    let mut builder = BreakerBuilder::default()
                        .window(window)
                        .minimum_calls(minimum)
                        .failure_rate(rate.map(|r| f64::from(r) / 100.0))
                        .wait(Duration::from_millis(wait))
                        .half_open_probes(probes)
                        .half_open_max(Duration::from_millis(max));
                    if let Some((threshold, rate)) = slow {
                        builder = builder
                            .slow_calls(Duration::from_millis(threshold), f64::from(rate) / 100.0);
                    }
                    if let Some(failures) = consecutive {
                        builder = builder.consecutive_failures(failures);
                    }
                    if growth {
                        builder = builder
                            .wait_growth(1.5, Duration::from_secs(30))
                            .jitter(0.25);
                    }
                    builder
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Random call sequences: the lock-free core answers exactly as the plain model.
        #[test]
        fn the_core_agrees_with_the_model(
            builder in builder(),
            steps in proptest::collection::vec(step(), 0..200),
        ) {
            prop_assume!(builder.check().is_ok());
            check(&builder, &steps);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            fuzz_steps(&bytes);
        }
    }
}
