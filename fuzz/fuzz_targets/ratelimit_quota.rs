//! Quota strings (`100/s burst 200`, `50/10s`, ...): no panic; an accepted quota is valid and
//! prints back as itself.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_ratelimit::__fuzz::quota(data));
