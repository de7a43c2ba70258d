//! `Retry-After` (RFC 9110 section 10.2.3): delta-seconds, or an HTTP-date in any of its three
//! forms (IMF-fixdate, the obsolete RFC 850 form, and asctime).
//!
//! Parsing is strict and linear: whitespace around the value is allowed; anything else that is
//! not one of the forms is `None`. A date in the past means "now" (a zero wait). Huge numbers
//! saturate instead of overflowing; negative numbers are not delta-seconds.
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use palisade::retry::retry_after::parse;
//!
//! let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
//! assert_eq!(parse(b"120", now), Some(Duration::from_secs(120)));
//! assert_eq!(parse(b"Sun, 06 Nov 1994 08:50:37 GMT", now), Some(Duration::from_secs(60)));
//! assert_eq!(parse(b"Sunday, 06-Nov-94 08:49:40 GMT", now), Some(Duration::from_secs(3)));
//! assert_eq!(parse(b"Sun Nov  6 08:49:47 1994", now), Some(Duration::from_secs(10)));
//! assert_eq!(parse(b"-5", now), None);
//! ```
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The wait a `Retry-After` value asks for, counted from `now` for an HTTP-date; `None` when the
/// value is malformed.
pub fn parse(value: &[u8], now: SystemTime) -> Option<Duration> {
    let value = value.trim_ascii();
    if value.first().is_some_and(u8::is_ascii_digit) && value.iter().all(u8::is_ascii_digit) {
        // Saturating: "99999999999999999999999" is a very long time, not an error.
        let seconds = value.iter().fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        return Some(Duration::from_secs(seconds));
    }
    let at = http_date(value, now)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an HTTP-date (RFC 9110 section 5.6.7) in any of its three forms. `now` places the
/// two-digit year of the obsolete RFC 850 form: it is the latest year with those two digits
/// that is at most 50 years after `now` (RFC 9110: a year that would be more than 50 years in
/// the future is the most recent past one).
pub fn http_date(value: &[u8], now: SystemTime) -> Option<SystemTime> {
    let text = std::str::from_utf8(value).ok()?;
    let (day, month, year, time) =
        if let Some(rest) = text.get(3..).and_then(|r| r.strip_prefix(", ")) {
            // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
            weekday_short(text.get(..3)?)?;
            let parts: Vec<&str> = rest.split(' ').collect();
            let [day, month, year, time, "GMT"] = parts.as_slice() else {
                return None;
            };
            if day.len() != 2 || year.len() != 4 {
                return None;
            }
            (number(day)?, month_number(month)?, number(year)?, *time)
        } else if let Some((weekday, rest)) = text.split_once(", ") {
            // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
            weekday_long(weekday)?;
            let parts: Vec<&str> = rest.split(' ').collect();
            let [date, time, "GMT"] = parts.as_slice() else {
                return None;
            };
            let date: Vec<&str> = date.split('-').collect();
            let [day, month, year] = date.as_slice() else {
                return None;
            };
            if day.len() != 2 || year.len() != 2 {
                return None;
            }
            // RFC 9110: never more than 50 years in the future. The latest year ending in
            // these two digits that is at most 50 years after now.
            let latest = civil_from_days(seconds_since_epoch(now) / 86_400).0 + 50;
            let year = latest - (latest + 100 - number(year)?) % 100;
            (number(day)?, month_number(month)?, year, *time)
        } else {
            // asctime: "Sun Nov  6 08:49:37 1994" (the day is space-padded to two characters)
            if text.len() != 24 {
                return None;
            }
            weekday_short(text.get(..3)?)?;
            let bytes = text.as_bytes();
            if bytes.get(3) != Some(&b' ') || bytes.get(7) != Some(&b' ') {
                return None;
            }
            let month = month_number(text.get(4..7)?)?;
            let day = text.get(8..10)?;
            let day = day.strip_prefix(' ').unwrap_or(day);
            if bytes.get(10) != Some(&b' ') || bytes.get(19) != Some(&b' ') {
                return None;
            }
            (
                number(day)?,
                month,
                number(text.get(20..24)?)?,
                text.get(11..19)?,
            )
        };
    let time: Vec<&str> = time.split(':').collect();
    let [hour, minute, second] = time.as_slice() else {
        return None;
    };
    if hour.len() != 2 || minute.len() != 2 || second.len() != 2 {
        return None;
    }
    let (hour, minute, second) = (number(hour)?, number(minute)?, number(second)?);
    // A leap second (60) is accepted as written, as RFC 9110's grammar allows.
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    if day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

fn number(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn weekday_short(text: &str) -> Option<()> {
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        .contains(&text)
        .then_some(())
}

fn weekday_long(text: &str) -> Option<()> {
    [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ]
    .contains(&text)
    .then_some(())
}

fn month_number(text: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS
        .iter()
        .position(|m| *m == text)
        .and_then(|i| u64::try_from(i + 1).ok())
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn seconds_since_epoch(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// The year, month (1 to 12) and day of the month (from 0) of the day `days` after 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let (mut year, mut remaining) = (1970, days);
    loop {
        let length = if is_leap(year) { 366 } else { 365 };
        if remaining < length {
            break;
        }
        remaining -= length;
        year += 1;
    }
    let mut month = 1;
    while remaining >= days_in_month(year, month) {
        remaining -= days_in_month(year, month);
        month += 1;
    }
    (year, month, remaining)
}

/// Days from 1970-01-01 to the date (Howard Hinnant's `days_from_civil`, for years from 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Fuzz harness: parsing arbitrary bytes never panics; a parsed date prints back as the same
/// instant in IMF-fixdate, and delta-seconds are monotone in their digits.
#[doc(hidden)]
pub fn fuzz_parse(data: &[u8]) {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let parsed = parse(data, now);
    if let Some(at) = http_date(data, now) {
        let imf = imf_fixdate(at);
        assert_eq!(http_date(imf.as_bytes(), now), Some(at), "{imf}");
        assert_eq!(
            parse(data, now),
            Some(at.duration_since(now).unwrap_or(Duration::ZERO))
        );
    }
    if let Some(wait) = parsed
        && data.trim_ascii().iter().all(u8::is_ascii_digit)
    {
        let mut longer = data.trim_ascii().to_vec();
        longer.push(b'0');
        assert!(parse(&longer, now).unwrap_or(Duration::MAX) >= wait);
    }
}

/// Formats `at` as an IMF-fixdate (for tests and the fuzz harness).
#[doc(hidden)]
pub fn imf_fixdate(at: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = seconds_since_epoch(at);
    let days = seconds / 86_400;
    let (year, month, remaining) = civil_from_days(days);
    let in_day = seconds % 86_400;
    let name = |names: &[&'static str], index: u64| {
        usize::try_from(index)
            .ok()
            .and_then(|i| names.get(i))
            .copied()
            .unwrap_or_default()
    };
    format!(
        "{}, {:02} {} {year} {:02}:{:02}:{:02} GMT",
        name(&DAYS, days % 7),
        remaining + 1,
        name(&MONTHS, month - 1),
        in_day / 3_600,
        in_day % 3_600 / 60,
        in_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn the_three_date_forms_of_rfc_9110() {
        let expected = at(784_111_777);
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                http_date(form.as_bytes(), expected),
                Some(expected),
                "{form}"
            );
        }
        assert_eq!(imf_fixdate(expected), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    /// Issue 16, item 11: RFC 850's two-digit years were read as 1970 to 2069 whatever the
    /// date; RFC 9110 places them within 50 years after now, else in the century before.
    #[test]
    fn rfc_850_years_follow_the_50_year_rule() {
        let year_start = |year: u64| at(days_from_civil(year, 1, 1) * 86_400);
        let cases = [
            // (now's year, two-digit year, the year it means)
            (1994, "94", 1994),
            (2026, "76", 2076),
            (2026, "77", 1977),
            (2026, "26", 2026),
            (2026, "00", 2000),
            (2060, "10", 2110),
            (2060, "11", 2011),
            (2099, "49", 2149),
            (2099, "50", 2050),
        ];
        for (now_year, two, expected) in cases {
            let value = format!("Thursday, 01-Jan-{two} 00:00:00 GMT");
            // The weekday is not checked against the date.
            assert_eq!(
                http_date(value.as_bytes(), year_start(now_year)),
                Some(year_start(expected)),
                "{value} read in {now_year}"
            );
        }
    }

    #[test]
    fn retry_after_table() {
        let now = at(784_111_777);
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("  7  ", Some(7)),
            ("120", Some(120)),
            ("99999999999999999999999999", Some(u64::MAX)),
            ("-1", None),
            ("+1", None),
            ("1.5", None),
            ("", None),
            ("1 2", None),
            ("Sun, 06 Nov 1994 08:49:38 GMT", Some(1)),
            ("Sun, 06 Nov 1994 08:49:30 GMT", Some(0)),
            ("Thu, 01 Jan 2099 00:00:00 GMT", Some(3_286_797_023)),
            ("Sun, 06 Nov 1994 08:49:37 UTC", None),
            ("Sun, 6 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 94 08:49:37 GMT", None),
            ("Sun, 31 Feb 1994 08:49:37 GMT", None),
            ("Thu, 29 Feb 1996 08:49:37 GMT", Some(41_472_000)),
            ("Sun, 29 Feb 1900 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 24:00:00 GMT", None),
            ("Sun, 06 Nov 1994 8:49:37 GMT", None),
            ("Xyz, 06 Nov 1994 08:49:37 GMT", None),
            ("Sunday, 06-Nov-1994 08:49:37 GMT", None),
            ("Funday, 06-Nov-94 08:49:37 GMT", None),
            ("Sun Nov 06 08:49:37 1994", Some(0)),
            ("Sun Nov  6 08:49:37 1994 ", Some(0)),
            ("Sun Nov  6 08:49:37 94", None),
            ("Sun, 01 Jan 1969 00:00:00 GMT", None),
        ];
        for (value, seconds) in cases {
            assert_eq!(
                parse(value.as_bytes(), now),
                seconds.map(Duration::from_secs),
                "{value:?}"
            );
        }
    }

    #[test]
    fn days_match_a_walk_through_the_calendar() {
        let mut days = 0;
        for year in 1970..2200 {
            for month in 1..=12 {
                assert_eq!(days_from_civil(year, month, 1), days, "{year}-{month}");
                days += days_in_month(year, month);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn dates_round_trip(seconds in 0u64..10_000_000_000) {
            let when = at(seconds);
            proptest::prop_assert_eq!(http_date(imf_fixdate(when).as_bytes(), when), Some(when));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            fuzz_parse(&bytes);
        }
    }
}
