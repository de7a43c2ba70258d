//! `Cache-Control` of a JWKS response: how long its keys may be used before a refresh.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::time::Duration;

/// The lifetime a `Cache-Control` value grants: `max-age` (or `s-maxage`, which wins, as for a
/// shared cache), or zero for `no-cache`, `no-store` and `must-revalidate` with no age. `None`
/// when it says nothing usable. Linear in the value's length; a directive's argument may be
/// quoted; an unparsable or huge age counts as absent.
pub fn lifetime(value: &str) -> Option<Duration> {
    let mut max_age = None;
    let mut shared_max_age = None;
    let mut no_cache = false;
    for directive in value.split(',') {
        let directive = directive.trim();
        let (name, argument) = match directive.split_once('=') {
            Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
            None => (directive, None),
        };
        let seconds = || {
            argument
                .filter(|a| !a.is_empty() && a.len() <= 10 && a.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|a| a.parse::<u64>().ok())
        };
        if name.eq_ignore_ascii_case("max-age") {
            max_age = max_age.or_else(seconds);
        } else if name.eq_ignore_ascii_case("s-maxage") {
            shared_max_age = shared_max_age.or_else(seconds);
        } else if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            no_cache = true;
        }
    }
    if no_cache {
        return Some(Duration::ZERO);
    }
    shared_max_age.or(max_age).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives() {
        let s = Duration::from_secs;
        for (value, expected) in [
            ("max-age=3600", Some(s(3600))),
            ("public, max-age=600, must-revalidate", Some(s(600))),
            ("MAX-AGE = \"120\"", Some(s(120))),
            ("max-age=60, s-maxage=30", Some(s(30))),
            ("no-store", Some(Duration::ZERO)),
            ("max-age=600, no-cache", Some(Duration::ZERO)),
            ("max-age=-1", None),
            ("max-age=", None),
            ("max-age=99999999999", None),
            ("max-age=1e3", None),
            ("public", None),
            ("", None),
        ] {
            assert_eq!(lifetime(value), expected, "{value:?}");
        }
    }
}
