//! `RateLimit-Policy`, `RateLimit` (draft-ietf-httpapi-ratelimit-headers) and `Retry-After`.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::fmt::Write as _;
use std::time::Duration;

use crate::limiter::Decision;
use crate::quota::Quota;

/// Whole seconds, rounded up (a wait of 1 ms is `1`, never `0`).
pub fn ceil_seconds(duration: Duration) -> u64 {
    let seconds = duration.as_secs();
    if duration.subsec_nanos() > 0 {
        seconds + 1
    } else {
        seconds
    }
}

/// Whether `name` may be a policy name: 1 to 32 characters of `[A-Za-z0-9_.-]`, so it is
/// written as a structured-field string without escaping.
pub fn is_policy_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// One policy item: `"name";q=<count>;w=<window seconds>`.
pub fn policy_item(out: &mut String, name: &str, quota: &Quota) {
    if !out.is_empty() {
        out.push_str(", ");
    }
    let (q, w) = quota.policy_quota_window();
    let _ = write!(out, "\"{name}\";q={q};w={w}");
}

/// One limit item: `"name";r=<remaining>;t=<seconds until whole>`.
pub fn limit_item(out: &mut String, name: &str, decision: &Decision) {
    if !out.is_empty() {
        out.push_str(", ");
    }
    let _ = write!(
        out,
        "\"{name}\";r={};t={}",
        decision.remaining,
        ceil_seconds(decision.reset)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering() {
        assert_eq!(ceil_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ceil_seconds(Duration::from_secs(2)), 2);
        assert_eq!(ceil_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(ceil_seconds(Duration::ZERO), 0);
        let mut policy = String::new();
        policy_item(&mut policy, "ip", &Quota::per_second(20).with_burst(40));
        policy_item(&mut policy, "user", &Quota::per_minute(1000));
        assert_eq!(policy, "\"ip\";q=20;w=1, \"user\";q=1000;w=60");
        // A period that is not whole seconds: the same rate over whole seconds.
        for (quota, expected) in [
            (Quota::new(5, Duration::from_millis(500)), "q=10;w=1"),
            (Quota::new(3, Duration::from_millis(1500)), "q=4;w=2"),
            (Quota::new(50, Duration::from_secs(10)), "q=50;w=10"),
        ] {
            let mut policy = String::new();
            policy_item(&mut policy, "x", &quota);
            assert_eq!(policy, format!("\"x\";{expected}"));
        }
        let mut limit = String::new();
        let decision = Decision {
            allowed: true,
            remaining: 7,
            reset: Duration::from_millis(1500),
            retry_after: None,
        };
        limit_item(&mut limit, "ip", &decision);
        assert_eq!(limit, "\"ip\";r=7;t=2");
        assert!(is_policy_name("per-ip_1.a"));
        for bad in ["", "a b", "a\"b", "é", &"x".repeat(33)] {
            assert!(!is_policy_name(bad), "{bad:?}");
        }
    }
}
