//! Quotas: how many requests per period, with what burst.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use palisade_core::BuildError;

/// A rate: `count` requests per `period`, admitting up to `burst` at once. Say what you mean:
/// `Quota::per_second(100)` is 100 requests per second, with a burst of 100 unless
/// [`with_burst`](Self::with_burst) says otherwise.
///
/// ```
/// use std::time::Duration;
/// use palisade::ratelimit::Quota;
///
/// let quota = Quota::per_second(20).with_burst(40);
/// assert_eq!(quota.count(), 20);
/// assert_eq!(quota.burst(), 40);
/// assert_eq!(quota.emission_interval(), Duration::from_millis(50));
/// assert_eq!("20/s burst 40".parse::<Quota>().unwrap(), quota);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    count: u32,
    period: Duration,
    burst: u32,
}

impl Quota {
    /// `count` requests per second, burst `count`.
    pub const fn per_second(count: u32) -> Self {
        Self::new(count, Duration::from_secs(1))
    }

    /// `count` requests per minute, burst `count`.
    pub const fn per_minute(count: u32) -> Self {
        Self::new(count, Duration::from_secs(60))
    }

    /// `count` requests per hour, burst `count`.
    pub const fn per_hour(count: u32) -> Self {
        Self::new(count, Duration::from_secs(3600))
    }

    /// `count` requests per `period`, burst `count`.
    pub const fn new(count: u32, period: Duration) -> Self {
        Self {
            count,
            period,
            burst: count,
        }
    }

    /// At most `burst` requests at once (after a quiet spell).
    #[must_use]
    pub const fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// Requests per period.
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// The period.
    pub const fn period(&self) -> Duration {
        self.period
    }

    /// The burst.
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// The time one request's permit takes to come back: `period / count`.
    pub fn emission_interval(&self) -> Duration {
        self.period / self.count.max(1)
    }

    /// Checks the quota: a count and burst of at least 1, a period from 1 ms to 1 day, and an
    /// emission interval of at least 1 µs.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming `quota`.
    pub fn check(&self) -> Result<(), BuildError> {
        if self.count == 0 {
            return Err(BuildError::new("quota", "the count must be at least 1"));
        }
        if self.burst == 0 {
            return Err(BuildError::new("quota", "the burst must be at least 1"));
        }
        if self.period < Duration::from_millis(1) || self.period > Duration::from_secs(86_400) {
            return Err(BuildError::new(
                "quota",
                "the period must be from 1 ms to 1 day",
            ));
        }
        if self.emission_interval() < Duration::from_micros(1) {
            return Err(BuildError::new(
                "quota",
                "more than one request per microsecond is not a limit",
            ));
        }
        Ok(())
    }

    /// The `governor` quota with the same emission interval and burst.
    pub(crate) fn to_governor(self) -> governor::Quota {
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        governor::Quota::with_period(self.emission_interval().max(Duration::from_nanos(1)))
            .map_or_else(
                || governor::Quota::per_second(burst),
                |quota| quota.allow_burst(burst),
            )
    }

    /// The window, in whole seconds (at least 1), for the `RateLimit-Policy` header's `w`.
    /// The quota as `(q, w)` for `RateLimit-Policy`, whose window is whole seconds: the
    /// count and period when the period is whole seconds, else the same rate over the period
    /// rounded up to a second (`5/500ms` is `q=10;w=1`), the count rounded down.
    pub(crate) fn policy_quota_window(&self) -> (u64, u64) {
        let nanos = self.period.as_nanos().max(1);
        if nanos.is_multiple_of(1_000_000_000) {
            return (u64::from(self.count), self.period.as_secs());
        }
        let window = nanos.div_ceil(1_000_000_000);
        let quota = u128::from(self.count) * window * 1_000_000_000 / nanos;
        (
            u64::try_from(quota).unwrap_or(u64::MAX),
            u64::try_from(window).unwrap_or(u64::MAX),
        )
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let period = match self.period.as_millis() {
            1000 => "s".to_owned(),
            60_000 => "min".to_owned(),
            3_600_000 => "h".to_owned(),
            86_400_000 => "day".to_owned(),
            ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
            ms => format!("{ms}ms"),
        };
        write!(f, "{}/{period}", self.count)?;
        if self.burst != self.count {
            write!(f, " burst {}", self.burst)?;
        }
        Ok(())
    }
}

/// Why a quota string did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaParseError(&'static str);

impl fmt::Display for QuotaParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; write a quota as `<count>/<period>` with an optional burst, e.g. `100/s`, \
             `1000/min burst 200`, `50/10s`",
            self.0
        )
    }
}

impl std::error::Error for QuotaParseError {}

impl FromStr for Quota {
    type Err = QuotaParseError;

    /// `<count>/<period>[ burst <n>]`, the period `s`, `sec`, `min`, `h`, `hour`, `day`, or a
    /// number with `ms`, `s`, `m` or `h` (`10s`, `500ms`). Whitespace is free; `burst=40` and
    /// `;burst=40` are accepted too. The result is checked as [`Quota::check`] does.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() > 64 {
            return Err(QuotaParseError("the quota is too long"));
        }
        let text = text.trim();
        let (rate, burst) = match text.split_once("burst") {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (text, None),
        };
        let rate = rate.trim().trim_end_matches([';', ',']).trim();
        let (count, period) = rate
            .split_once('/')
            .ok_or(QuotaParseError("the quota has no `/`"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| QuotaParseError("the count is not a whole number"))?;
        let period = parse_period(period.trim())?;
        let mut quota = Self::new(count, period);
        if let Some(burst) = burst {
            let burst = burst.trim().trim_start_matches(['=', ':']).trim();
            quota.burst = burst
                .parse()
                .map_err(|_| QuotaParseError("the burst is not a whole number"))?;
        }
        quota
            .check()
            .map_err(|_| QuotaParseError("the quota is out of range"))?;
        Ok(quota)
    }
}

fn parse_period(text: &str) -> Result<Duration, QuotaParseError> {
    let named = match text {
        "s" | "sec" | "second" => Some(Duration::from_secs(1)),
        "m" | "min" | "minute" => Some(Duration::from_secs(60)),
        "h" | "hour" => Some(Duration::from_secs(3600)),
        "d" | "day" => Some(Duration::from_secs(86_400)),
        _ => None,
    };
    if let Some(period) = named {
        return Ok(period);
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return Err(QuotaParseError("the period is not a duration"));
    }
    let (amount, unit) = text
        .split_at_checked(digits)
        .ok_or(QuotaParseError("the period is not a duration"))?;
    let amount: u64 = amount
        .parse()
        .map_err(|_| QuotaParseError("the period is not a duration"))?;
    let unit = match unit {
        "ms" => Duration::from_millis(1),
        "s" | "sec" => Duration::from_secs(1),
        "m" | "min" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(QuotaParseError("the period's unit is not ms, s, m or h")),
    };
    unit.checked_mul(u32::try_from(amount).map_err(|_| QuotaParseError("the period is too long"))?)
        .ok_or(QuotaParseError("the period is too long"))
}

/// From a configuration file (feature `serde`): the string form, `"20/s burst 40"`.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Quota {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let s = Duration::from_secs;
        for (text, count, period, burst) in [
            ("100/s", 100, s(1), 100),
            (" 1000 / min ", 1000, s(60), 1000),
            ("20/s burst 40", 20, s(1), 40),
            ("20/s;burst=40", 20, s(1), 40),
            ("50/10s", 50, s(10), 50),
            ("5/500ms", 5, Duration::from_millis(500), 5),
            ("1/day", 1, s(86_400), 1),
            ("3/2h burst: 1", 3, s(7200), 1),
        ] {
            let quota: Quota = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (quota.count(), quota.period(), quota.burst()),
                (count, period, burst),
                "{text}"
            );
            assert_eq!(
                quota.to_string().parse::<Quota>().unwrap(),
                quota,
                "{text} round-trips"
            );
        }
        for bad in [
            "",
            "100",
            "0/s",
            "10/s burst 0",
            "-1/s",
            "1.5/s",
            "10/fortnight",
            "10/0s",
            "10/1000000000h",
            "10/s burst",
            "99999999999/s",
            "10/ms",
            "2000000/s",
            &"1".repeat(65),
        ] {
            assert!(bad.parse::<Quota>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn governor_quota_matches() {
        let quota = Quota::per_minute(60).with_burst(5).to_governor();
        assert_eq!(quota.replenish_interval(), Duration::from_secs(1));
        assert_eq!(quota.burst_size().get(), 5);
    }
}
