//! One limit: a quota over keys, on `governor`'s GCRA with the bounded store.

use std::cell::Cell;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, QuantaClock, QuantaInstant, Reference};
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;

use crate::quota::Quota;
use crate::store::{BoundedStore, Full, WhenFull};

/// A clock tests move by hand. Clones share the time.
#[derive(Clone, Debug, Default)]
pub struct FakeClock(Arc<AtomicU64>);

impl FakeClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(
            u64::try_from(by.as_nanos()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The limiter's clock: `quanta` (a few nanoseconds a reading), or a [`FakeClock`].
#[derive(Clone, Debug)]
pub(crate) enum LimiterClock {
    Real {
        clock: QuantaClock,
        origin: QuantaInstant,
    },
    Fake(FakeClock),
}

impl LimiterClock {
    pub(crate) fn real() -> Self {
        let clock = QuantaClock::default();
        let origin = clock.now();
        Self::Real { clock, origin }
    }
}

impl Clock for LimiterClock {
    type Instant = Nanos;

    #[inline]
    fn now(&self) -> Nanos {
        match self {
            Self::Real { clock, origin } => clock.now().duration_since(*origin),
            Self::Fake(fake) => Nanos::from(fake.now()),
        }
    }
}

thread_local! {
    /// Set by the store, within a check on this thread, when a new key found it full.
    static FULL: Cell<Option<Full>> = const { Cell::new(None) };
}

/// The store as one limiter's `governor` sees it. `governor` counts times from its own start;
/// the store keeps them on the clock's own scale (`offset` is the limiter's start on it), so
/// every limiter over one store — the old one and the new one while a quota changes — reads
/// and writes the same times. The policy for a full store is passed back through `FULL`,
/// since `governor`'s closure cannot be made to refuse from outside.
#[derive(Debug)]
pub(crate) struct Store {
    keys: Arc<BoundedStore>,
    clock: LimiterClock,
    offset: u64,
}

impl StateStore for Store {
    type Key = u64;

    #[inline]
    fn measure_and_replace<T, F, E>(&self, key: &u64, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let offset = self.offset;
        let outcome = self.keys.update(
            *key,
            || self.clock.now().as_u64(),
            |tat| {
                // A time before this limiter's start is long recovered: 0 is the same to it.
                let relative = tat.map(|tat| Nanos::from(tat.as_u64().saturating_sub(offset)));
                f(relative)
                    .map(|(value, next)| (value, Nanos::from(next.as_u64().saturating_add(offset))))
            },
        );
        match outcome {
            Ok(outcome) => outcome,
            Err(full) => {
                FULL.with(|cell| cell.set(Some(full)));
                f(None).map(|(value, _)| value)
            }
        }
    }
}

fn interval_nanos(quota: Quota) -> u64 {
    u64::try_from(quota.emission_interval().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

type Governor = governor::RateLimiter<u64, Store, LimiterClock, StateInformationMiddleware>;

/// What a check decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// Requests the key could still make at once.
    pub remaining: u32,
    /// Until the key's quota is whole again.
    pub reset: Duration,
    /// When refused, how long until it would be admitted.
    pub retry_after: Option<Duration>,
}

/// One quota over keys.
pub(crate) struct Limiter {
    quota: Quota,
    governor: Governor,
    store: Arc<BoundedStore>,
    clock: LimiterClock,
    t: u64,
    tau: u64,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("quota", &self.quota)
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

impl Limiter {
    pub(crate) fn new(
        quota: Quota,
        capacity: usize,
        when_full: WhenFull,
        clock: LimiterClock,
    ) -> Self {
        let t = interval_nanos(quota);
        let store = Arc::new(BoundedStore::new(capacity, when_full, t));
        Self::around(quota, store, clock)
    }

    fn around(quota: Quota, store: Arc<BoundedStore>, clock: LimiterClock) -> Self {
        let t = interval_nanos(quota);
        store.set_interval(t);
        // `governor` reads its own start just after this: the two scales differ by the few
        // nanoseconds between the readings, a few nanoseconds of a key's state.
        let offset = clock.now().as_u64();
        let governor = governor::RateLimiter::new(
            quota.to_governor(),
            Store {
                keys: store.clone(),
                clock: clock.clone(),
                offset,
            },
            clock.clone(),
        );
        Self {
            quota,
            governor,
            store,
            clock,
            t,
            tau: t.saturating_mul(u64::from(quota.burst().saturating_sub(1))),
        }
    }

    #[cfg_attr(
        not(feature = "redis"),
        allow(dead_code, reason = "the Redis backend reads the live quota")
    )]
    pub(crate) fn quota(&self) -> Quota {
        self.quota
    }

    /// The same keys under another quota: each key keeps the permits it has used (a key
    /// that spent two permits has spent two under the new quota too). A check racing the
    /// change lands on either quota; the times stay on one scale either way.
    pub(crate) fn with_quota(&self, quota: Quota) -> Self {
        let next = Self::around(quota, self.store.clone(), self.clock.clone());
        let now = self.clock.now().as_u64();
        let (old_t, new_t) = (u128::from(self.t), u128::from(next.t));
        self.store.rebase(|tat| {
            // What is still owed, in units of the old interval, becomes the same units of the
            // new one; a recovered key stays recovered.
            let lead = u128::from(tat.saturating_sub(now)) * new_t / old_t;
            now.saturating_add(u64::try_from(lead).unwrap_or(u64::MAX))
        });
        next
    }

    /// Charges `cost` permits to `key` whatever its state (a penalty: failures beyond the
    /// quota push its recovery further out rather than being forgotten).
    pub(crate) fn charge(&self, key: u64, cost: u32) {
        let now = self.clock.now().as_u64();
        let weight = self.t.saturating_mul(u64::from(cost));
        let _ = self.store.update(
            key,
            || now,
            |tat| {
                let tat = tat.map_or(now, Nanos::as_u64).max(now);
                Ok::<_, ()>(((), Nanos::from(tat.saturating_add(weight))))
            },
        );
    }

    /// Gives back `cost` permits a check just charged to `key` (a later tier refused the
    /// request). A key no longer tracked is left alone.
    pub(crate) fn refund(&self, key: u64, cost: u32) {
        let now = self.clock.now().as_u64();
        let weight = self.t.saturating_mul(u64::from(cost));
        let _ = self.store.update(
            key,
            || now,
            |tat| match tat {
                Some(tat) => Ok(((), Nanos::from(tat.as_u64().saturating_sub(weight)))),
                None => Err(()),
            },
        );
    }

    /// Keys tracked.
    pub(crate) fn len(&self) -> usize {
        self.store.len()
    }

    /// The key capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.store.capacity()
    }

    /// [`check_stored`](Self::check_stored) without the stored flag, for tests.
    #[cfg(test)]
    pub(crate) fn check(&self, key: u64, cost: u32, details: bool) -> Decision {
        self.check_stored(key, cost, details).0
    }

    /// Charges `cost` permits to `key` now; `details` computes what remains (for headers).
    /// Also answers whether the charge was stored (not when a full store admitted the key
    /// untracked): only a stored charge may be refunded.
    #[inline]
    pub(crate) fn check_stored(&self, key: u64, cost: u32, details: bool) -> (Decision, bool) {
        let outcome = match NonZeroU32::new(cost) {
            None | Some(NonZeroU32::MIN) => Ok(self.governor.check_key(&key)),
            Some(n) => self.governor.check_key_n(&key, n),
        };
        let full = FULL.with(Cell::take);
        let decision = match (full, outcome) {
            (Some(Full::Reject), _) => Decision {
                allowed: false,
                remaining: 0,
                reset: self.quota.emission_interval(),
                retry_after: Some(self.quota.emission_interval()),
            },
            (Some(Full::Admit), _) => Decision {
                allowed: true,
                remaining: self.quota.burst().saturating_sub(cost),
                reset: Duration::ZERO,
                retry_after: None,
            },
            (None, Ok(Ok(_))) if !details => Decision {
                allowed: true,
                remaining: 0,
                reset: Duration::ZERO,
                retry_after: None,
            },
            (None, Ok(Ok(snapshot))) => {
                let remaining = snapshot.remaining_burst_capacity();
                let reset = Duration::from_nanos(
                    self.t
                        .saturating_mul(u64::from(self.quota.burst().saturating_sub(remaining))),
                );
                Decision {
                    allowed: true,
                    remaining,
                    reset,
                    retry_after: None,
                }
            }
            (None, Ok(Err(not_until))) => {
                // Read after the check: never let a refusal say "retry now".
                let wait = not_until
                    .wait_time_from(self.clock.now())
                    .max(Duration::from_nanos(1));
                Decision {
                    allowed: false,
                    remaining: 0,
                    reset: wait
                        + self.quota.emission_interval() * self.quota.burst().saturating_sub(1),
                    retry_after: Some(wait),
                }
            }
            // More than the burst at once can never pass.
            (None, Err(_)) => Decision {
                allowed: false,
                remaining: 0,
                reset: self.quota.period(),
                retry_after: None,
            },
        };
        (decision, decision.allowed && full.is_none())
    }

    /// Whether `cost` more permits would be granted to `key` now, without charging them.
    pub(crate) fn would_admit(&self, key: u64, cost: u32) -> Decision {
        let now = self.clock.now().as_u64();
        let Some(tat) = self.store.get(key) else {
            return Decision {
                allowed: true,
                remaining: self.quota.burst(),
                reset: Duration::ZERO,
                retry_after: None,
            };
        };
        let weight = self.t.saturating_mul(u64::from(cost.max(1) - 1));
        let earliest = tat.saturating_add(weight).saturating_sub(self.tau);
        if now < earliest {
            Decision {
                allowed: false,
                remaining: 0,
                reset: Duration::from_nanos(tat - now),
                retry_after: Some(Duration::from_nanos(earliest - now)),
            }
        } else {
            let used = tat.saturating_sub(now).div_ceil(self.t);
            Decision {
                allowed: true,
                remaining: u32::try_from(u64::from(self.quota.burst()).saturating_sub(used))
                    .unwrap_or(0),
                reset: Duration::from_nanos(tat.saturating_sub(now)),
                retry_after: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The GCRA of the ITU-T I.371 definition, in plain integers: the reference the limiter is
    /// held to.
    struct Model {
        t: u64,
        tau: u64,
        tat: std::collections::HashMap<u64, u64>,
    }

    impl Model {
        fn check(&mut self, key: u64, now: u64, cost: u64) -> bool {
            let tat = *self.tat.get(&key).unwrap_or(&now);
            let weight = self.t * (cost - 1);
            if weight > self.tau {
                return false;
            }
            if now + self.tau < tat + weight {
                return false;
            }
            self.tat.insert(key, tat.max(now) + self.t + weight);
            true
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_limiter_agrees_with_the_reference_gcra(
            count in 1u32..20,
            period_ms in 1u64..2000,
            burst in 1u32..10,
            steps in prop::collection::vec((0u64..4, 0u64..300, 1u32..4), 1..200),
        ) {
            let quota = Quota::new(count, Duration::from_millis(period_ms)).with_burst(burst);
            prop_assume!(quota.check().is_ok());
            let clock = FakeClock::new();
            let limiter = Limiter::new(quota, 1 << 20, WhenFull::RejectNew, LimiterClock::Fake(clock.clone()));
            let t = interval_nanos(quota);
            let mut model = Model { t, tau: t * u64::from(burst - 1), tat: std::collections::HashMap::default() };
            let mut now = 0u64;
            for (key, advance_ms, cost) in steps {
                clock.advance(Duration::from_millis(advance_ms));
                now += advance_ms * 1_000_000;
                let expected = model.check(key, now, u64::from(cost));
                let decision = limiter.check(key, cost, true);
                prop_assert_eq!(decision.allowed, expected, "key {} at {} cost {}", key, now, cost);
                if let Some(wait) = decision.retry_after {
                    // Waiting as told admits one request.
                    prop_assert!(wait <= Duration::from_nanos(t * u64::from(burst) + t));
                }
            }
        }
    }

    /// A limiter over 1,024 keys on a clock moved by hand.
    fn on_a_fake_clock(quota: Quota) -> (FakeClock, Limiter) {
        let clock = FakeClock::new();
        let limiter = Limiter::new(
            quota,
            1024,
            WhenFull::RejectNew,
            LimiterClock::Fake(clock.clone()),
        );
        (clock, limiter)
    }

    #[test]
    fn retry_after_and_remaining_in_a_sequence() {
        let (clock, limiter) = on_a_fake_clock(Quota::per_second(2).with_burst(3));
        let remaining: Vec<(bool, u32)> = (0..4)
            .map(|_| {
                let d = limiter.check(7, 1, true);
                (d.allowed, d.remaining)
            })
            .collect();
        assert_eq!(remaining, [(true, 2), (true, 1), (true, 0), (false, 0)]);
        let refused = limiter.check(7, 1, true);
        assert_eq!(refused.retry_after, Some(Duration::from_millis(500)));
        clock.advance(Duration::from_millis(499));
        assert!(!limiter.check(7, 1, true).allowed);
        clock.advance(Duration::from_millis(1));
        assert!(limiter.check(7, 1, true).allowed);
        // Another key is untouched.
        assert_eq!(limiter.check(8, 1, true).remaining, 2);
        // Peeking does not charge.
        clock.advance(Duration::from_secs(10));
        assert_eq!(limiter.would_admit(7, 1).remaining, 3);
        assert_eq!(limiter.would_admit(7, 1).remaining, 3);
    }

    #[test]
    fn a_check_racing_a_quota_change_never_locks_a_key_out() {
        let (clock, old) = on_a_fake_clock(Quota::per_second(1).with_burst(2));
        // An hour of uptime, then a quota change while a request still holds the old limiter.
        clock.advance(Duration::from_secs(3600));
        assert!(old.check(1, 1, true).allowed);
        let new = old.with_quota(Quota::per_second(1).with_burst(3));
        assert!(
            old.check(1, 1, true).allowed,
            "the straggler on the old quota"
        );
        // Both limiters read one time scale: two permits spent, one left now, all back in 2 s.
        assert_eq!(new.would_admit(1, 1).remaining, 1);
        clock.advance(Duration::from_secs(2));
        assert!(new.check(1, 1, true).allowed);
        assert_eq!(new.check(1, 1, true).remaining, 1);
    }

    #[test]
    fn penalties_accrue_beyond_the_quota_and_peeks_honour_the_cost() {
        let (clock, limiter) = on_a_fake_clock(Quota::per_second(1).with_burst(2));
        clock.advance(Duration::from_secs(3600));
        let limiter = limiter.with_quota(Quota::per_second(1).with_burst(2));
        // Five failures at once: all charged, recovery 5 s out; refused for the first 4 s.
        for _ in 0..5 {
            limiter.charge(9, 1);
        }
        let peek = limiter.would_admit(9, 1);
        assert!(!peek.allowed);
        assert_eq!(peek.retry_after, Some(Duration::from_secs(4)));
        clock.advance(Duration::from_secs(4));
        assert!(limiter.would_admit(9, 1).allowed);
        // A cost of 2 needs both permits back.
        assert!(!limiter.would_admit(9, 2).allowed);
        clock.advance(Duration::from_secs(1));
        assert!(limiter.would_admit(9, 2).allowed);
        // A refund gives back what a check took.
        assert!(limiter.check(9, 2, true).allowed);
        assert!(!limiter.would_admit(9, 1).allowed);
        limiter.refund(9, 2);
        assert_eq!(limiter.would_admit(9, 1).remaining, 2);
    }

    #[test]
    fn an_untracked_admission_is_not_a_stored_charge() {
        // 64 keys over 64 shards: keys 0 and 1 share a shard of one.
        let clock = FakeClock::new();
        let limiter = Limiter::new(
            Quota::per_minute(1),
            64,
            WhenFull::AdmitUntracked,
            LimiterClock::Fake(clock),
        );
        assert!(limiter.check_stored(0, 1, false).1);
        let (decision, stored) = limiter.check_stored(1, 1, false);
        assert!(decision.allowed, "admitted untracked");
        assert!(!stored, "nothing to refund");
    }

    #[test]
    fn a_new_quota_keeps_each_keys_state() {
        let (clock, limiter) = on_a_fake_clock(Quota::per_second(1).with_burst(2));
        clock.advance(Duration::from_secs(5));
        assert!(limiter.check(1, 1, true).allowed);
        assert!(limiter.check(1, 1, true).allowed);
        assert!(!limiter.check(1, 1, true).allowed);
        clock.advance(Duration::from_secs(3));
        let wider = limiter.with_quota(Quota::per_second(1).with_burst(4));
        // Key 1 spent its two permits 3 s ago: a burst of 4 now has 4 back (capped)...
        assert_eq!(wider.would_admit(1, 1).remaining, 4);
        // ...but right after spending, the state carries over instead of resetting.
        assert!(wider.check(1, 1, true).allowed);
        let narrow = wider.with_quota(Quota::per_second(1).with_burst(1));
        assert!(
            !narrow.check(1, 1, true).allowed,
            "the permit just spent still counts"
        );
    }
}
