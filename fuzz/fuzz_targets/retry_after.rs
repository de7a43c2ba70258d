//! `Retry-After` values: delta-seconds (huge, negative, padded) and the three HTTP-date forms.
//! The harness asserts a parsed date prints back as the same instant and that more digits
//! never mean a shorter wait.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_retry::__fuzz::retry_after(data));
