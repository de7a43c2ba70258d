//! The sliding windows: lock-free, no allocation after construction.
//!
//! Both are exact when calls are recorded one at a time (as the reference model checks). Under
//! concurrency a count window's totals can trail its slots by the calls being recorded at that
//! instant, and a time window can lose a call recorded on another thread at the very moment
//! its bucket is recycled: errors of a call or two, never of a window.

use crate::sync::{AtomicU8, AtomicU32, AtomicU64, Ordering};

/// What one call contributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub(crate) fn record(&self, now: u64, failure: bool, slow: bool) {
        match self {
            Self::Count(window) => window.record(failure, slow),
            Self::Time(window) => window.record(now, failure, slow),
        }
    }

    pub(crate) fn counts(&self, now: u64) -> Counts {
        match self {
            Self::Count(window) => window.counts(),
            Self::Time(window) => window.counts(now),
        }
    }

    /// Whether the window is full, so a success cannot raise a rate: only a count window
    /// knows that without reading the clock.
    pub(crate) fn is_full(&self) -> bool {
        match self {
            Self::Count(window) => {
                window.calls.load(Ordering::Relaxed) as usize >= window.slots.len()
            }
            Self::Time(_) => false,
        }
    }

    pub(crate) fn reset(&self) {
        match self {
            Self::Count(window) => window.reset(),
            Self::Time(window) => window.reset(),
        }
    }
}

/// The last `n` calls: a ring of one byte per call, and running totals.
pub(crate) struct CountWindow {
    /// 0 = empty, else `1 | failure << 1 | slow << 2`.
    slots: Box<[AtomicU8]>,
    next: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
    slow: AtomicU32,
}

const FILLED: u8 = 1;
const FAILED: u8 = 2;
const SLOW: u8 = 4;

impl CountWindow {
    pub(crate) fn new(calls: u32) -> Self {
        Self {
            slots: (0..calls).map(|_| AtomicU8::new(0)).collect(),
            next: AtomicU64::new(0),
            calls: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            slow: AtomicU32::new(0),
        }
    }

    fn record(&self, failure: bool, slow: bool) {
        let code = FILLED | if failure { FAILED } else { 0 } | if slow { SLOW } else { 0 };
        if code == FILLED
            && self.failures.load(Ordering::Relaxed) == 0
            && self.slow.load(Ordering::Relaxed) == 0
            && self.calls.load(Ordering::Relaxed) as usize == self.slots.len()
        {
            // A healthy upstream's steady state: every slot holds a plain success, so one more
            // changes nothing, wherever it would go. Skipping it keeps the hot path free of
            // writes, and the window's cache lines shared between cores.
            return;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        // The window holds at most 2^20 slots, so the index fits a usize everywhere.
        let slot = &self.slots[usize::try_from(i % self.slots.len() as u64).unwrap_or(0)];
        let old = slot.swap(code, Ordering::AcqRel);
        if old == code {
            // The steady state of a healthy upstream: a success replaces a success.
            return;
        }
        if old & FILLED == 0 {
            self.calls.fetch_add(1, Ordering::Relaxed);
        }
        adjust(&self.failures, old & FAILED != 0, failure);
        adjust(&self.slow, old & SLOW != 0, slow);
    }

    fn counts(&self) -> Counts {
        Counts {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            slow: self.slow.load(Ordering::Relaxed),
        }
    }

    fn reset(&self) {
        for slot in &self.slots {
            slot.store(0, Ordering::Relaxed);
        }
        self.next.store(0, Ordering::Relaxed);
        self.calls.store(0, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
        self.slow.store(0, Ordering::Relaxed);
    }
}

fn adjust(total: &AtomicU32, was: bool, is: bool) {
    match (was, is) {
        (false, true) => {
            total.fetch_add(1, Ordering::Relaxed);
        }
        (true, false) => {
            total.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// The calls of the last `buckets` slices of `bucket_nanos` each.
pub(crate) struct TimeWindow {
    bucket_nanos: u64,
    buckets: Box<[Bucket]>,
}

struct Bucket {
    /// The slice (`now / bucket_nanos`) the counts belong to.
    epoch: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
    slow: AtomicU32,
}

impl TimeWindow {
    pub(crate) fn new(length_nanos: u64, buckets: u32) -> Self {
        Self {
            bucket_nanos: (length_nanos / u64::from(buckets)).max(1),
            buckets: (0..buckets)
                .map(|_| Bucket {
                    epoch: AtomicU64::new(0),
                    calls: AtomicU32::new(0),
                    failures: AtomicU32::new(0),
                    slow: AtomicU32::new(0),
                })
                .collect(),
        }
    }

    fn bucket(&self, epoch: u64) -> &Bucket {
        &self.buckets[usize::try_from(epoch % self.buckets.len() as u64).unwrap_or(0)]
    }

    fn record(&self, now: u64, failure: bool, slow: bool) {
        let epoch = now / self.bucket_nanos;
        let bucket = self.bucket(epoch);
        loop {
            let seen = bucket.epoch.load(Ordering::Acquire);
            if seen == epoch {
                bucket.calls.fetch_add(1, Ordering::Relaxed);
                if failure {
                    bucket.failures.fetch_add(1, Ordering::Relaxed);
                }
                if slow {
                    bucket.slow.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            if seen > epoch {
                // Recorded by a thread whose clock read is older than the bucket: too late.
                return;
            }
            if bucket
                .epoch
                .compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // This call recycles the bucket: its counts start over with this call.
                bucket.calls.store(1, Ordering::Relaxed);
                bucket.failures.store(u32::from(failure), Ordering::Relaxed);
                bucket.slow.store(u32::from(slow), Ordering::Relaxed);
                return;
            }
        }
    }

    fn counts(&self, now: u64) -> Counts {
        let current = now / self.bucket_nanos;
        let oldest = current.saturating_sub(self.buckets.len() as u64 - 1);
        let mut counts = Counts::default();
        for bucket in &self.buckets {
            let epoch = bucket.epoch.load(Ordering::Acquire);
            if epoch >= oldest && epoch <= current {
                counts.calls = counts
                    .calls
                    .saturating_add(bucket.calls.load(Ordering::Relaxed));
                counts.failures = counts
                    .failures
                    .saturating_add(bucket.failures.load(Ordering::Relaxed));
                counts.slow = counts
                    .slow
                    .saturating_add(bucket.slow.load(Ordering::Relaxed));
            }
        }
        counts
    }

    fn reset(&self) {
        for bucket in &self.buckets {
            bucket.calls.store(0, Ordering::Relaxed);
            bucket.failures.store(0, Ordering::Relaxed);
            bucket.slow.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(all(test, not(palisade_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_count_window_keeps_the_last_n() {
        let window = CountWindow::new(4);
        for (failure, slow) in [(true, false), (true, true), (false, false), (false, true)] {
            window.record(failure, slow);
        }
        assert_eq!(
            window.counts(),
            Counts {
                calls: 4,
                failures: 2,
                slow: 2
            }
        );
        // Two successes push the two failures out.
        window.record(false, false);
        window.record(false, false);
        assert_eq!(
            window.counts(),
            Counts {
                calls: 4,
                failures: 0,
                slow: 1
            }
        );
        window.reset();
        assert_eq!(window.counts(), Counts::default());
    }

    #[test]
    fn a_time_window_forgets_old_buckets() {
        let ms = 1_000_000;
        // 4 buckets of 10 ms.
        let window = TimeWindow::new(40 * ms, 4);
        window.record(0, true, false);
        window.record(5 * ms, false, false);
        window.record(15 * ms, true, true);
        assert_eq!(
            window.counts(15 * ms),
            Counts {
                calls: 3,
                failures: 2,
                slow: 1
            }
        );
        // At 40 ms the first bucket (0-10 ms) has left the window.
        assert_eq!(
            window.counts(40 * ms),
            Counts {
                calls: 1,
                failures: 1,
                slow: 1
            }
        );
        // Recording at 45 ms recycles bucket 0.
        window.record(45 * ms, false, false);
        assert_eq!(window.counts(45 * ms).calls, 2);
        // Long after, nothing is left, even where a bucket's index comes round again.
        assert_eq!(window.counts(10_000 * ms), Counts::default());
    }
}
