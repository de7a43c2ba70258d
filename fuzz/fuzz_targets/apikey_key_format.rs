//! The `<prefix>_<random>_<check>` key format: what the checker accepts is exactly a key its
//! parts make.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_apikey::__fuzz::key_format(data));
