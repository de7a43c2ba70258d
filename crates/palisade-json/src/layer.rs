//! The tower layer: a request body is JSON, within its size, and strict before the inner
//! service sees it; the inner service gets the validated bytes as a `Full<Bytes>` body.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use palisade_core::problem::types;
use palisade_core::{BuildError, Problem, Protocol, Rejection, ResponseBody};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::limits::{DEFAULT_MAX_BODY, Limits};
use crate::scan::{Rejected, validate};

/// Marks a request whose body [`JsonLayer`] checked: [`StrictJson`](crate::StrictJson) does not
/// check it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validated;

/// Whether a `Content-Type` says JSON: `application/json` or `application/<x>+json`, with a
/// `charset`, if any, of UTF-8.
///
/// ```
/// use http::HeaderValue;
/// use palisade::json::is_json_media_type;
///
/// assert!(is_json_media_type(&HeaderValue::from_static("application/json")));
/// assert!(is_json_media_type(&HeaderValue::from_static("application/problem+json; charset=UTF-8")));
/// assert!(!is_json_media_type(&HeaderValue::from_static("application/json; charset=latin1")));
/// assert!(!is_json_media_type(&HeaderValue::from_static("text/plain")));
/// ```
pub fn is_json_media_type(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let json = kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || (subtype.len() > 5
                && subtype
                    .get(subtype.len() - 5..)
                    .is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json"))));
    json && parts.all(|parameter| {
        let Some((name, value)) = parameter.split_once('=') else {
            return false;
        };
        !name.trim().eq_ignore_ascii_case("charset") || {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        }
    })
}

/// Checks JSON request bodies: `415` for another media type, `413` past the size limit, `400`
/// for a body that is not strict JSON, with the place it failed.
///
/// A request with neither a body nor a `Content-Type` (a `GET`, say) passes untouched: there is
/// nothing to check.
#[derive(Clone, Debug)]
pub struct JsonLayer {
    config: Arc<Config>,
}

#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) limits: Limits,
    pub(crate) max_body: usize,
    unsupported: Rejection,
    too_large: Rejection,
    unreadable: Rejection,
    #[cfg(feature = "schema")]
    pub(crate) schema: Option<crate::schema::Schema>,
}

impl Default for JsonLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonLayer {
    /// The default limits (see [`Limits`]) and a body of at most 2 MiB.
    ///
    /// # Panics
    ///
    /// Never: the defaults are valid (a test builds them).
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("the default settings are valid")
    }

    /// A builder for other limits.
    pub fn builder() -> JsonLayerBuilder {
        JsonLayerBuilder {
            limits: Limits::default(),
            max_body: DEFAULT_MAX_BODY,
            #[cfg(feature = "schema")]
            schema: None,
        }
    }

    /// The limits documents are checked against.
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }
}

/// Builds a [`JsonLayer`]; [`build`](Self::build) checks the settings.
#[derive(Clone, Debug)]
#[must_use]
pub struct JsonLayerBuilder {
    limits: Limits,
    max_body: usize,
    #[cfg(feature = "schema")]
    schema: Option<serde_json::Value>,
}

impl JsonLayerBuilder {
    /// The document limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The largest body, in bytes (default 2 MiB); larger is `413`, by its `Content-Length`
    /// before any byte is read, or while it streams.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Also checks documents against a JSON Schema (feature `schema`): a document that does
    /// not match is `422`, with the JSON Pointer of the first value that fails.
    #[cfg(feature = "schema")]
    pub fn schema(mut self, schema: serde_json::Value) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Checks the settings and builds the layer.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming a limit, `max_body`, or (feature `schema`) `schema`.
    pub fn build(self) -> Result<JsonLayer, BuildError> {
        self.limits.check()?;
        if self.max_body == 0 {
            return Err(BuildError::new("max_body", "must be at least 1 byte"));
        }
        #[cfg(feature = "schema")]
        let schema = self
            .schema
            .as_ref()
            .map(crate::schema::Schema::compile)
            .transpose()?;
        let unsupported = Rejection::new(&unsupported_media_type());
        let too_large = Rejection::new(&too_large(self.max_body));
        let unreadable = Rejection::new(&unreadable());
        Ok(JsonLayer {
            config: Arc::new(Config {
                limits: self.limits,
                max_body: self.max_body,
                unsupported,
                too_large,
                unreadable,
                #[cfg(feature = "schema")]
                schema,
            }),
        })
    }
}

/// `415`: the body is not JSON.
pub(crate) fn unsupported_media_type() -> Problem {
    Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        .with_type(types::UNSUPPORTED_MEDIA_TYPE)
        .with_title("Unsupported media type")
        .with_detail("the body must be JSON, sent with `Content-Type: application/json`")
        .with_extension("accept", "application/json")
}

/// `413`: the body is larger than `max_body` bytes.
pub(crate) fn too_large(max_body: usize) -> Problem {
    Problem::new(StatusCode::PAYLOAD_TOO_LARGE)
        .with_type(types::BODY_TOO_LARGE)
        .with_title("Body too large")
        .with_detail(format!("the request body is larger than {max_body} bytes"))
        .with_extension("max_bytes", max_body)
}

/// `400`: the body stopped before its end (the client went away, or a read failed).
pub(crate) fn unreadable() -> Problem {
    Problem::new(StatusCode::BAD_REQUEST)
        .with_type(types::INVALID_JSON)
        .with_title("Invalid JSON")
        .with_detail("the request body could not be read whole")
}

/// The problem for a document the scanner rejected: the rule, the pointer and the offset.
pub(crate) fn invalid_json(rejected: &Rejected) -> Problem {
    count(rejected.reason().label());
    Problem::new(StatusCode::BAD_REQUEST)
        .with_type(types::INVALID_JSON)
        .with_title("Invalid JSON")
        .with_detail(rejected.reason().describe())
        .with_extension("reason", rejected.reason().label())
        .with_extension("pointer", rejected.pointer())
        .with_extension("offset", rejected.offset())
}

/// Counts a body the scan (the layer's, or an extractor's without the layer) refused:
/// `palisade_json_requests_total{outcome=<reason>}`.
pub(crate) fn count(reason: &'static str) {
    tracing::debug!(reason, "JSON body rejected");
    #[cfg(feature = "metrics")]
    palisade_core::__count_labelled!(
        "palisade_json_requests_total",
        "outcome",
        reason,
        [
            "unsupported_media_type",
            "unreadable",
            "too_large",
            "schema",
            "empty",
            "not_utf8",
            "byte_order_mark",
            "unexpected",
            "unexpected_end",
            "trailing_data",
            "control_character",
            "invalid_escape",
            "lone_surrogate",
            "invalid_number",
            "lossy_number",
            "duplicate_key",
            "too_deep",
            "too_many_keys",
            "array_too_long",
            "string_too_long",
            "key_too_long",
            "number_too_long",
        ]
    );
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

/// Counts a body the scan accepted: `palisade_json_requests_total{outcome="accepted"}`.
pub(crate) fn count_accepted() {
    #[cfg(feature = "metrics")]
    metrics::counter!("palisade_json_requests_total", "outcome" => "accepted").increment(1);
}

/// Counts a scanned body an extractor refused to decode into its type:
/// `palisade_json_decode_rejected_total{reason}`. Only the axum extractors decode.
#[cfg(feature = "axum")]
pub(crate) fn count_decode(reason: &'static str) {
    tracing::debug!(reason, "JSON body refused by its type");
    #[cfg(feature = "metrics")]
    palisade_core::__count_labelled!(
        "palisade_json_decode_rejected_total",
        "reason",
        reason,
        [
            "unknown_field",
            "validation",
            "invalid_value",
            "missing_field",
            "wrong_type"
        ]
    );
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

impl<S> Layer<S> for JsonLayer {
    type Service = JsonService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JsonService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`JsonLayer`]. The inner service gets `Request<Full<Bytes>>`.
#[derive(Clone, Debug)]
pub struct JsonService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> JsonService<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for JsonService<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone,
    B: Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let protocol = Protocol::of(request.headers());
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        let content_type = request.headers().get(CONTENT_TYPE);
        if content_type.is_none() && request.body().is_end_stream() {
            // Nothing to check: a request without a body.
            let (parts, _) = request.into_parts();
            return ResponseFuture::calling(service, Request::from_parts(parts, Full::default()));
        }
        if !content_type.is_some_and(is_json_media_type) {
            count("unsupported_media_type");
            return ResponseFuture::rejected(config.unsupported.clone(), protocol);
        }
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > config.max_body as u64) {
            count("too_large");
            return ResponseFuture::rejected(config.too_large.clone(), protocol);
        }
        let (parts, body) = request.into_parts();
        ResponseFuture {
            state: State::Collecting {
                body,
                parts: Some(parts),
                chunks: Vec::new(),
                length: 0,
                config,
                protocol,
                service: Some(service),
            },
        }
    }
}

pin_project! {
    /// The response future of [`JsonService`]: reads the body, checks it, then calls the inner
    /// service.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<Full<Bytes>>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<Full<Bytes>>>,
    {
        Collecting {
            #[pin]
            body: B,
            parts: Option<http::request::Parts>,
            chunks: Vec<Bytes>,
            length: usize,
            config: Arc<Config>,
            protocol: Protocol,
            service: Option<S>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Answered {
            rejection: Option<(Rejection, Protocol)>,
            problem: Option<(Problem, Protocol)>,
        },
    }
}

impl<S, B> std::fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
{
    fn calling(mut service: S, request: Request<Full<Bytes>>) -> Self {
        Self {
            state: State::Calling {
                future: service.call(request),
            },
        }
    }

    fn rejected(rejection: Rejection, protocol: Protocol) -> Self {
        Self {
            state: State::Answered {
                rejection: Some((rejection, protocol)),
                problem: None,
            },
        }
    }
}

/// The whole body in one piece, copying only when it came in several.
fn concatenate(chunks: &mut Vec<Bytes>, length: usize) -> Bytes {
    match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut whole = BytesMut::with_capacity(length);
            for chunk in chunks.drain(..) {
                whole.extend_from_slice(&chunk);
            }
            whole.freeze()
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    B: Body,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().state.project() {
                StateProj::Collecting {
                    mut body,
                    parts,
                    chunks,
                    length,
                    config,
                    protocol,
                    service,
                } => {
                    let frame = ready!(body.as_mut().poll_frame(cx));
                    match frame {
                        Some(Ok(frame)) => {
                            if let Ok(mut data) = frame.into_data() {
                                let chunk = data.copy_to_bytes(data.remaining());
                                *length += chunk.len();
                                if *length > config.max_body {
                                    count("too_large");
                                    State::Answered {
                                        rejection: Some((config.too_large.clone(), *protocol)),
                                        problem: None,
                                    }
                                } else {
                                    chunks.push(chunk);
                                    continue;
                                }
                            } else {
                                // Trailers of a request body carry nothing to check.
                                continue;
                            }
                        }
                        Some(Err(_)) => {
                            count("unreadable");
                            State::Answered {
                                rejection: Some((config.unreadable.clone(), *protocol)),
                                problem: None,
                            }
                        }
                        None => {
                            let bytes = concatenate(chunks, *length);
                            if let Err(problem) = check(config, &bytes) {
                                State::Answered {
                                    rejection: None,
                                    problem: Some((problem, *protocol)),
                                }
                            } else {
                                count_accepted();
                                let mut parts = parts.take().expect("taken once");
                                parts.extensions.insert(Validated);
                                let mut service = service.take().expect("taken once");
                                State::Calling {
                                    future: service
                                        .call(Request::from_parts(parts, Full::new(bytes))),
                                }
                            }
                        }
                    }
                }
                StateProj::Calling { future } => {
                    return future
                        .poll(cx)
                        .map(|result| result.map(|r| r.map(ResponseBody::inner)));
                }
                StateProj::Answered { rejection, problem } => {
                    if let Some((rejection, protocol)) = rejection.take() {
                        return Poll::Ready(Ok(rejection.to_response_for(protocol)));
                    }
                    let (problem, protocol) = problem
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(problem.into_response_for(protocol)));
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}

/// The strict check, then (feature `schema`) the route's schema.
fn check(config: &Config, bytes: &Bytes) -> Result<(), Problem> {
    validate(bytes, &config.limits).map_err(|rejected| invalid_json(&rejected))?;
    #[cfg(feature = "schema")]
    if let Some(schema) = &config.schema {
        schema.check(bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for (value, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("application/json;charset=\"UTF8\"", true),
            ("Application/JSON", true),
            ("application/problem+json", true),
            ("application/vnd.api+json; ext=bulk", true),
            ("application/json; charset=iso-8859-1", false),
            ("application/json; charset", false),
            ("application/+json", false),
            ("application/jsonx", false),
            ("application/json+xml", false),
            ("text/json", false),
            ("text/plain", false),
            ("json", false),
            ("", false),
        ] {
            let header = HeaderValue::from_str(value).unwrap();
            assert_eq!(is_json_media_type(&header), ok, "{value}");
        }
        assert!(!is_json_media_type(
            &HeaderValue::from_bytes(b"application/json\xff").unwrap()
        ));
    }
}
