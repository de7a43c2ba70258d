//! The retry budget: see [`RetryBudget`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use palisade_core::BuildError;
use tokio::time::Instant;

/// One retry, in balance units: deposits are `ratio × UNIT`.
const UNIT: u64 = 1_000_000;
/// [`UNIT`] as a float (exact: it is far below 2^53).
const UNIT_F64: f64 = 1_000_000.0;

/// The retry budget: retries may be at most a fraction of requests, plus a small floor per
/// second, however badly the upstream fails (Finagle's `RetryBudget`, Envoy's retry budgets).
///
/// Every request deposits `ratio` of a retry into a shared balance; every retry withdraws one,
/// first from the balance, then from a floor that refills at `floor_per_second`. The balance is
/// capped at `burst` retries, so a long healthy spell cannot bank an unbounded storm. Over any
/// stretch of time, then, retries ≤ `ratio` × requests + `floor_per_second` × seconds +
/// `burst` + the floor's own cap.
///
/// A deposit is one atomic addition and reads no clock, so every request can afford it; only a
/// retry takes a lock (to refill the floor), and retries are the rare path.
///
/// ```
/// use palisade::retry::RetryBudget;
///
/// // 10 % of requests may be retried, plus 2 retries a second, with at most 20 banked.
/// let budget = RetryBudget::new(0.1, 2, 20).unwrap();
/// let shared = budget.clone(); // clones share one balance
/// for _ in 0..100 {
///     shared.deposit();
/// }
/// let granted = (0..100).filter(|_| budget.withdraw()).count();
/// assert!(granted >= 10 && granted <= 10 + 2, "{granted}");
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

struct Inner {
    /// `ratio × UNIT`.
    deposit: u64,
    cap: u64,
    balance: AtomicU64,
    floor_per_second: u32,
    floor: Mutex<Floor>,
    /// `palisade_retry_budget_balance{budget}` (feature `metrics`).
    #[cfg(feature = "metrics")]
    gauge: palisade_core::__metrics::LazyGauge,
}

struct Floor {
    /// Units left in the floor.
    units: u64,
    refilled: Instant,
}

impl std::fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryBudget")
            .field(
                "ratio",
                &(f64::from(u32::try_from(self.inner.deposit).unwrap_or(u32::MAX)) / UNIT_F64),
            )
            .field("floor_per_second", &self.inner.floor_per_second)
            .field("burst", &(self.inner.cap / UNIT))
            .finish_non_exhaustive()
    }
}

impl Default for RetryBudget {
    /// 20 % of requests, plus 10 retries a second, with at most 100 banked (Finagle's
    /// defaults, with a cap on what a quiet spell banks).
    fn default() -> Self {
        Self::new(0.2, 10, 100).expect("the default budget is valid")
    }
}

impl RetryBudget {
    /// Retries up to `ratio` of requests (0 to 1000), plus `floor_per_second`, with at most
    /// `burst` retries banked (at least 1).
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming `ratio` or `burst`.
    pub fn new(ratio: f64, floor_per_second: u32, burst: u32) -> Result<Self, BuildError> {
        if !ratio.is_finite() || !(0.0..=1000.0).contains(&ratio) {
            return Err(BuildError::new(
                "ratio",
                format!("retries per request from 0 to 1000, not {ratio}"),
            ));
        }
        if burst == 0 {
            return Err(BuildError::new("burst", "at least 1 retry"));
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked to be from 0 to 1000"
        )]
        let deposit = (ratio * UNIT_F64).round() as u64;
        Ok(Self {
            inner: Arc::new(Inner {
                deposit,
                cap: u64::from(burst) * UNIT,
                balance: AtomicU64::new(0),
                floor_per_second,
                floor: Mutex::new(Floor {
                    units: u64::from(floor_per_second) * UNIT,
                    refilled: Instant::now(),
                }),
                #[cfg(feature = "metrics")]
                gauge: balance_gauge("default"),
            }),
        })
    }

    /// The budget's name in metrics (`default` unless named): with feature `metrics`, the
    /// gauge `palisade_retry_budget_balance{budget}` reports the retries banked (not counting
    /// the floor). Call it before sharing the budget: clones made earlier keep the old name.
    #[must_use]
    pub fn named(self, name: &str) -> Self {
        let inner = &self.inner;
        let floor = inner
            .floor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        #[cfg(not(feature = "metrics"))]
        let _ = name;
        Self {
            inner: Arc::new(Inner {
                deposit: inner.deposit,
                cap: inner.cap,
                balance: AtomicU64::new(inner.balance.load(Ordering::Relaxed)),
                floor_per_second: inner.floor_per_second,
                floor: Mutex::new(Floor {
                    units: floor.units,
                    refilled: floor.refilled,
                }),
                #[cfg(feature = "metrics")]
                gauge: balance_gauge(name),
            }),
        }
    }

    /// Sets the balance gauge from a balance just seen.
    #[cfg(feature = "metrics")]
    #[inline]
    fn report(&self, balance: u64) {
        #[allow(clippy::cast_precision_loss, reason = "a gauge")]
        self.inner
            .gauge
            .set((balance.min(self.inner.cap) / UNIT) as f64);
    }

    /// Records a request: it earns `ratio` of a retry.
    #[inline]
    pub fn deposit(&self) {
        self.deposit_many(1);
    }

    /// Records `requests` requests at once (the layers batch their deposits, so most calls
    /// touch no shared memory).
    #[inline]
    pub fn deposit_many(&self, requests: u32) {
        if self.inner.deposit != 0 {
            let added = self.inner.deposit.saturating_mul(u64::from(requests));
            let before = self.inner.balance.fetch_add(added, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            self.report(before.saturating_add(added));
            #[cfg(not(feature = "metrics"))]
            let _ = before;
        }
    }

    /// Gives back a retry taken by [`withdraw`](Self::withdraw) and never sent (its call was
    /// cancelled while it waited).
    pub(crate) fn refund(&self) {
        let before = self.inner.balance.fetch_add(UNIT, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.report(before.saturating_add(UNIT));
        #[cfg(not(feature = "metrics"))]
        let _ = before;
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn withdraw(&self) -> bool {
        let inner = &self.inner;
        let mut balance = inner.balance.load(Ordering::Relaxed);
        loop {
            // Deposits past the cap were banked while nobody retried: they do not count.
            let usable = balance.min(inner.cap);
            if usable < UNIT {
                break;
            }
            match inner.balance.compare_exchange_weak(
                balance,
                usable - UNIT,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    #[cfg(feature = "metrics")]
                    self.report(usable - UNIT);
                    return true;
                }
                Err(actual) => balance = actual,
            }
        }
        if inner.floor_per_second == 0 {
            return false;
        }
        let mut floor = inner
            .floor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(floor.refilled);
        let earned = u64::try_from(
            elapsed.as_nanos() * u128::from(inner.floor_per_second) * u128::from(UNIT)
                / 1_000_000_000,
        )
        .unwrap_or(u64::MAX);
        let cap = u64::from(inner.floor_per_second) * UNIT;
        if earned > 0 {
            floor.units = floor.units.saturating_add(earned).min(cap);
            floor.refilled = now;
        }
        if floor.units >= UNIT {
            floor.units -= UNIT;
            true
        } else {
            false
        }
    }
}

#[cfg(feature = "metrics")]
fn balance_gauge(name: &str) -> palisade_core::__metrics::LazyGauge {
    palisade_core::__metrics::LazyGauge::new(
        "palisade_retry_budget_balance",
        [("budget", name.to_owned())],
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_stay_within_the_ratio_in_a_storm() {
        // 1,000 requests, each wanting 3 retries: 3,000 asked for.
        let budget = RetryBudget::new(0.1, 0, 5).unwrap();
        let mut granted = 0;
        for _ in 0..1_000 {
            budget.deposit();
            for _ in 0..3 {
                if budget.withdraw() {
                    granted += 1;
                }
            }
        }
        assert!(granted <= 100 + 5, "{granted} retries for 1,000 requests");
        assert!(granted >= 99, "the ratio is granted: {granted}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_refills_each_second_and_is_capped() {
        let budget = RetryBudget::new(0.0, 3, 1).unwrap();
        let take = |n| (0..n).filter(|_| budget.withdraw()).count();
        assert_eq!(take(10), 3, "a full floor at first");
        assert_eq!(take(10), 0);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(take(10), 1, "1.5 retries earned: one whole");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(take(10), 3, "no more than one second's worth banked");
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_spell_banks_at_most_the_burst() {
        let budget = RetryBudget::new(0.5, 0, 10).unwrap();
        for _ in 0..100_000 {
            budget.deposit();
        }
        assert_eq!((0..1_000).filter(|_| budget.withdraw()).count(), 10);
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(RetryBudget::new(-0.1, 1, 1).unwrap_err().field(), "ratio");
        assert_eq!(
            RetryBudget::new(f64::NAN, 1, 1).unwrap_err().field(),
            "ratio"
        );
        assert_eq!(RetryBudget::new(0.1, 1, 0).unwrap_err().field(), "burst");
    }

    #[tokio::test(start_paused = true)]
    async fn threads_share_one_balance_without_overdrawing() {
        let budget = RetryBudget::new(1.0, 0, 1_000).unwrap();
        for _ in 0..400 {
            budget.deposit();
        }
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let budget = budget.clone();
                std::thread::spawn(move || (0..200).filter(|_| budget.withdraw()).count())
            })
            .collect();
        let granted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(granted, 400, "exactly the banked retries, across threads");
    }
}
