//! Panics: a bug anywhere in the stack (a handler, a layer, a dependency) must not drop the
//! client's connection with an empty reply, nor write a client's text into the logs raw.
//!
//! [`layer`] (tower-http's `CatchPanicLayer`, outermost) answers a panicking request with a
//! `500` problem that says nothing of the panic; [`install_hook`] replaces the standard panic
//! hook, which prints the message as it is (a `\n` in it forges a log line), with one that logs
//! it through `tracing`, escaped, with its location. The process goes on serving.

use std::any::Any;

use axum::body::Body;
use http::{Response, StatusCode};
use palisade::{Problem, ResponseBody};
use tower_http::catch_panic::CatchPanicLayer;

/// What a panicking request is answered with.
pub type PanicResponse = fn(Box<dyn Any + Send + 'static>) -> Response<ResponseBody<Body>>;

/// Catches a panic in any layer or handler inside it and answers `500` with a problem body.
pub fn layer() -> CatchPanicLayer<PanicResponse> {
    CatchPanicLayer::custom(answer as PanicResponse)
}

/// The `500`: general words only; the panic itself was logged by [`install_hook`].
fn answer(_panic: Box<dyn Any + Send + 'static>) -> Response<ResponseBody<Body>> {
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR)
        .with_title("Internal server error")
        .with_detail("the server failed while handling this request; the failure is logged")
        .into_response()
}

/// Logs every panic through `tracing` at `error`, its message escaped (as Rust's `Debug` writes
/// a string) and cut to 256 bytes, with where it happened, instead of the standard hook's raw
/// text on standard error.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(not text)");
        let cut = message
            .char_indices()
            .map(|(at, c)| at + c.len_utf8())
            .take_while(|end| *end <= 256)
            .last()
            .unwrap_or(0);
        let message = message.get(..cut).unwrap_or_default();
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(panic = ?message, %location, "a request handler or layer panicked");
    }));
}
