//! Seedable randomness for jitter (backoff delays, breaker open times): fast, reproducible in
//! tests, and never used for anything secret.
//!
//! [`JitterRng`] is `SplitMix64` (Steele, Lea and Flood, 2014): one 64-bit state, a handful of
//! operations per number, and every seed gives a full-period, well-mixed sequence. Seed it
//! with a fixed value in tests and with [`JitterRng::from_entropy`] otherwise.
//!
//! ```
//! use std::time::Duration;
//! use palisade::jitter::JitterRng;
//!
//! let mut a = JitterRng::seeded(7);
//! let mut b = JitterRng::seeded(7);
//! assert_eq!(a.next_u64(), b.next_u64(), "the same seed gives the same sequence");
//!
//! // A delay of 100 ms with ±20 % jitter.
//! let delay = a.jitter(Duration::from_millis(100), 0.2);
//! assert!(delay >= Duration::from_millis(80) && delay <= Duration::from_millis(120));
//! ```

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// A seedable pseudo-random generator for jitter (`SplitMix64`). Not for secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JitterRng {
    state: u64,
}

impl JitterRng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator seeded from the process's hash randomness (the standard library's
    /// `RandomState`, itself seeded by the operating system), different in each process.
    pub fn from_entropy() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x5eed);
        Self::seeded(hasher.finish())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)`, with 53 bits of precision.
    #[allow(
        clippy::cast_precision_loss,
        reason = "53 bits fit an f64 mantissa exactly"
    )]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform duration in `[low, high]` (`low` when `high <= low`), to the nanosecond.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let Some(span) = high.checked_sub(low).filter(|span| !span.is_zero()) else {
            return low;
        };
        let nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
        // `nanos + 1` values: both ends included. The modulo bias is below 2^-40 for any
        // span under an hour, far below what jitter can notice.
        let offset = match nanos.checked_add(1) {
            Some(count) => self.next_u64() % count,
            None => self.next_u64(),
        };
        low + Duration::from_nanos(offset)
    }

    /// `value` moved by a uniform amount within `±fraction` of itself (`fraction` is clamped
    /// to `[0, 1]`; NaN means none).
    pub fn jitter(&mut self, value: Duration, fraction: f64) -> Duration {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        let spread = value.mul_f64(fraction);
        self.between(value.saturating_sub(spread), value.saturating_add(spread))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // The first outputs for seed 0, as published with the algorithm.
        let mut rng = JitterRng::seeded(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn entropy_seeds_differ() {
        assert_ne!(
            JitterRng::from_entropy().next_u64(),
            JitterRng::from_entropy().next_u64()
        );
    }

    #[test]
    fn edges() {
        let mut rng = JitterRng::seeded(1);
        let d = Duration::from_millis(10);
        assert_eq!(rng.between(d, d), d);
        assert_eq!(rng.between(d, Duration::ZERO), d);
        assert_eq!(rng.jitter(d, 0.0), d);
        assert_eq!(rng.jitter(d, f64::NAN), d);
        assert!(
            rng.jitter(d, 5.0) <= Duration::from_millis(20),
            "clamped to 100 %"
        );
        let huge = rng.between(Duration::ZERO, Duration::MAX);
        assert!(huge <= Duration::MAX);
    }

    proptest::proptest! {
        #[test]
        fn values_stay_in_bounds(seed in proptest::prelude::any::<u64>(), ms in 0u64..1_000_000, fraction in 0.0f64..1.0) {
            let mut rng = JitterRng::seeded(seed);
            let unit = rng.unit();
            proptest::prop_assert!((0.0..1.0).contains(&unit));
            let value = Duration::from_millis(ms);
            let jittered = rng.jitter(value, fraction);
            proptest::prop_assert!(jittered >= value.mul_f64(1.0 - fraction).saturating_sub(Duration::from_nanos(1)));
            proptest::prop_assert!(jittered <= value.mul_f64(1.0 + fraction) + Duration::from_nanos(1));
        }
    }

    #[test]
    fn the_mean_is_in_the_middle() {
        let mut rng = JitterRng::seeded(42);
        let n = 20_000;
        let sum: f64 = (0..n).map(|_| rng.unit()).sum();
        let mean = sum / f64::from(n);
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    }
}
