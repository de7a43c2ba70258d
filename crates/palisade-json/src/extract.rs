//! axum extractors (feature `axum`): [`StrictJson<T>`] decodes strictly and refuses fields `T`
//! does not name; [`ValidatedJson<T>`] also runs `T`'s [`garde`] rules.
//!
//! Behind [`JsonLayer`](crate::JsonLayer) the body was already checked (the layer marks the
//! request [`Validated`]), so the extractor only decodes. Without the layer it does the same
//! checks itself with the default [`Limits`] and a 2 MiB body: `415` without a JSON media type,
//! `413` past the size, `400` for a document the strict scan rejects.
//!
//! A document of the wrong shape is `422`, with the JSON Pointer of the bad value:
//!
//! | reason           | when                                                      |
//! |------------------|-----------------------------------------------------------|
//! | `unknown_field`  | a member `T` does not name, even without `deny_unknown_fields` |
//! | `missing_field`  | a field `T` requires is absent (the detail names it)      |
//! | `wrong_type`     | a value of the wrong JSON type (the detail names what `T` expected) |
//! | `invalid_value`  | a value of the right type `T` does not accept (an unknown enum variant, a number out of range) |
//! | `validation`     | a [`garde`] rule failed (the detail is the rule's message) |
//!
//! serde's own messages quote the value they could not use (``invalid type: string "…"``), and
//! axum's rejections repeat them with Rust type names; these extractors keep only what `T` and
//! its rules say, never what the client sent.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use palisade_core::Problem;
use palisade_core::problem::types;
use serde::de::DeserializeOwned;

use crate::layer::{
    Validated, count, count_accepted, count_decode, invalid_json, is_json_media_type, unreadable,
    unsupported_media_type,
};
use crate::limits::{DEFAULT_MAX_BODY, Limits};
use crate::scan::{push_key, validate};

/// A JSON body decoded strictly into `T`; see the [module docs](self).
///
/// ```
/// use axum::{Router, routing::post};
/// use palisade::json::StrictJson;
///
/// #[derive(serde::Deserialize)]
/// struct Transfer {
///     to: String,
///     cents: u64,
/// }
///
/// async fn transfer(StrictJson(t): StrictJson<Transfer>) -> String {
///     format!("{} cents to {}", t.cents, t.to)
/// }
///
/// let app: Router = Router::new().route("/transfer", post(transfer));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StrictJson<T>(pub T);

/// A JSON body decoded strictly into `T`, then checked against `T`'s [`garde`] rules.
///
/// ```
/// use axum::{Router, routing::post};
/// use palisade::json::{ValidatedJson, garde::Validate};
///
/// #[derive(serde::Deserialize, Validate)]
/// struct SignUp {
///     #[garde(length(min = 3, max = 32), alphanumeric)]
///     name: String,
///     #[garde(range(min = 13))]
///     age: u8,
/// }
///
/// async fn sign_up(ValidatedJson(s): ValidatedJson<SignUp>) -> String {
///     format!("welcome, {}", s.name)
/// }
///
/// let app: Router = Router::new().route("/sign-up", post(sign_up));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ValidatedJson<T>(pub T);

/// Why [`StrictJson`] or [`ValidatedJson`] refused a request: a problem response.
#[derive(Debug)]
pub struct JsonRejection(Problem);

impl JsonRejection {
    /// The problem the response carries.
    pub fn problem(&self) -> &Problem {
        &self.0
    }

    /// The problem the response carries.
    pub fn into_problem(self) -> Problem {
        self.0
    }
}

impl std::fmt::Display for JsonRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.detail().unwrap_or(self.0.title()))
    }
}

impl std::error::Error for JsonRejection {}

impl IntoResponse for JsonRejection {
    fn into_response(self) -> Response {
        self.0.into_response_with(Body::from)
    }
}

impl From<Problem> for JsonRejection {
    fn from(problem: Problem) -> Self {
        Self(problem)
    }
}

impl<S, T> FromRequest<S> for StrictJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = JsonRejection;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read(request).await?;
        Ok(Self(decode(&bytes)?))
    }
}

impl<S, T> FromRequest<S> for ValidatedJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + garde::Validate,
    T::Context: Default,
{
    type Rejection = JsonRejection;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read(request).await?;
        let value: T = decode(&bytes)?;
        value
            .validate()
            .map_err(|report| validation_problem(&report))?;
        Ok(Self(value))
    }
}

/// The body, checked by the layer or here.
async fn read(request: Request) -> Result<Bytes, JsonRejection> {
    let checked = request.extensions().get::<Validated>().is_some();
    if !checked {
        if !request
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(is_json_media_type)
        {
            count("unsupported_media_type");
            return Err(unsupported_media_type().into());
        }
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > DEFAULT_MAX_BODY as u64) {
            return Err(too_large());
        }
    }
    let body = Limited::new(request.into_body(), DEFAULT_MAX_BODY);
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => return Err(too_large()),
        Err(_) => {
            count("unreadable");
            return Err(unreadable().into());
        }
    };
    if !checked {
        validate(&bytes, &Limits::default()).map_err(|rejected| invalid_json(&rejected))?;
        count_accepted();
    }
    Ok(bytes)
}

fn too_large() -> JsonRejection {
    count("too_large");
    crate::layer::too_large(DEFAULT_MAX_BODY).into()
}

/// Decodes a document the strict scan accepted into `T`, refusing members `T` ignores.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonRejection> {
    let mut unknown: Option<String> = None;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let mut record = |path: serde_ignored::Path<'_>| {
        if unknown.is_none() {
            let mut pointer = String::new();
            ignored_pointer(&path, &mut pointer);
            unknown = Some(pointer);
        }
    };
    let tracked = serde_ignored::Deserializer::new(&mut deserializer, &mut record);
    let decoded = serde_path_to_error::deserialize::<_, T>(tracked);
    let value = match decoded {
        Ok(value) => value,
        Err(error) => {
            let pointer = error_pointer(error.path());
            return Err(shape_problem(&error.into_inner().to_string(), pointer));
        }
    };
    if let Some(pointer) = unknown {
        count_decode("unknown_field");
        return Err(body_problem(
            "unknown_field",
            "the body has a member this endpoint does not accept".to_owned(),
            pointer,
        ));
    }
    Ok(value)
}

/// The pointer of a member `serde_ignored` saw ignored.
fn ignored_pointer(path: &serde_ignored::Path<'_>, out: &mut String) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            ignored_pointer(parent, out);
            out.push('/');
            out.push_str(&index.to_string());
        }
        Path::Map { parent, key } => {
            ignored_pointer(parent, out);
            push_key(out, key);
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_pointer(parent, out),
    }
}

/// The pointer of the value `serde_path_to_error` stopped at.
fn error_pointer(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                out.push('/');
                out.push_str(&index.to_string());
            }
            serde_path_to_error::Segment::Map { key } => push_key(&mut out, key),
            // An enum's variant is a key in externally tagged JSON.
            serde_path_to_error::Segment::Enum { variant } => push_key(&mut out, variant),
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    out
}

/// A `422` for a serde data error, in `T`'s words only.
///
/// serde's messages put what the client sent first and what `T` expected last (`invalid type:
/// string "…", expected u64`), so only the text after the *last* `, expected ` is kept: no
/// value the client wrote can follow it.
fn shape_problem(message: &str, pointer: String) -> JsonRejection {
    let expected = message
        .rsplit_once(", expected ")
        .map(|(_, expected)| expected)
        // serde_json appends ` at line L column C`.
        .map(|expected| expected.split(" at line ").next().unwrap_or(expected))
        .filter(|expected| expected.len() <= 200);
    let (reason, detail) = if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field)
    {
        // The field name is `T`'s, not the client's.
        (
            "missing_field",
            format!("the required field `{field}` is missing"),
        )
    } else if message.starts_with("invalid type:") {
        (
            "wrong_type",
            expected.map_or_else(
                || "a value has the wrong type".to_owned(),
                |expected| format!("a value has the wrong type: expected {expected}"),
            ),
        )
    } else if message.starts_with("invalid length") {
        (
            "invalid_value",
            expected.map_or_else(
                || "an array has the wrong length".to_owned(),
                |expected| format!("an array has the wrong length: expected {expected}"),
            ),
        )
    } else if message.starts_with("unknown field") {
        // `T` has `deny_unknown_fields`.
        (
            "unknown_field",
            "the body has a member this endpoint does not accept".to_owned(),
        )
    } else if message.starts_with("duplicate field") {
        // Only reachable through a `flatten` or `alias` collision: the scan refuses repeated
        // keys.
        ("invalid_value", "a field is given twice".to_owned())
    } else {
        // `invalid value`, `unknown variant`, number range errors and custom messages from
        // hand-written `Deserialize` impls (which may quote the value): `T`'s expectation at
        // most.
        (
            "invalid_value",
            expected.map_or_else(
                || "a value is not one this endpoint accepts".to_owned(),
                |expected| format!("a value is not one this endpoint accepts: expected {expected}"),
            ),
        )
    };
    count_decode(reason);
    body_problem(reason, detail, pointer)
}

/// A `422` for a `garde` report: its first failure, with the pointer and the rule's message.
fn validation_problem(report: &garde::Report) -> JsonRejection {
    count_decode("validation");
    let Some((path, error)) = report.iter().next() else {
        return body_problem(
            "validation",
            "the body does not satisfy this endpoint's rules".to_owned(),
            String::new(),
        );
    };
    let mut pointer = String::new();
    for (kind, component) in path.__iter().rev() {
        match kind {
            garde::error::Kind::Key | garde::error::Kind::Index => {
                push_key(&mut pointer, component);
            }
            garde::error::Kind::None => {}
        }
    }
    let mut message: String = error.message().chars().take(200).collect();
    if message.len() < error.message().len() {
        message.push('…');
    }
    let mut problem = body_problem("validation", message, pointer).into_problem();
    let failures = report.iter().count();
    if failures > 1 {
        problem = problem.with_extension("failures", failures);
    }
    JsonRejection(problem)
}

fn body_problem(reason: &'static str, detail: String, pointer: String) -> JsonRejection {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
        .with_type(types::INVALID_BODY)
        .with_title("Invalid body")
        .with_detail(detail)
        .with_extension("reason", reason)
        .with_extension("pointer", pointer)
        .into()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        id: u64,
        items: Vec<Item>,
        note: Option<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        sku: String,
        kind: Kind,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Book,
        Game,
    }

    fn rejected<T: DeserializeOwned + std::fmt::Debug>(json: &str) -> (String, String, String) {
        let problem = decode::<T>(json.as_bytes()).unwrap_err().into_problem();
        assert_eq!(problem.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let text = |name| {
            problem
                .extension(name)
                .and_then(|v| v.as_str())
                .unwrap()
                .to_owned()
        };
        (
            text("reason"),
            problem.detail().unwrap().to_owned(),
            text("pointer"),
        )
    }

    #[test]
    fn strict_decoding_cases() {
        let ok: Order = decode(br#"{"id":1,"items":[{"sku":"a","kind":"book"}]}"#).unwrap();
        assert_eq!(ok.id, 1);
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                r#"{"id":1,"items":[],"admin":true}"#,
                "unknown_field",
                "/admin",
                "member",
            ),
            (
                r#"{"id":1,"items":[{"sku":"a","kind":"book","price":0}]}"#,
                "unknown_field",
                "/items/0/price",
                "member",
            ),
            (r#"{"items":[]}"#, "missing_field", "", "`id`"),
            (
                r#"{"id":"SECRET","items":[]}"#,
                "wrong_type",
                "/id",
                "expected u64",
            ),
            (
                r#"{"id":1,"items":[{"sku":"a","kind":"SECRET"}]}"#,
                "invalid_value",
                "/items/0/kind",
                "expected `book` or `game`",
            ),
            (
                r#"{"id":-1,"items":[]}"#,
                "invalid_value",
                "/id",
                "expected u64",
            ),
        ];
        for (json, reason, pointer, detail) in cases {
            let (got_reason, got_detail, got_pointer) = rejected::<Order>(json);
            assert_eq!(got_reason, *reason, "{json}");
            assert_eq!(got_pointer, *pointer, "{json}");
            assert!(got_detail.contains(detail), "{json}: {got_detail}");
            assert!(!got_detail.contains("SECRET"), "{json}: {got_detail}");
            assert!(!got_detail.contains("Order"), "{json}: {got_detail}");
        }
    }

    #[test]
    fn maps_and_values_accept_any_member() {
        let map: BTreeMap<String, u8> = decode(br#"{"x":1,"y":2}"#).unwrap();
        assert_eq!(map.len(), 2);
        let value: serde_json::Value = decode(br#"{"x":{"y":[1]}}"#).unwrap();
        assert_eq!(value["x"]["y"][0], 1);
    }

    #[test]
    fn a_client_string_cannot_forge_the_expectation() {
        let (_, detail, _) =
            rejected::<Order>(r#"{"id":"x, expected SECRET at line 1","items":[]}"#);
        assert_eq!(detail, "a value has the wrong type: expected u64");
    }

    #[derive(Debug, serde::Deserialize, garde::Validate)]
    #[allow(dead_code)]
    struct SignUp {
        #[garde(length(min = 3))]
        name: String,
        #[garde(dive)]
        pets: Vec<Pet>,
    }

    #[derive(Debug, serde::Deserialize, garde::Validate)]
    #[allow(dead_code)]
    struct Pet {
        #[garde(range(max = 30))]
        age: u8,
    }

    #[test]
    fn garde_failures_point_at_the_field() {
        let value: SignUp = decode(br#"{"name":"ada","pets":[{"age":3},{"age":99}]}"#).unwrap();
        let report = garde::Validate::validate(&value).unwrap_err();
        let problem = validation_problem(&report).into_problem();
        assert_eq!(problem.extension("pointer").unwrap(), "/pets/1/age");
        assert_eq!(problem.extension("reason").unwrap(), "validation");
        assert!(problem.detail().unwrap().contains("30"), "{problem:?}");
    }
}
