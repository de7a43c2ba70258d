//! What the gateway logs about a request: its method, HTTP version, and the route it matched
//! (`/v1/slow`, never `/v1/slow?ms=5&api_key=...`).
//!
//! A client can put a credential anywhere it writes: in the query string (`?api_key=`), in the
//! path, in a header. The request span therefore holds no raw URI and no header; the route is
//! the matched route's template, which the gateway wrote, or `unmatched` when none matched.
//! `Authorization` and `X-API-Key` are also marked sensitive for any layer that prints headers.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, TraceLayer};
use tracing::Span;

/// The gateway's request spans: method, version and (recorded once routing is done) route.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &http::Request<B>) -> Span {
        tracing::debug_span!(
            "request",
            method = %request.method(),
            version = ?request.version(),
            route = tracing::field::Empty,
        )
    }
}

/// tower-http's trace layer with [`RequestSpan`].
pub fn trace_layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan> {
    TraceLayer::new_for_http().make_span_with(RequestSpan)
}

/// Records the matched route's template on the request span (inside the router, where it is
/// known).
pub async fn record_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    Span::current().record("route", tracing::field::display(route));
    next.run(request).await
}
