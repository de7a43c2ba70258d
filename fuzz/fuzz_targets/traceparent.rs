//! W3C `traceparent` and `tracestate` parsing: the harness asserts that what parses writes a
//! version-00 value that parses back to the same context, and that `tracestate` stays bounded.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_core::__fuzz::traceparent(data));
