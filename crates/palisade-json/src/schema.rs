//! JSON Schema validation per route (feature `schema`), with the `jsonschema` crate.
//!
//! The schema is compiled once, when the layer is built: a schema that does not compile is a
//! [`BuildError`], never a request-time failure. Remote references are not fetched (the crate
//! is built without its HTTP and file resolvers), so a schema cannot make the server reach out.
//! A document that fails is `422` with the JSON Pointer of the first failing value and the
//! schema keyword it failed; the value itself and the schema's message about it are not
//! repeated, as they may quote the request.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use http::StatusCode;
use palisade_core::problem::types;
use palisade_core::{BuildError, Problem};

use crate::scan::push_key;

/// A compiled JSON Schema.
pub struct Schema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").finish_non_exhaustive()
    }
}

impl Schema {
    /// Compiles a schema (the draft is taken from `$schema`, else 2020-12).
    ///
    /// # Errors
    ///
    /// [`BuildError`] for the field `schema` when the schema is not a valid JSON Schema or
    /// refers to a document it cannot resolve locally.
    pub fn compile(schema: &serde_json::Value) -> Result<Self, BuildError> {
        jsonschema::validator_for(schema)
            .map(|validator| Self { validator })
            .map_err(|error| BuildError::new("schema", error.to_string()))
    }

    /// Checks a document the strict scan accepted.
    ///
    /// # Errors
    ///
    /// A `422` problem naming the pointer and the failed keyword.
    pub fn check(&self, bytes: &[u8]) -> Result<(), Problem> {
        let Ok(document) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            // The strict scan accepted these bytes, so serde_json parses them too (the fuzz
            // target `json_strict` holds both to that); answer as a schema failure at the root
            // rather than trust it blindly.
            return Err(schema_problem(String::new(), "type"));
        };
        match self.validator.validate(&document) {
            Ok(()) => Ok(()),
            Err(error) => {
                let mut pointer = String::new();
                for segment in error.instance_path() {
                    match segment {
                        jsonschema::paths::LocationSegment::Property(key) => {
                            push_key(&mut pointer, &key);
                        }
                        jsonschema::paths::LocationSegment::Index(index) => {
                            pointer.push('/');
                            pointer.push_str(&index.to_string());
                        }
                    }
                }
                let keyword = keyword(&error.schema_path().to_string());
                Err(schema_problem(pointer, &keyword))
            }
        }
    }
}

/// The last keyword of a schema location such as `/properties/name/minLength`: a keyword of
/// the schema, not of the request.
fn keyword(schema_path: &str) -> String {
    schema_path
        .rsplit('/')
        .find(|segment| !segment.is_empty() && !segment.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("schema")
        .replace("~1", "/")
        .replace("~0", "~")
}

fn schema_problem(pointer: String, keyword: &str) -> Problem {
    crate::layer::count("schema");
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
        .with_type(types::INVALID_BODY)
        .with_title("Invalid body")
        .with_detail(format!(
            "the value at the pointer does not satisfy the schema's `{keyword}`"
        ))
        .with_extension("reason", "schema")
        .with_extension("keyword", keyword)
        .with_extension("pointer", pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_is_the_last_named_segment() {
        assert_eq!(keyword("/properties/name/minLength"), "minLength");
        assert_eq!(keyword("/items/0/type"), "type");
        assert_eq!(keyword("/allOf/1"), "allOf");
        assert_eq!(keyword(""), "schema");
    }

    #[test]
    fn failures_name_pointer_and_keyword() {
        let schema = Schema::compile(&serde_json::json!({
            "type": "object",
            "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 3}}},
            "required": ["tags"],
        }))
        .unwrap();
        assert!(schema.check(br#"{"tags":["a","bc"]}"#).is_ok());
        let problem = schema
            .check(br#"{"tags":["a","secret-value"]}"#)
            .unwrap_err();
        assert_eq!(problem.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = String::from_utf8(problem.to_json().to_vec()).unwrap();
        assert!(body.contains(r#""pointer":"/tags/1""#), "{body}");
        assert!(body.contains(r#""keyword":"maxLength""#), "{body}");
        assert!(!body.contains("secret-value"), "{body}");
        let problem = schema.check(b"{}").unwrap_err();
        let body = String::from_utf8(problem.to_json().to_vec()).unwrap();
        assert!(body.contains(r#""keyword":"required""#), "{body}");
    }

    #[test]
    fn a_broken_schema_is_a_build_error() {
        let error = Schema::compile(&serde_json::json!({"type": 12})).unwrap_err();
        assert_eq!(error.field(), "schema");
    }

    #[test]
    fn remote_references_are_not_fetched() {
        let schema = serde_json::json!({"$ref": "http://127.0.0.1:9/schema.json"});
        assert!(Schema::compile(&schema).is_err());
    }
}
