//! The key file: what parses renders back to lines that parse to the same entries.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_apikey::__fuzz::keyset(data));
