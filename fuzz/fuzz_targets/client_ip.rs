//! `Forwarded` / `X-Forwarded-For` resolution: the first byte picks the header, the rest are
//! header lines separated by `\n`. The harness asserts that an untrusted peer is never moved.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_core::__fuzz::client_ip(data));
