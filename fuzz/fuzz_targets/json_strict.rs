//! The strict JSON scanner against `serde_json`: whatever `serde_json` rejects, the scanner rejects;
//! whatever the scanner accepts, `serde_json` parses to a value with the same shape. Seeded with
//! every `JSONTestSuite` parsing file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_json::__fuzz::json_strict(data));
