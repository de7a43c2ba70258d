use std::time::Duration;

use http::Extensions;
use tokio::time::Instant;

/// The absolute instant by which a request must be answered.
///
/// Timeout layers store it in the request extensions; nested timeouts keep the earliest, and
/// inner layers (retries, outbound deadline propagation) read it to know how much time is left.
/// It is a [`tokio::time::Instant`], so tests with `tokio::time::pause()` see it move.
///
/// ```
/// use std::time::Duration;
/// use palisade::Deadline;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
///
/// let mut extensions = http::Extensions::new();
/// Deadline::after(Duration::from_secs(5)).insert_earliest(&mut extensions);
/// Deadline::after(Duration::from_secs(1)).insert_earliest(&mut extensions);
/// Deadline::after(Duration::from_secs(9)).insert_earliest(&mut extensions);
///
/// let deadline = Deadline::from_extensions(&extensions).unwrap();
/// assert!(deadline.remaining() <= Duration::from_secs(1));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(Instant);

/// About 30 years: far enough to mean "never", near enough not to overflow an `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

impl Deadline {
    /// A deadline at `instant`.
    pub fn at(instant: Instant) -> Self {
        Self(instant)
    }

    /// A deadline `budget` from now. A budget too large to represent is clamped to about thirty
    /// years rather than overflowing.
    pub fn after(budget: Duration) -> Self {
        Self::after_from(Instant::now(), budget)
    }

    /// A deadline `budget` after `now`, clamped like [`Deadline::after`].
    pub fn after_from(now: Instant, budget: Duration) -> Self {
        // Halve until representable: near the end of the clock, the latest instant there is.
        let mut budget = budget.min(FAR_FUTURE);
        loop {
            if let Some(instant) = now.checked_add(budget) {
                return Self(instant);
            }
            budget /= 2;
        }
    }

    /// The instant.
    pub fn instant(self) -> Instant {
        self.0
    }

    /// The time left, zero once passed.
    pub fn remaining(self) -> Duration {
        self.remaining_from(Instant::now())
    }

    /// The time left at `now`, zero once passed.
    pub fn remaining_from(self, now: Instant) -> Duration {
        self.0.saturating_duration_since(now)
    }

    /// Whether the deadline has passed at `now`.
    pub fn has_passed_at(self, now: Instant) -> bool {
        self.0 <= now
    }

    /// The deadline in `extensions`, if a layer set one.
    pub fn from_extensions(extensions: &Extensions) -> Option<Self> {
        extensions.get::<Self>().copied()
    }

    /// Stores this deadline unless `extensions` already holds an earlier one; returns the
    /// deadline now in force.
    #[allow(
        clippy::return_self_not_must_use,
        reason = "called for its effect on `extensions`"
    )]
    pub fn insert_earliest(self, extensions: &mut Extensions) -> Self {
        let effective = match extensions.get::<Self>() {
            Some(existing) if *existing <= self => *existing,
            _ => self,
        };
        extensions.insert(effective);
        effective
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn remaining_counts_down_with_paused_time() {
        let deadline = Deadline::after(Duration::from_millis(300));
        assert_eq!(deadline.remaining(), Duration::from_millis(300));
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(deadline.remaining(), Duration::from_millis(100));
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(deadline.remaining(), Duration::ZERO);
        assert!(deadline.has_passed_at(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn nested_deadlines_keep_the_earliest() {
        let mut extensions = Extensions::new();
        let late = Deadline::after(Duration::from_secs(10));
        let early = Deadline::after(Duration::from_secs(1));
        assert_eq!(late.insert_earliest(&mut extensions), late);
        assert_eq!(early.insert_earliest(&mut extensions), early);
        assert_eq!(late.insert_earliest(&mut extensions), early);
        assert_eq!(Deadline::from_extensions(&extensions), Some(early));
    }

    #[tokio::test(start_paused = true)]
    async fn huge_budgets_do_not_overflow() {
        let deadline = Deadline::after(Duration::MAX);
        assert!(deadline.remaining() >= Duration::from_secs(86_400 * 365));
    }
}
