//! RFC 9457 problem details: the one error shape of every Palisade rejection.
//!
//! A [`Problem`] has a status, a `type` URI that names the kind of problem, a short `title`, an
//! optional `detail` for this occurrence, and optional extension members. It renders as an
//! `application/problem+json` body with [`Problem::into_response`].
//!
//! Problems never carry secrets or internal type names: layers write their `detail` for the
//! client, and a rejected credential is never echoed.
//!
//! The [`types`] module holds the `type` URIs that Palisade's layers use; each one documents the
//! problem it names, so the URI leads a client developer to an explanation.
//!
//! ```
//! use http::StatusCode;
//! use palisade::problem::{types, Problem};
//!
//! let problem = Problem::new(StatusCode::GATEWAY_TIMEOUT)
//!     .with_type(types::TIMEOUT)
//!     .with_title("Request timed out")
//!     .with_detail("the request did not complete within 2s");
//! let json: serde_json::Value = serde_json::from_slice(&problem.to_json()).unwrap();
//!
//! assert_eq!(json["status"], 504);
//! assert_eq!(json["type"], types::TIMEOUT);
//! assert_eq!(json["detail"], "the request did not complete within 2s");
//! ```

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use serde_json::{Map, Value};

use crate::ResponseBody;
use crate::grpc::{self, GrpcCode, Protocol};

/// The media type of a problem document (RFC 9457 section 3).
pub const CONTENT_TYPE_PROBLEM_JSON: &str = "application/problem+json";

/// The `type` URIs of the problems Palisade's layers answer with.
///
/// Each constant's own documentation page is the URI's target, so a client that follows a
/// problem's `type` reads what went wrong and how to fix it.
pub mod types {
    /// The request did not complete before its deadline (`408`, `503` or `504`).
    ///
    /// Retry later, with a longer deadline if you sent one, or ask for less work.
    pub const TIMEOUT: &str =
        "https://docs.rs/palisade-core/latest/palisade_core/problem/types/constant.TIMEOUT.html";
    /// A header that carries the caller's deadline (such as `grpc-timeout`) was malformed or
    /// repeated (`400`).
    pub const INVALID_DEADLINE: &str = "https://docs.rs/palisade-core/latest/palisade_core/problem/types/constant.INVALID_DEADLINE.html";
    /// No credential was presented, or the one presented is not valid (`401`).
    ///
    /// The response's `WWW-Authenticate` header names the scheme to use.
    pub const UNAUTHENTICATED: &str = "https://docs.rs/palisade-core/latest/palisade_core/problem/types/constant.UNAUTHENTICATED.html";
    /// The service is not taking requests for a while (`503`): a circuit breaker is open
    /// because what the route depends on keeps failing, or load is being shed.
    ///
    /// Retry after the time the response's `Retry-After` header gives.
    pub const UNAVAILABLE: &str = "https://docs.rs/palisade-core/latest/palisade_core/problem/types/constant.UNAVAILABLE.html";
    /// The request body is not strict JSON (`400`): malformed, a key named twice, a number
    /// that would lose digits, or beyond a limit.
    ///
    /// The `pointer` member is the JSON Pointer of the place, `offset` its byte offset.
    pub const INVALID_JSON: &str = "https://docs.rs/palisade-core/latest/palisade_core/problem/types/constant.INVALID_JSON.html";
    /// The request body is well-formed but not what the route accepts (`422`): a field of the
    /// wrong type, missing or unknown, a broken business rule or schema.
    ///
    /// The `pointer` member is the JSON Pointer of the offending field.
    pub const INVALID_BODY: &str = "https://docs.rs/palisade-core/latest/palisade_core/problem/types/constant.INVALID_BODY.html";
    /// The request body is larger than the route accepts (`413`).
    pub const BODY_TOO_LARGE: &str = "https://docs.rs/palisade-core/latest/palisade_core/problem/types/constant.BODY_TOO_LARGE.html";
    /// The request body is not in a media type the route accepts (`415`); the `accept` member
    /// says which.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "https://docs.rs/palisade-core/latest/palisade_core/problem/types/constant.UNSUPPORTED_MEDIA_TYPE.html";
    /// A rate limit is exhausted (`429`); `Retry-After` says when to try again, and the
    /// `limit` member names the limit.
    pub const RATE_LIMITED: &str = "https://docs.rs/palisade-core/latest/palisade_core/problem/types/constant.RATE_LIMITED.html";
    /// The request carried more than one credential (`400`): two `Authorization` headers, a
    /// token in two places, or an API key beside a bearer token. Send exactly one (RFC 6750,
    /// section 3.1: `invalid_request`).
    pub const AMBIGUOUS_CREDENTIALS: &str = "https://docs.rs/palisade-core/latest/palisade_core/problem/types/constant.AMBIGUOUS_CREDENTIALS.html";
    /// The caller is known but lacks a scope the route requires (`403`).
    ///
    /// The `required_scopes` extension member lists what the route needs.
    pub const FORBIDDEN: &str =
        "https://docs.rs/palisade-core/latest/palisade_core/problem/types/constant.FORBIDDEN.html";
}

/// An RFC 9457 problem document: the body of every Palisade rejection.
///
/// See the [module documentation](self) for an example.
#[derive(Clone, PartialEq)]
pub struct Problem {
    status: StatusCode,
    type_uri: Cow<'static, str>,
    title: Cow<'static, str>,
    detail: Option<Cow<'static, str>>,
    extensions: Map<String, Value>,
}

impl Problem {
    /// A problem with `status`, the `type` `about:blank` and the status's reason phrase as title
    /// (RFC 9457 section 4.2.1).
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            type_uri: Cow::Borrowed("about:blank"),
            title: Cow::Borrowed(status.canonical_reason().unwrap_or("Error")),
            detail: None,
            extensions: Map::new(),
        }
    }

    /// Sets the `type` URI that names this kind of problem.
    #[must_use]
    pub fn with_type(mut self, type_uri: impl Into<Cow<'static, str>>) -> Self {
        self.type_uri = type_uri.into();
        self
    }

    /// Sets the short, human-readable summary of the problem type.
    #[must_use]
    pub fn with_title(mut self, title: impl Into<Cow<'static, str>>) -> Self {
        self.title = title.into();
        self
    }

    /// Sets the explanation specific to this occurrence. It is shown to the client: never put a
    /// secret or an internal type name here.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds an extension member. Names of the standard members (`type`, `title`, `status`,
    /// `detail`, `instance`) are ignored, so an extension can never overwrite them.
    #[must_use]
    pub fn with_extension(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name = name.into();
        if !matches!(
            name.as_str(),
            "type" | "title" | "status" | "detail" | "instance"
        ) {
            self.extensions.insert(name, value.into());
        }
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `type` URI.
    pub fn type_uri(&self) -> &str {
        &self.type_uri
    }

    /// The title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The detail, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// An extension member, if present.
    pub fn extension(&self, name: &str) -> Option<&Value> {
        self.extensions.get(name)
    }

    /// Serialises the problem as a JSON object.
    pub fn to_json(&self) -> Bytes {
        let mut object = Map::with_capacity(4 + self.extensions.len());
        object.insert("type".into(), Value::from(self.type_uri.as_ref()));
        object.insert("title".into(), Value::from(self.title.as_ref()));
        object.insert("status".into(), Value::from(self.status.as_u16()));
        if let Some(detail) = &self.detail {
            object.insert("detail".into(), Value::from(detail.as_ref()));
        }
        for (name, value) in &self.extensions {
            object.insert(name.clone(), value.clone());
        }
        // Serialising a `Value` whose keys are strings cannot fail.
        Bytes::from(serde_json::to_vec(&Value::Object(object)).unwrap_or_default())
    }

    /// Renders the problem as an `application/problem+json` response whose body type is a
    /// layer's [`ResponseBody`].
    pub fn into_response<B>(self) -> Response<ResponseBody<B>> {
        self.into_response_with(ResponseBody::problem)
    }

    /// Renders the problem for a caller speaking `protocol`: problem+json, or a trailers-only
    /// gRPC response (see [`crate::grpc`]). For a problem answered many times, build a
    /// [`Rejection`](crate::Rejection) once instead.
    pub fn into_response_for<B>(self, protocol: Protocol) -> Response<ResponseBody<B>> {
        match protocol {
            Protocol::Http => self.into_response(),
            Protocol::Grpc => grpc::trailers_only(
                GrpcCode::for_rejection(self.status),
                self.grpc_message(),
                ResponseBody::empty(),
            ),
        }
    }

    /// The `grpc-message` of this problem: its detail (or title), percent-encoded.
    pub(crate) fn grpc_message(&self) -> HeaderValue {
        grpc::encode_message(self.detail.as_deref().unwrap_or(&self.title))
    }

    /// Renders the problem as an `application/problem+json` response with any body that can be
    /// built from bytes (for example `axum::body::Body` or `String`-free `Full<Bytes>`).
    pub fn into_response_with<T>(self, body: impl FnOnce(Bytes) -> T) -> Response<T> {
        problem_response(self.status, body(self.to_json()))
    }
}

/// A response with `status`, the problem media type and `body`: the one place both
/// [`Problem`] and [`Rejection`](crate::Rejection) build their responses.
pub(crate) fn problem_response<T>(status: StatusCode, body: T) -> Response<T> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_PROBLEM_JSON),
    );
    response
}

impl fmt::Debug for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Problem")
            .field("status", &self.status.as_u16())
            .field("type", &self.type_uri)
            .field("title", &self.title)
            .field("detail", &self.detail)
            .field("extensions", &self.extensions)
            .finish()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(problem: &Problem) -> Value {
        serde_json::from_slice(&problem.to_json()).expect("a problem is valid JSON")
    }

    #[test]
    fn defaults_follow_rfc_9457_about_blank() {
        let json = parse(&Problem::new(StatusCode::UNAUTHORIZED));
        assert_eq!(json["type"], "about:blank");
        assert_eq!(json["title"], "Unauthorized");
        assert_eq!(json["status"], 401);
        assert!(json.get("detail").is_none());
    }

    #[test]
    fn extensions_cannot_overwrite_standard_members() {
        let problem = Problem::new(StatusCode::FORBIDDEN)
            .with_detail("missing scope")
            .with_extension("status", 200)
            .with_extension("type", "x")
            .with_extension("required_scopes", vec!["orders:write"]);
        let json = parse(&problem);
        assert_eq!(json["status"], 403);
        assert_eq!(json["type"], "about:blank");
        assert_eq!(json["required_scopes"][0], "orders:write");
    }

    #[test]
    fn detail_is_escaped_as_json() {
        let problem = Problem::new(StatusCode::BAD_REQUEST).with_detail("quote \" and \n newline");
        assert_eq!(parse(&problem)["detail"], "quote \" and \n newline");
    }

    #[test]
    fn response_has_status_and_media_type() {
        let response: Response<ResponseBody<String>> =
            Problem::new(StatusCode::GATEWAY_TIMEOUT).into_response();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(response.headers()[CONTENT_TYPE], CONTENT_TYPE_PROBLEM_JSON);
    }

    #[test]
    fn display_is_status_title_and_detail() {
        let problem = Problem::new(StatusCode::GATEWAY_TIMEOUT).with_detail("after 2s");
        assert_eq!(problem.to_string(), "504 Gateway Timeout: after 2s");
    }
}
