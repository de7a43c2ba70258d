//! `grpc-message` percent-decoding and `grpc-status` parsing of arbitrary bytes: never a panic,
//! and encoding then decoding gives back the text.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_core::__fuzz::grpc_message(data));
