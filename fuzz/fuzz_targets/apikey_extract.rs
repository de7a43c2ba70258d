//! API-key extraction from `Authorization: Bearer`, `X-API-Key` and the query string: lines
//! `a:<value>` / `x:<value>`, then `?` and a query. A key it returns is one bounded token.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_apikey::__fuzz::extract(data));
