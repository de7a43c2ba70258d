//! `palisade-json` in the gateway: every `/v1` request with a body must be strict JSON within
//! the size and nesting limits before any handler or extractor sees it; `POST /v1/echo` then
//! decodes it with `ValidatedJson` (unknown fields and broken rules are `422`).

use palisade::BuildError;
use palisade::json::{JsonLayer, Limits};

/// The JSON layer: bodies of at most `max_body` bytes, nested at most `max_depth` deep, the
/// library's other limits.
///
/// # Errors
///
/// A zero `max_body` or `max_depth`.
pub fn layer(max_body: usize, max_depth: u32) -> Result<JsonLayer, BuildError> {
    JsonLayer::builder()
        .max_body(max_body)
        .limits(Limits::default().max_depth(max_depth))
        .build()
}
