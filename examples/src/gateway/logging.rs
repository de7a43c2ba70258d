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
use tower_http::trace::{DefaultOnResponse, MakeSpan, TraceLayer};
use tracing::{Level, Span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The gateway's request spans: method, version, the W3C trace and span ids, and (recorded
/// once routing is done) route.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &http::Request<B>) -> Span {
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            version = ?request.version(),
            route = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        // Before the span is first entered, when its OpenTelemetry parent can still be set.
        #[cfg(feature = "otel")]
        super::trace::otel::set_parent(&span, request.headers());
        span
    }
}

/// tower-http's trace layer with [`RequestSpan`]: one line per request at info when it is
/// answered (status and latency); the line when it starts is at debug.
pub fn trace_layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    tower_http::trace::DefaultOnRequest,
    DefaultOnResponse,
> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_response(DefaultOnResponse::new().level(Level::INFO))
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

/// The filter when `RUST_LOG` is not set: one line per answered request, and what the layers
/// report at info and above (a changed quota, a refused key file). Their per-request decisions
/// are at debug: `RUST_LOG=info,tower_http=debug,palisade=debug` shows them (a few lines per
/// request, too many under load).
pub const DEFAULT_FILTER: &str = "info";

/// What [`init`] set up that must be shut down: with `otel`, the span exporter.
#[derive(Debug)]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still queued (feature `otel`).
    pub fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider
            && let Err(err) = provider.shutdown()
        {
            eprintln!("error: exporting the last spans: {err}");
        }
    }
}

/// Installs the process's subscriber: logs on standard output (`RUST_LOG`, else
/// [`DEFAULT_FILTER`]), and with `otel` and `--otlp-endpoint` the request spans exported
/// through OTLP. Call it inside the tokio runtime.
///
/// # Errors
///
/// A message naming the flag that cannot be used.
pub fn init(flags: &super::flags::Flags, ansi: bool) -> Result<Telemetry, String> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let logs = tracing_subscriber::fmt::layer().with_ansi(ansi);
    #[cfg(feature = "otel")]
    {
        use opentelemetry::trace::TracerProvider as _;
        let provider = flags
            .otlp_endpoint
            .as_deref()
            .map(super::trace::otel::provider)
            .transpose()?;
        let spans = provider.as_ref().map(|provider| {
            tracing_opentelemetry::layer().with_tracer(provider.tracer("palisade-gateway"))
        });
        tracing_subscriber::registry()
            .with(filter)
            .with(logs)
            .with(spans)
            .init();
        Ok(Telemetry { provider })
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = flags;
        tracing_subscriber::registry()
            .with(filter)
            .with(logs)
            .init();
        Ok(Telemetry {})
    }
}
