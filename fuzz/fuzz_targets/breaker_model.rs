//! A breaker configuration and a sequence of calls, outcomes, cancellations, clock steps and
//! manual state changes, decoded from bytes: the lock-free core must answer exactly as the
//! plain reference model after every step.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| palisade_breaker::__fuzz::breaker_model(data));
