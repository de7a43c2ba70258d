use std::time::Duration;

use http::StatusCode;
use http::header::HeaderName;
use serde::Deserialize;

use super::HttpTimeoutLayer;
use crate::{DeadlineFormat, DeadlineHeader};
use palisade_core::BuildError;

/// The settings of an [`HttpTimeoutLayer`] as an operator writes them (TOML, JSON, YAML).
///
/// ```
/// use palisade::timeout::{HttpTimeoutConfig, HttpTimeoutLayer};
///
/// let config: HttpTimeoutConfig = serde_json::from_str(r#"{
///     "timeout": "2s",
///     "status": 503,
///     "inbound_deadline": { "header": "grpc-timeout", "format": "grpc", "cap": "30s" }
/// }"#).unwrap();
/// let layer = HttpTimeoutLayer::try_from(config).unwrap();
/// assert_eq!(layer.timeout(), std::time::Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTimeoutConfig {
    /// The timeout of a request without a deadline header, e.g. `"2s"`.
    #[serde(with = "palisade_core::serde_duration")]
    pub timeout: Duration,
    /// 504 (the default), 503 or 408.
    #[serde(default = "default_status")]
    pub status: u16,
    /// The caller's deadline header to honour, if any.
    #[serde(default)]
    pub inbound_deadline: Option<InboundDeadlineConfig>,
}

/// The inbound deadline header of an [`HttpTimeoutConfig`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundDeadlineConfig {
    /// The header name, e.g. `"grpc-timeout"`.
    pub header: String,
    /// `"grpc"` or `"milliseconds"`.
    pub format: DeadlineFormat,
    /// The most a caller may ask for, e.g. `"30s"`.
    #[serde(with = "palisade_core::serde_duration")]
    pub cap: Duration,
}

fn default_status() -> u16 {
    504
}

impl TryFrom<HttpTimeoutConfig> for HttpTimeoutLayer {
    type Error = BuildError;

    fn try_from(config: HttpTimeoutConfig) -> Result<Self, Self::Error> {
        let status = StatusCode::from_u16(config.status).map_err(|_| {
            BuildError::new("status", format!("{} is not an HTTP status", config.status))
        })?;
        let mut builder = HttpTimeoutLayer::builder(config.timeout).status(status);
        if let Some(inbound) = config.inbound_deadline {
            let name = HeaderName::try_from(inbound.header.as_str()).map_err(|_| {
                BuildError::new(
                    "inbound_deadline.header",
                    format!("{:?} is not a header name", inbound.header),
                )
            })?;
            builder =
                builder.inbound_deadline(DeadlineHeader::new(name, inbound.format), inbound.cap);
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(json: &str) -> Result<HttpTimeoutLayer, String> {
        let config: HttpTimeoutConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        HttpTimeoutLayer::try_from(config).map_err(|e| e.to_string())
    }

    #[test]
    fn config_errors_name_the_field() {
        let cases = [
            (r#"{"timeout":"0s"}"#, "invalid `timeout`"),
            (r#"{"timeout":"2s","status":500}"#, "invalid `status`"),
            (r#"{"timeout":"2s","status":1000}"#, "invalid `status`"),
            (r#"{"timeout":"soon"}"#, "invalid duration \"soon\""),
            (r#"{"timeout":"2s","extra":1}"#, "unknown field `extra`"),
            (
                r#"{"timeout":"2s","inbound_deadline":{"header":"bad header","format":"grpc","cap":"1s"}}"#,
                "invalid `inbound_deadline.header`",
            ),
            (
                r#"{"timeout":"2s","inbound_deadline":{"header":"x-t","format":"grpc","cap":"0s"}}"#,
                "invalid `inbound_deadline.cap`",
            ),
            (
                r#"{"timeout":"2s","inbound_deadline":{"header":"x-t","format":"hours","cap":"1s"}}"#,
                "unknown variant `hours`",
            ),
        ];
        for (json, expected) in cases {
            let err = load(json).expect_err(json);
            assert!(err.contains(expected), "{json}: {err}");
        }
        assert!(load(r#"{"timeout":"250ms","status":408}"#).is_ok());
    }
}
