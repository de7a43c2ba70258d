//! Problem+json for everything the gateway answers on its own: query rejections and bare error
//! statuses such as axum's `405`. JSON bodies are `palisade-json`'s (see [`super::json`]).
//!
//! No answer carries the request's own text back. serde's messages quote what they could not
//! parse (``invalid type: string "<value>"``), and axum's rejections include them, so the query
//! extractor here names the problem in general words.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::{StatusCode, header::CONTENT_TYPE, request::Parts};
use axum::response::Response;
use bytes::Bytes;
use palisade::Problem;
use serde::de::DeserializeOwned;

/// Renders `problem` as an axum response.
pub fn problem(problem: Problem) -> Response {
    problem.into_response_with(Body::from)
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
