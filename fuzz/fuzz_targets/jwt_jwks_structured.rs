//! JWK sets as structure: each key's members (any strings, base64 of any bytes, the words the
//! parser looks for), written by the harness. See `palisade_jwt::__fuzz::jwks_structured`.
#![no_main]

use palisade_jwt::__fuzz::{JwkName, JwkValue};

libfuzzer_sys::fuzz_target!(|keys: Vec<Vec<(JwkName, JwkValue)>>| {
    palisade_jwt::__fuzz::jwks_structured(&keys);
});
