//! `RateLimit-Policy`, `RateLimit` and `Retry-After` rendering for any policy name, quota and
//! decision: every rendered header is a valid header value, and refused names are refused.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_ratelimit::__fuzz::headers(data));
