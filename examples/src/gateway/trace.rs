//! W3C Trace Context: a caller's `traceparent` is continued (the gateway's span is its
//! child), a request without one starts a trace, the ids are recorded on the request span, and
//! `/v1/upstream` sends the trace along (`palisade::trace`).
//!
//! With the `otel` feature and `--otlp-endpoint`, request spans are exported through OTLP/gRPC:
//! the request span's parent is the caller's span, and the upstream call names the request
//! span as its parent, so the gateway sits in the caller's trace between the caller and the
//! upstream.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use palisade::trace::{TraceContext, TraceContextLayer};
use tracing::Span;

/// Reads the caller's trace, or starts one, before the request span is made.
pub fn layer() -> TraceContextLayer {
    TraceContextLayer::new()
}

/// Inside the request span: joins the OpenTelemetry span to the caller's trace (feature
/// `otel`), then records the trace and span ids on the request span.
pub async fn enter(mut request: Request, next: Next) -> Response {
    #[cfg(feature = "otel")]
    otel::join(&mut request);
    if let Some(context) = request.extensions().get::<TraceContext>() {
        let span = Span::current();
        span.record("trace_id", tracing::field::display(context.trace_id_hex()));
        span.record("span_id", tracing::field::display(context.span_id_hex()));
    }
    #[cfg(not(feature = "otel"))]
    let _ = &mut request;
    next.run(request).await
}

/// OpenTelemetry export (feature `otel`).
#[cfg(feature = "otel")]
pub mod otel {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use palisade::trace::TraceContext;
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    /// A tracer provider exporting spans in batches through OTLP/gRPC to `endpoint`
    /// (`http://127.0.0.1:4317`). Call it inside the tokio runtime.
    ///
    /// # Errors
    ///
    /// The exporter's message for an endpoint it cannot use.
    pub fn provider(endpoint: &str) -> Result<SdkTracerProvider, String> {
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|err| format!("invalid --otlp-endpoint: {err}"))?;
        Ok(SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("palisade-gateway")
                    .build(),
            )
            .build())
    }

    /// Makes `span` (a request span, not yet entered) a child of the caller's span, when the
    /// caller sent a valid `traceparent`. Read by Palisade's strict parse, as the
    /// `TraceContextLayer` reads it (two `traceparent` headers are none; a `tracestate` that
    /// breaks the recommendation's grammar is dropped), not by the propagator's.
    pub fn set_parent(span: &Span, headers: &http::HeaderMap) {
        let Some(caller) = TraceContext::from_headers(headers) else {
            return;
        };
        let state = caller
            .state()
            .and_then(|state| state.to_str().ok())
            .and_then(|state| state.parse::<TraceState>().ok())
            .unwrap_or_default();
        let flags = if caller.sampled() {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let remote = SpanContext::new(
            TraceId::from_bytes(caller.trace_id()),
            SpanId::from_bytes(caller.span_id()),
            flags,
            true,
            state,
        );
        // Fails only for a span OpenTelemetry does not record (filtered out, or no exporter
        // configured): then there is nothing to join.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }

    /// Makes the request's [`TraceContext`] the current (request) span's, so outbound calls
    /// name it as their parent. A request span OpenTelemetry does not record leaves the
    /// context as it was.
    pub(super) fn join(request: &mut axum::extract::Request) {
        let context = Span::current().context();
        let ours = context.span().span_context().clone();
        if !ours.is_valid() {
            return;
        }
        let state = request
            .extensions()
            .get::<TraceContext>()
            .and_then(|context| context.state().cloned());
        if let Some(joined) = TraceContext::from_parts(
            ours.trace_id().to_bytes(),
            ours.span_id().to_bytes(),
            ours.is_sampled(),
        ) {
            request.extensions_mut().insert(joined.with_state(state));
        }
    }
}
