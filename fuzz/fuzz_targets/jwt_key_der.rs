//! RSA public keys in DER and PEM: no panic, and no key under 2048 bits loads. See
//! `palisade_jwt::__fuzz::key_der`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_jwt::__fuzz::key_der(data));
