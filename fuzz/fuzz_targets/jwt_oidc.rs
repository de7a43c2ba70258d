//! OIDC discovery documents: an accepted one names exactly the configured issuer and an HTTPS
//! `jwks_uri`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_jwt::__fuzz::oidc(data));
