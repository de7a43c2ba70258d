//! The Palisade demo programs' shared code. The `gateway` example is a thin `main` over
//! [`gateway`], so the integration tests exercise exactly what it serves.

pub mod gateway;
