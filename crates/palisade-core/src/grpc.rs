//! gRPC as a first-class host: rejections a gRPC client understands, status codes, and the
//! `grpc-message` encoding.
//!
//! A gRPC client reads the first byte of a response body as a frame header, so a problem+json
//! body (`{`) reaches it as `INTERNAL: invalid compression flag`. When the request is gRPC
//! (`content-type: application/grpc` or `application/grpc+...`, see [`Protocol::of`]), every
//! Palisade rejection is instead a *trailers-only* response: HTTP `200`,
//! `content-type: application/grpc`, a `grpc-status`, a percent-encoded `grpc-message` holding
//! the problem's detail (general words, never the request's text), no body, and the headers the
//! rejection carries (`www-authenticate`, `retry-after`).
//!
//! | HTTP status of the rejection | `grpc-status` |
//! |---|---|
//! | `400` malformed input (a bad `grpc-timeout`, a malformed credential header), `415`, `422` | `INVALID_ARGUMENT` (3) |
//! | `401` no or bad credential | `UNAUTHENTICATED` (16) |
//! | `403` missing scope | `PERMISSION_DENIED` (7) |
//! | `404`, `405` | `UNIMPLEMENTED` (12) |
//! | `408`, `504` timeout | `DEADLINE_EXCEEDED` (4) |
//! | `413` too large | `RESOURCE_EXHAUSTED` (8) |
//! | `429` rate limited | `RESOURCE_EXHAUSTED` (8), with `retry-after` and `grpc-retry-pushback-ms` (gRFC A6) |
//! | `503` breaker open, load shed | `UNAVAILABLE` (14), with `grpc-retry-pushback-ms` when it has a `retry-after` |
//! | other `4xx` | `FAILED_PRECONDITION` (9) |
//! | other `5xx` | `INTERNAL` (13) |
//!
//! [`Rejection`](crate::Rejection) renders both forms once, when a layer is built; layers pick
//! one per request with [`ResponseFuture::rejected`](crate::ResponseFuture::rejected).
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use palisade::{Problem, Protocol, Rejection, ResponseBody};
//! use palisade::grpc::GrpcCode;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("content-type", "application/grpc+proto".parse().unwrap());
//! assert_eq!(Protocol::of(&headers), Protocol::Grpc);
//!
//! let rejection = Rejection::new(&Problem::new(StatusCode::UNAUTHORIZED).with_detail("no API key: 100%"));
//! let response: http::Response<ResponseBody<String>> = rejection.to_response_for(Protocol::Grpc);
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.headers()["content-type"], "application/grpc");
//! assert_eq!(response.headers()["grpc-status"], "16");
//! assert_eq!(response.headers()["grpc-message"], "no API key: 100%25");
//! assert_eq!(GrpcCode::for_rejection(StatusCode::UNAUTHORIZED), GrpcCode::Unauthenticated);
//! ```
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::fmt;

use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};

/// The `grpc-status` header.
pub static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// The `grpc-message` header.
pub static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// The `grpc-retry-pushback-ms` header of gRFC A6: how long a client should wait before it
/// retries.
pub static GRPC_RETRY_PUSHBACK_MS: HeaderName = HeaderName::from_static("grpc-retry-pushback-ms");

/// What a caller speaks, which decides how a rejection is rendered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Plain HTTP: an RFC 9457 `application/problem+json` response.
    #[default]
    Http,
    /// gRPC: a trailers-only response with `grpc-status` and `grpc-message`.
    Grpc,
}

impl Protocol {
    /// The protocol of a request with `headers`: gRPC when its `content-type` is
    /// `application/grpc` or `application/grpc+<codec>` (`;` parameters allowed), else HTTP.
    #[inline]
    pub fn of(headers: &HeaderMap) -> Self {
        match headers.get(CONTENT_TYPE) {
            Some(value) if is_grpc_media_type(value.as_bytes()) => Self::Grpc,
            _ => Self::Http,
        }
    }
}

fn is_grpc_media_type(value: &[u8]) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    value
        .split_at_checked(GRPC.len())
        .is_some_and(|(head, rest)| {
            head.eq_ignore_ascii_case(GRPC)
                && matches!(rest.first(), None | Some(b'+' | b';' | b' '))
        })
}

/// A gRPC status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[allow(missing_docs, reason = "the codes are gRPC's, documented there")]
pub enum GrpcCode {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

const CODES: [GrpcCode; 17] = [
    GrpcCode::Ok,
    GrpcCode::Cancelled,
    GrpcCode::Unknown,
    GrpcCode::InvalidArgument,
    GrpcCode::DeadlineExceeded,
    GrpcCode::NotFound,
    GrpcCode::AlreadyExists,
    GrpcCode::PermissionDenied,
    GrpcCode::ResourceExhausted,
    GrpcCode::FailedPrecondition,
    GrpcCode::Aborted,
    GrpcCode::OutOfRange,
    GrpcCode::Unimplemented,
    GrpcCode::Internal,
    GrpcCode::Unavailable,
    GrpcCode::DataLoss,
    GrpcCode::Unauthenticated,
];

const DIGITS: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

impl GrpcCode {
    /// The code with this number, if it is one of gRPC's.
    pub fn from_u32(code: u32) -> Option<Self> {
        usize::try_from(code)
            .ok()
            .and_then(|i| CODES.get(i))
            .copied()
    }

    /// Parses a `grpc-status` value: decimal digits, no sign, no spaces.
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.is_empty() || value.len() > 2 || !value.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let number = value.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        if value.len() == 2 && value.first() == Some(&b'0') {
            return None;
        }
        Self::from_u32(number)
    }

    /// The code's number.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// The code's name, as gRPC spells it (`DEADLINE_EXCEEDED`).
    #[allow(clippy::indexing_slicing, reason = "one name per code, in code order")]
    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }

    /// The `grpc-status` header value.
    #[allow(clippy::indexing_slicing, reason = "one value per code, in code order")]
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(DIGITS[self as usize])
    }

    /// The code a Palisade rejection with `status` is answered with (the table in the
    /// [module documentation](self)).
    pub fn for_rejection(status: StatusCode) -> Self {
        match status.as_u16() {
            400 | 415 | 422 => Self::InvalidArgument,
            401 => Self::Unauthenticated,
            403 => Self::PermissionDenied,
            404 | 405 => Self::Unimplemented,
            408 | 504 => Self::DeadlineExceeded,
            413 | 429 => Self::ResourceExhausted,
            503 => Self::Unavailable,
            s if (400..500).contains(&s) => Self::FailedPrecondition,
            s if (500..600).contains(&s) => Self::Internal,
            _ => Self::Unknown,
        }
    }

    /// The code gRPC clients derive from the HTTP status of a response that is not a gRPC
    /// response (one a proxy wrote), per gRPC's "HTTP to gRPC status code mapping".
    pub fn from_http_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => Self::Internal,
            401 => Self::Unauthenticated,
            403 => Self::PermissionDenied,
            404 => Self::Unimplemented,
            429 | 502..=504 => Self::Unavailable,
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Percent-encodes `text` as a `grpc-message` value, as the gRPC HTTP/2 protocol says: bytes
/// from space to `~` stay, except `%`; every other byte of its UTF-8 form is `%XX` (upper-case
/// hex). The result is always a valid header value.
pub fn encode_message(text: &str) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(text.len());
    for &b in text.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b);
        } else {
            #[allow(clippy::indexing_slicing, reason = "a nibble indexes 16 digits")]
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
    // Only visible ASCII and spaces were written.
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Decodes a `grpc-message` value. A `%` not followed by two hex digits is kept as it is, and
/// bytes that do not form UTF-8 are replaced, as gRPC clients do: decoding never fails.
pub fn decode_message(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&byte) = value.get(i) {
        if byte == b'%'
            && let (Some(hi), Some(lo)) = (
                value.get(i + 1).and_then(|b| hex(*b)),
                value.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(byte);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A trailers-only gRPC response: `200`, `content-type: application/grpc`, the status and the
/// message, and `body` (which must be empty).
pub(crate) fn trailers_only<T>(code: GrpcCode, message: HeaderValue, body: T) -> Response<T> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(GRPC_STATUS.clone(), code.header_value());
    headers.insert(GRPC_MESSAGE.clone(), message);
    response
}

/// The `grpc-retry-pushback-ms` value for a `retry-after` of delta-seconds, if it is one.
pub(crate) fn pushback_for(retry_after: &HeaderValue) -> Option<HeaderValue> {
    let text = retry_after.to_str().ok()?.trim();
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: u64 = text.parse().ok()?;
    Some(HeaderValue::from(seconds.saturating_mul(1000)))
}

/// Fuzz harness: `grpc-message` decoding never panics, and encoding then decoding gives back
/// the text.
#[doc(hidden)]
pub fn fuzz_message(data: &[u8]) {
    let decoded = decode_message(data);
    let encoded = encode_message(&decoded);
    assert_eq!(decode_message(encoded.as_bytes()), decoded, "round trip");
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(decode_message(encode_message(text).as_bytes()), text);
    }
    let _ = GrpcCode::parse(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_media_types() {
        for (value, grpc) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpc+json", true),
            ("application/grpc; charset=utf-8", true),
            ("Application/GRPC", true),
            ("application/grpc-web", false),
            ("application/grpcx", false),
            ("application/json", false),
            ("text/plain", false),
            ("", false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, value.parse().unwrap());
            let expected = if grpc { Protocol::Grpc } else { Protocol::Http };
            assert_eq!(Protocol::of(&headers), expected, "{value:?}");
        }
        assert_eq!(Protocol::of(&HeaderMap::new()), Protocol::Http);
    }

    #[test]
    fn rejection_mapping_table() {
        for (status, code) in [
            (400, GrpcCode::InvalidArgument),
            (401, GrpcCode::Unauthenticated),
            (403, GrpcCode::PermissionDenied),
            (404, GrpcCode::Unimplemented),
            (408, GrpcCode::DeadlineExceeded),
            (413, GrpcCode::ResourceExhausted),
            (415, GrpcCode::InvalidArgument),
            (422, GrpcCode::InvalidArgument),
            (429, GrpcCode::ResourceExhausted),
            (409, GrpcCode::FailedPrecondition),
            (500, GrpcCode::Internal),
            (503, GrpcCode::Unavailable),
            (504, GrpcCode::DeadlineExceeded),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(GrpcCode::for_rejection(status), code, "{status}");
        }
    }

    #[test]
    fn codes_parse_and_print() {
        for code in CODES {
            let value = code.header_value();
            assert_eq!(GrpcCode::parse(value.as_bytes()), Some(code));
            assert_eq!(GrpcCode::from_u32(code.as_u32()), Some(code));
            assert_eq!(code.to_string(), code.name());
        }
        for bad in ["", "17", "-1", "+1", " 1", "01", "1a", "100", "4294967296"] {
            assert_eq!(GrpcCode::parse(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn message_encoding_follows_the_spec() {
        assert_eq!(encode_message("no key"), "no key");
        assert_eq!(encode_message("100% sure"), "100%25 sure");
        assert_eq!(encode_message("é\n"), "%C3%A9%0A");
        assert_eq!(decode_message(b"%C3%A9%0A"), "é\n");
        assert_eq!(decode_message(b"50%"), "50%");
        assert_eq!(decode_message(b"%zz%4"), "%zz%4");
        assert_eq!(decode_message(b"%FF"), "\u{fffd}");
    }

    #[test]
    fn pushback_from_delta_seconds_only() {
        let value = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(pushback_for(&value("2")).unwrap(), "2000");
        assert_eq!(pushback_for(&value("0")).unwrap(), "0");
        assert!(pushback_for(&value("Wed, 21 Oct 2015 07:28:00 GMT")).is_none());
        assert!(pushback_for(&value("-1")).is_none());
        assert!(pushback_for(&value("99999999999")).is_none());
    }

    proptest::proptest! {
        #[test]
        fn messages_round_trip(text in "\\PC*", bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let encoded = encode_message(&text);
            proptest::prop_assert!(encoded.as_bytes().iter().all(|b| (0x20..=0x7e).contains(b)));
            proptest::prop_assert_eq!(decode_message(encoded.as_bytes()), text);
            fuzz_message(&bytes);
        }
    }
}
