//! Tokens as structure: the header's and claims' members (any strings, non-ASCII included,
//! repeated names, values at each rule's edge), encoded and signed by the harness, verified
//! under lenient and strict rules. See `palisade_jwt::__fuzz::structured`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: palisade_jwt::__fuzz::TokenInput| {
    palisade_jwt::__fuzz::structured(&input);
});
