//! What both retry layers share: the schedule, the budget, the caps.

use std::time::Duration;

use crate::RetryBudget;
use crate::backoff::Backoff;

/// The settings a retrying call reads; one per layer, shared by its services and futures.
#[derive(Clone, Debug)]
pub(crate) struct Shared<M> {
    pub(crate) schedule: M,
    pub(crate) max_attempts: u32,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) retry_after_cap: Duration,
    pub(crate) min_attempt_time: Duration,
}

/// The default longest `Retry-After` honoured.
pub const DEFAULT_RETRY_AFTER_CAP: Duration = Duration::from_secs(30);

impl<M> Shared<M> {
    pub(crate) fn new(schedule: M, max_attempts: u32) -> Self {
        Self {
            schedule,
            max_attempts,
            budget: Some(RetryBudget::default()),
            retry_after_cap: DEFAULT_RETRY_AFTER_CAP,
            min_attempt_time: Duration::ZERO,
        }
    }
}

impl Shared<Backoff> {
    pub(crate) fn from_backoff(backoff: Backoff) -> Self {
        let attempts = backoff.max_attempts();
        Self::new(backoff, attempts)
    }
}

/// The settings both layers' builders share, as inherent methods of each.
macro_rules! retry_settings {
    () => {
        /// Replaces the retry budget, shared with every layer given a clone of it (default:
        /// [`RetryBudget::default`](crate::RetryBudget::default), one per layer).
        #[must_use]
        pub fn budget(mut self, budget: crate::RetryBudget) -> Self {
            std::sync::Arc::make_mut(&mut self.shared).budget = Some(budget);
            self
        }

        /// Retries without a budget. Under failure every request then retries as often as its
        /// schedule allows: only for a caller that limits retries some other way.
        #[must_use]
        pub fn without_budget(mut self) -> Self {
            std::sync::Arc::make_mut(&mut self.shared).budget = None;
            self
        }

        /// The longest `Retry-After` honoured (default 30 s): a response asking for more is
        /// returned as it is, not waited for.
        #[must_use]
        pub fn retry_after_cap(mut self, cap: std::time::Duration) -> Self {
            std::sync::Arc::make_mut(&mut self.shared).retry_after_cap = cap;
            self
        }

        /// An attempt is only started if at least this much time is left before the request's
        /// [`Deadline`](palisade_core::Deadline) after the wait (default: any time at all).
        #[must_use]
        pub fn min_attempt_time(mut self, time: std::time::Duration) -> Self {
            std::sync::Arc::make_mut(&mut self.shared).min_attempt_time = time;
            self
        }

        /// The most attempts in all, the first included, whatever the schedule allows
        /// (default: the [`Backoff`](crate::Backoff)'s `max_attempts`, or 3 for other
        /// schedules).
        #[must_use]
        pub fn max_attempts(mut self, attempts: u32) -> Self {
            std::sync::Arc::make_mut(&mut self.shared).max_attempts = attempts.max(1);
            self
        }
    };
}

pub(crate) use retry_settings;
