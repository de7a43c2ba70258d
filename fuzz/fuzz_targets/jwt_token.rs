//! Token verification with fixed keys: the input as a token as sent (a made-up token never
//! verifies), and split at its first NUL into a header and payload the harness signs, so every
//! check after the signature runs. See `palisade_jwt::__fuzz::token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_jwt::__fuzz::token(data));
