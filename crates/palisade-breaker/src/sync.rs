//! The atomics and lock the breaker's core uses: the standard library's, or loom's when the
//! crate is built with `--cfg palisade_loom` to model-check the half-open permit accounting.

#[cfg(palisade_loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(palisade_loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

#[cfg(not(palisade_loom))]
pub(crate) use std::sync::Mutex;
#[cfg(not(palisade_loom))]
pub(crate) use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
