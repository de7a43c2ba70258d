//! Harnesses for the fuzz targets (doc-hidden feature `__fuzz`).

use std::time::Duration;

use http::HeaderValue;

use crate::headers::{ceil_seconds, is_policy_name, limit_item, policy_item};
use crate::limiter::Decision;
use crate::quota::Quota;

/// Quota strings: an accepted one is valid and round-trips through `Display`.
///
/// # Panics
///
/// When an invariant breaks.
pub fn quota(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(quota) = text.parse::<Quota>() {
        assert!(quota.check().is_ok(), "accepted an invalid quota: {text:?}");
        let printed = quota.to_string();
        assert_eq!(
            printed.parse::<Quota>().as_ref(),
            Ok(&quota),
            "{text:?} -> {printed:?}"
        );
    }
}

/// Header rendering: a name the check accepts renders into valid header values for any quota
/// and decision; `Retry-After` is never 0 for a positive wait.
///
/// # Panics
///
/// When an invariant breaks.
pub fn headers(data: &[u8]) {
    let Some(split) = data.iter().position(|b| *b == 0) else {
        return;
    };
    let Ok(name) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let numbers: Vec<u32> = data[split + 1..]
        .chunks(4)
        .map(|c| {
            let mut bytes = [0u8; 4];
            bytes[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(bytes)
        })
        .collect();
    let n = |i: usize| numbers.get(i).copied().unwrap_or(1);
    let quota = Quota::new(n(0), Duration::from_millis(u64::from(n(1)))).with_burst(n(2));
    let decision = Decision {
        allowed: n(3) % 2 == 0,
        remaining: n(4),
        reset: Duration::from_micros(u64::from(n(5))),
        retry_after: Some(Duration::from_nanos(u64::from(n(6)))),
    };
    let wait = decision.retry_after.unwrap_or_default();
    if !wait.is_zero() {
        assert!(ceil_seconds(wait) >= 1);
    }
    if !is_policy_name(name) {
        return;
    }
    let mut policy = String::new();
    policy_item(&mut policy, name, &quota);
    let mut limit = String::new();
    limit_item(&mut limit, name, &decision);
    for value in [&policy, &limit] {
        assert!(HeaderValue::from_str(value).is_ok(), "{value:?}");
        assert!(value.starts_with(&format!("\"{name}\";")), "{value:?}");
    }
}
