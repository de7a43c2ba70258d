//! JWK set documents (and `Cache-Control` values): no panic, no empty or oversized set, no
//! symmetric key from a public set, each key's algorithm fits its kind.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_jwt::__fuzz::jwks(data));
