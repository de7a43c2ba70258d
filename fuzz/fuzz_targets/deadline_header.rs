//! `grpc-timeout` and millisecond deadline headers: parse, and check that re-encoding never
//! extends a budget.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_timeout::__fuzz::deadline_header(data));
