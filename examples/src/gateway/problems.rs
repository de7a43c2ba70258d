//! Problem+json for everything the gateway answers on its own: extractor rejections and bare
//! error statuses such as axum's `405`.
//!
//! No answer carries the request's own text back. serde's messages quote what they could not
//! parse (``unknown field `<name>` ``, ``invalid type: string "<value>"``), and axum's rejections
//! include them, so the extractors here name the problem in general words, with at most a
//! position (line and column) and a JSON Pointer whose segments are cut to
//! [`MAX_POINTER_SEGMENT`] characters.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header::CONTENT_TYPE, request::Parts};
use axum::response::Response;
use bytes::Bytes;
use palisade::Problem;
use serde::de::DeserializeOwned;

/// The longest JSON Pointer segment (in characters) a problem repeats; longer ones are cut and
/// end in `…`.
pub const MAX_POINTER_SEGMENT: usize = 32;

/// Renders `problem` as an axum response.
pub fn problem(problem: Problem) -> Response {
    problem.into_response_with(Body::from)
}

/// axum's `Json`, with every rejection as problem+json in general words: `415` without a JSON
/// media type, `413` past the body limit, `400` for malformed JSON (with line and column), `422`
/// for JSON of the wrong shape (with the JSON Pointer of the bad value).
#[derive(Debug, Clone)]
pub struct ProblemJson<T>(pub T);

impl<S, T> FromRequest<S> for ProblemJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(problem(
                Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE).with_detail(
                    "the body must be JSON, sent with `Content-Type: application/json`",
                ),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "the request body is larger than this route accepts"
            } else {
                "the request body could not be read"
            };
            problem(Problem::new(status).with_detail(detail))
        })?;
        decode(&bytes).map(Self).map_err(|response| *response)
    }
}

/// Whether the request says its body is JSON: `application/json` or `application/<x>+json`.
fn is_json(headers: &http::HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Box<Response>> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|err| Box::new(json_problem(err.inner(), Some(&pointer(err.path())))))?;
    deserializer
        .end()
        .map_err(|err| Box::new(json_problem(&err, None)))?;
    Ok(value)
}

/// A problem for a `serde_json` error, in general words: its category, line and column, never
/// its message (which quotes the body).
fn json_problem(err: &serde_json::Error, pointer: Option<&str>) -> Response {
    let (status, detail) = match err.classify() {
        serde_json::error::Category::Data => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the JSON body is well-formed, but a value has the wrong type, is out of range, or a \
             required field is missing",
        ),
        serde_json::error::Category::Eof => (
            StatusCode::BAD_REQUEST,
            "the body ends before its JSON value is complete",
        ),
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => (
            StatusCode::BAD_REQUEST,
            "the body is not valid JSON, or nests deeper than 128 levels",
        ),
    };
    let mut body = Problem::new(status)
        .with_detail(detail)
        .with_extension("line", err.line())
        .with_extension("column", err.column());
    if let Some(pointer) = pointer.filter(|_| status == StatusCode::UNPROCESSABLE_ENTITY) {
        body = body.with_extension("pointer", pointer);
    }
    problem(body)
}

/// The JSON Pointer (RFC 6901) of `path`, each segment cut to [`MAX_POINTER_SEGMENT`]
/// characters.
fn pointer(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        out.push('/');
        match segment {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&index.to_string()),
            serde_path_to_error::Segment::Map { key } => push_segment(&mut out, key),
            serde_path_to_error::Segment::Enum { variant } => push_segment(&mut out, variant),
            serde_path_to_error::Segment::Unknown => out.push('?'),
        }
    }
    out
}

fn push_segment(out: &mut String, segment: &str) {
    for (i, c) in segment.chars().enumerate() {
        if i == MAX_POINTER_SEGMENT {
            out.push('…');
            return;
        }
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

/// axum's `Query`, with rejections as problem+json in general words.
#[derive(Debug, Clone)]
pub struct ProblemQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ProblemQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(_) => Err(problem(Problem::new(StatusCode::BAD_REQUEST).with_detail(
                "the query string is malformed, lacks a parameter this route needs, or has a \
                 value of the wrong type",
            ))),
        }
    }
}

/// Turns a bare error response (a `4xx` or `5xx` without a `Content-Type`, such as axum's `405`)
/// into a problem response with the same status and headers (`Allow` stays).
pub async fn bare_errors_as_problems<B>(response: http::Response<B>) -> Response
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(CONTENT_TYPE)
    {
        return response.map(Body::new);
    }
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            "this route does not accept the request's method; `Allow` lists the ones it does"
        }
        StatusCode::NOT_FOUND => "no route matches this path",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than this route accepts",
        _ if status.is_server_error() => "the gateway could not complete the request",
        _ => "the request cannot be served as sent",
    };
    let (mut parts, _) = response.into_parts();
    let rendered = problem(Problem::new(status).with_detail(detail));
    let (rendered_parts, body) = rendered.into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    parts.headers.extend(rendered_parts.headers);
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for (value, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/problem+json", true),
            ("application/+json", false),
            ("application/jsonx", false),
            ("text/json", false),
            ("text/plain", false),
            ("json", false),
        ] {
            let mut headers = http::HeaderMap::new();
            headers.insert(CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json(&headers), ok, "{value}");
        }
        assert!(!is_json(&http::HeaderMap::new()));
    }

    #[test]
    fn pointer_segments_are_escaped_and_cut() {
        let mut out = String::new();
        push_segment(&mut out, "a/b~c");
        assert_eq!(out, "a~1b~0c");
        let mut long = String::new();
        push_segment(&mut long, &"k".repeat(1000));
        assert_eq!(long, format!("{}…", "k".repeat(MAX_POINTER_SEGMENT)));
    }
}
