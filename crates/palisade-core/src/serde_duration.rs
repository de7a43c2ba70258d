//! Human-readable durations for configuration files: `"250ms"`, `"2s"`, `"1m 30s"`.
//!
//! Use it with `#[serde(with = "palisade::serde_duration")]` on a `Duration` field, or
//! [`option`] on an `Option<Duration>`.
//!
//! ```
//! use std::time::Duration;
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     #[serde(with = "palisade::serde_duration")]
//!     timeout: Duration,
//! }
//!
//! let config: Config = serde_json::from_str(r#"{ "timeout": "250ms" }"#).unwrap();
//! assert_eq!(config.timeout, Duration::from_millis(250));
//! assert!(serde_json::from_str::<Config>(r#"{ "timeout": "soon" }"#).is_err());
//! ```
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Deserialises a duration from a string such as `"250ms"` or `"1m 30s"`.
///
/// # Errors
///
/// When the value is not a string or not a duration; the message names the value.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|err| {
        serde::de::Error::custom(format_args!(
            "invalid duration {text:?} ({err}); write it like \"250ms\", \"2s\" or \"1m 30s\""
        ))
    })
}

/// The same for `Option<Duration>` fields.
pub mod option {
    use super::{Deserialize, Deserializer, Duration};

    /// Deserialises an optional duration.
    ///
    /// # Errors
    ///
    /// As [`deserialize`](super::deserialize).
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super")] Duration);
        Ok(Option::<Wrap>::deserialize(deserializer)?.map(|Wrap(d)| d))
    }
}
