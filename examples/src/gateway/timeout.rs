//! `palisade-timeout` in the gateway: one total timeout per request, which a caller may shorten
//! with `grpc-timeout` but never extend.

use std::time::Duration;

use palisade::timeout::{BuildError, DeadlineHeader, HttpTimeoutLayer};

/// The server-side timeout: `504` problem after `timeout`, or sooner when the caller's
/// `grpc-timeout` asks for less.
///
/// # Errors
///
/// A zero timeout.
pub fn layer(timeout: Duration) -> Result<HttpTimeoutLayer, BuildError> {
    HttpTimeoutLayer::builder(timeout)
        .inbound_deadline(DeadlineHeader::grpc_timeout(), timeout)
        .build()
}
