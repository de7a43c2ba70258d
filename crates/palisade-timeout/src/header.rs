//! Headers that carry a caller's time budget: `grpc-timeout` and plain milliseconds.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::fmt;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// The most digits a `grpc-timeout` value may have.
const GRPC_MAX_DIGITS: usize = 8;
const GRPC_MAX_VALUE: u64 = 99_999_999;
/// Millisecond values longer than this are not a deadline anyone meant (over 300 years).
const MILLIS_MAX_DIGITS: usize = 13;

/// A header that carries the time budget of a request, and its format.
///
/// Used inbound by [`HttpTimeoutLayer`](crate::HttpTimeoutLayer) to honour a caller's deadline,
/// and outbound by [`PropagateDeadlineLayer`](crate::PropagateDeadlineLayer) to pass the time
/// left to the next service.
///
/// ```
/// use std::time::Duration;
/// use palisade::timeout::DeadlineHeader;
///
/// let grpc = DeadlineHeader::grpc_timeout();
/// assert_eq!(grpc.parse(b"250m").unwrap(), Duration::from_millis(250));
/// assert_eq!(grpc.encode(Duration::from_millis(1500)), "1500000u");
/// assert!(grpc.parse(b"250").is_err());
///
/// let millis = DeadlineHeader::milliseconds("x-request-timeout-ms".parse().unwrap());
/// assert_eq!(millis.parse(b"1500").unwrap(), Duration::from_millis(1500));
/// assert_eq!(millis.encode(Duration::from_millis(1500)), "1500");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineHeader {
    name: HeaderName,
    format: DeadlineFormat,
}

/// How a [`DeadlineHeader`] writes a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum DeadlineFormat {
    /// gRPC's `TimeoutValue TimeoutUnit`: at most 8 digits and one of `H`, `M`, `S`, `m`, `u`,
    /// `n` (hours to nanoseconds), e.g. `250m`.
    Grpc,
    /// A whole number of milliseconds, e.g. `250` (as Envoy's
    /// `x-envoy-expected-rq-timeout-ms`).
    Milliseconds,
}

/// A deadline header value that cannot be read, or a header sent more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDeadline {
    reason: &'static str,
}

impl fmt::Display for InvalidDeadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for InvalidDeadline {}

impl DeadlineHeader {
    /// `grpc-timeout` in gRPC's format.
    pub fn grpc_timeout() -> Self {
        Self::new(
            HeaderName::from_static("grpc-timeout"),
            DeadlineFormat::Grpc,
        )
    }

    /// A header holding whole milliseconds.
    pub fn milliseconds(name: HeaderName) -> Self {
        Self::new(name, DeadlineFormat::Milliseconds)
    }

    /// A header `name` in `format`.
    pub fn new(name: HeaderName, format: DeadlineFormat) -> Self {
        Self { name, format }
    }

    /// The header name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The format.
    pub fn format(&self) -> DeadlineFormat {
        self.format
    }

    /// Parses a header value. Leading and trailing whitespace is allowed; nothing else is.
    ///
    /// # Errors
    ///
    /// [`InvalidDeadline`] when the value does not follow the format.
    pub fn parse(&self, value: &[u8]) -> Result<Duration, InvalidDeadline> {
        let value = value.trim_ascii();
        match self.format {
            DeadlineFormat::Grpc => parse_grpc(value),
            DeadlineFormat::Milliseconds => parse_millis(value),
        }
    }

    /// Reads the header from `headers`: `Ok(None)` when absent.
    ///
    /// # Errors
    ///
    /// [`InvalidDeadline`] when the value is malformed or the header appears more than once
    /// (two budgets are ambiguous).
    pub fn read(&self, headers: &HeaderMap) -> Result<Option<Duration>, InvalidDeadline> {
        let mut values = headers.get_all(&self.name).iter();
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(InvalidDeadline {
                reason: "the deadline header appears more than once",
            });
        }
        self.parse(first.as_bytes()).map(Some)
    }

    /// Writes `budget`, rounded down so the receiver's deadline is never later than ours.
    pub fn encode(&self, budget: Duration) -> HeaderValue {
        self.encode_rounded(budget).0
    }

    /// [`encode`](Self::encode), and the budget the value says after rounding down.
    pub(crate) fn encode_rounded(&self, budget: Duration) -> (HeaderValue, Duration) {
        let (text, rounded) = match self.format {
            DeadlineFormat::Grpc => encode_grpc(budget),
            DeadlineFormat::Milliseconds => {
                let millis = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
                let max = 10u64.pow(u32::try_from(MILLIS_MAX_DIGITS).unwrap_or(13)) - 1;
                let millis = millis.min(max);
                (millis.to_string(), Duration::from_millis(millis))
            }
        };
        match HeaderValue::try_from(text) {
            Ok(value) => (value, rounded),
            Err(_) => (HeaderValue::from_static("0"), Duration::ZERO),
        }
    }
}

fn digits(value: &[u8], max: usize) -> Result<u64, InvalidDeadline> {
    if value.is_empty() {
        return Err(InvalidDeadline {
            reason: "the deadline has no digits",
        });
    }
    if value.len() > max {
        return Err(InvalidDeadline {
            reason: "the deadline has too many digits",
        });
    }
    value.iter().try_fold(0u64, |acc, b| {
        if b.is_ascii_digit() {
            Ok(acc * 10 + u64::from(b - b'0'))
        } else {
            Err(InvalidDeadline {
                reason: "the deadline is not a whole number",
            })
        }
    })
}

fn parse_grpc(value: &[u8]) -> Result<Duration, InvalidDeadline> {
    let Some((&unit, number)) = value.split_last() else {
        return Err(InvalidDeadline {
            reason: "the deadline is empty",
        });
    };
    let n = digits(number, GRPC_MAX_DIGITS)?;
    Ok(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => {
            return Err(InvalidDeadline {
                reason: "the grpc-timeout unit is not one of H, M, S, m, u, n",
            });
        }
    })
}

fn parse_millis(value: &[u8]) -> Result<Duration, InvalidDeadline> {
    digits(value, MILLIS_MAX_DIGITS).map(Duration::from_millis)
}

/// The finest unit whose value fits in 8 digits, rounded down, and the budget it says.
fn encode_grpc(budget: Duration) -> (String, Duration) {
    let nanos = budget.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    for (per_unit, unit) in units {
        let value = nanos / per_unit;
        if value <= u128::from(GRPC_MAX_VALUE) {
            // At most 99,999,999 units of at most an hour: no overflow.
            let rounded = Duration::from_secs(
                u64::try_from(value * per_unit / 1_000_000_000).unwrap_or(u64::MAX),
            ) + Duration::from_nanos(
                u64::try_from(value * per_unit % 1_000_000_000).unwrap_or(0),
            );
            return (format!("{value}{unit}"), rounded);
        }
    }
    (
        format!("{GRPC_MAX_VALUE}H"),
        Duration::from_secs(GRPC_MAX_VALUE * 3600),
    )
}

/// Fuzz harness: parses arbitrary bytes in both formats and checks that encoding never extends
/// a budget and is stable.
#[doc(hidden)]
pub fn fuzz_parse(data: &[u8]) {
    let formats = [
        DeadlineHeader::grpc_timeout(),
        DeadlineHeader::milliseconds(HeaderName::from_static("x-timeout-ms")),
    ];
    for header in formats {
        if let Ok(budget) = header.parse(data) {
            let (encoded, rounded) = header.encode_rounded(budget);
            let again = header
                .parse(encoded.as_bytes())
                .expect("an encoded budget parses");
            assert!(again <= budget, "encoding extended {budget:?} to {again:?}");
            assert_eq!(rounded, again, "the rounded budget is what the value says");
            let stable = header.parse(header.encode(again).as_bytes());
            assert_eq!(stable, Ok(again), "encoding is not stable");
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn grpc_table() {
        let grpc = DeadlineHeader::grpc_timeout();
        let ok: &[(&[u8], Duration)] = &[
            (b"1H", Duration::from_secs(3600)),
            (b"2M", Duration::from_secs(120)),
            (b"3S", Duration::from_secs(3)),
            (b"250m", Duration::from_millis(250)),
            (b"7u", Duration::from_micros(7)),
            (b"9n", Duration::from_nanos(9)),
            (b"0m", Duration::ZERO),
            (b"99999999H", Duration::from_secs(99_999_999 * 3600)),
            (b" 10S\t", Duration::from_secs(10)),
            (b"00000001S", Duration::from_secs(1)),
        ];
        for (value, expected) in ok {
            assert_eq!(
                grpc.parse(value),
                Ok(*expected),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
        for bad in [
            &b""[..],
            b"m",
            b"10",
            b"10s",
            b"10x",
            b"-1S",
            b"+1S",
            b"1.5S",
            b"100000000S",
            b"1 S",
            b"1SS",
            b"\xffS",
        ] {
            assert!(
                grpc.parse(bad).is_err(),
                "{:?} should be rejected",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn milliseconds_table() {
        let ms = DeadlineHeader::milliseconds(HeaderName::from_static("x-timeout-ms"));
        assert_eq!(ms.parse(b"0"), Ok(Duration::ZERO));
        assert_eq!(ms.parse(b"1500"), Ok(Duration::from_millis(1500)));
        assert_eq!(ms.parse(b" 15 "), Ok(Duration::from_millis(15)));
        for bad in [&b""[..], b"1.5", b"-1", b"1e3", b"15ms", b"12345678901234"] {
            assert!(ms.parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn grpc_encoding_picks_the_finest_unit_that_fits() {
        let grpc = DeadlineHeader::grpc_timeout();
        let cases = [
            (Duration::ZERO, "0n"),
            (Duration::from_nanos(99_999_999), "99999999n"),
            (Duration::from_millis(100), "100000u"),
            (Duration::from_secs(100), "100000m"),
            (Duration::from_secs(200_000), "200000S"),
            (Duration::from_secs(200_000_000), "3333333M"),
            (Duration::MAX, "99999999H"),
        ];
        for (budget, expected) in cases {
            assert_eq!(grpc.encode(budget), expected, "{budget:?}");
        }
    }

    #[test]
    fn a_repeated_header_is_ambiguous() {
        let grpc = DeadlineHeader::grpc_timeout();
        let mut headers = HeaderMap::new();
        assert_eq!(grpc.read(&headers), Ok(None));
        headers.append("grpc-timeout", HeaderValue::from_static("1S"));
        assert_eq!(grpc.read(&headers), Ok(Some(Duration::from_secs(1))));
        headers.append("grpc-timeout", HeaderValue::from_static("2S"));
        assert!(grpc.read(&headers).is_err());
    }

    proptest! {
        #[test]
        fn encoding_never_extends_a_budget(nanos in any::<u64>(), secs in 0u64..400_000_000_000) {
            let budget = Duration::new(secs, u32::try_from(nanos % 1_000_000_000).unwrap());
            for header in [
                DeadlineHeader::grpc_timeout(),
                DeadlineHeader::milliseconds(HeaderName::from_static("x-timeout-ms")),
            ] {
                let (encoded, rounded) = header.encode_rounded(budget);
                let back = header.parse(encoded.as_bytes()).unwrap();
                prop_assert!(back <= budget);
                prop_assert_eq!(back, rounded);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            fuzz_parse(&bytes);
        }
    }
}
