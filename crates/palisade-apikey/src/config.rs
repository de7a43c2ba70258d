//! The layer's settings as an operator writes them (feature `serde`).

use std::path::PathBuf;

use http::header::HeaderName;
use palisade_core::BuildError;
use serde::Deserialize;

use crate::format::KeyFormat;
use crate::{ApiKeyLayer, KeySources, KeyStore};

/// The settings of an [`ApiKeyLayer`] in a configuration file (TOML, JSON, YAML).
///
/// ```
/// use palisade::apikey::ApiKeyConfig;
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("keys.txt");
/// # std::fs::write(&path, "sha256:62ec36c714dc42161581dd5a82c698b6a7e7c14459cc95e5a24ea65cdd38228b principal=demo\n").unwrap();
///
/// let config: ApiKeyConfig = serde_json::from_value(serde_json::json!({
///     "key_file": path,
///     "header": "x-partner-key",
///     "prefixes": ["pal_live"],
///     "realm": "partner api",
/// })).unwrap();
/// let layer = config.build().unwrap();
/// assert_eq!(layer.store().load().len(), 1);
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The key file: one `sha256:<hex> principal=…` line per key.
    pub key_file: PathBuf,
    /// Whether `Authorization: Bearer <key>` is read (default `true`).
    #[serde(default = "yes")]
    pub bearer: bool,
    /// The key header (default `x-api-key`); an empty string reads none.
    #[serde(default = "default_header")]
    pub header: String,
    /// A query parameter to read keys from (default: none; discouraged).
    #[serde(default)]
    pub query_parameter: Option<String>,
    /// The accepted key prefixes (default: any well-formed prefix).
    #[serde(default)]
    pub prefixes: Option<Vec<String>>,
    /// Whether opaque keys not in Palisade's format are accepted (default `false`).
    #[serde(default)]
    pub accept_legacy_keys: bool,
    /// The realm named in `WWW-Authenticate` (default `api`).
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Whether a key file with no usable key is accepted, at start and on reload (default
    /// `false`: such a file would refuse every client, so it is an error).
    #[serde(default)]
    pub allow_empty_key_file: bool,
}

fn yes() -> bool {
    true
}

fn default_header() -> String {
    "x-api-key".to_owned()
}

fn default_realm() -> String {
    "api".to_owned()
}

impl ApiKeyConfig {
    /// Loads the key file and builds the layer.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming the setting: `key_file` (unreadable, or the bad line), `header`,
    /// `prefixes`, `sources` or `realm`.
    pub fn build(&self) -> Result<ApiKeyLayer, BuildError> {
        let store = if self.allow_empty_key_file {
            let store = KeyStore::new(crate::KeySet::new()).allow_empty(true);
            store.reload_from_file(&self.key_file).map(|_| store)
        } else {
            KeyStore::from_file(&self.key_file)
        }
        .map_err(|err| BuildError::new("key_file", err.to_string()))?;
        let header = if self.header.is_empty() {
            None
        } else {
            Some(HeaderName::try_from(self.header.as_str()).map_err(|_| {
                BuildError::new("header", format!("{:?} is not a header name", self.header))
            })?)
        };
        let mut sources = KeySources::default()
            .with_bearer(self.bearer)
            .with_header(header);
        if let Some(name) = &self.query_parameter {
            sources = sources.with_query_parameter(name);
        }
        let format = match &self.prefixes {
            Some(prefixes) if prefixes.is_empty() => {
                return Err(BuildError::new(
                    "prefixes",
                    "an empty list accepts no key: name the prefixes, or leave it out for any",
                ));
            }
            Some(prefixes) => KeyFormat::with_prefixes(prefixes.iter().map(String::as_str))
                .map_err(|err| BuildError::new("prefixes", err.to_string()))?,
            None => KeyFormat::default(),
        };
        ApiKeyLayer::builder(store)
            .sources(sources)
            .format(format)
            .accept_legacy_keys(self.accept_legacy_keys)
            .realm(self.realm.clone())
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.txt");
        std::fs::write(
            &good,
            "sha256:62ec36c714dc42161581dd5a82c698b6a7e7c14459cc95e5a24ea65cdd38228b principal=a\n",
        )
        .unwrap();
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "# no keys yet\n").unwrap();
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, "\nplaintext principal=a\n").unwrap();
        let cases = [
            (
                serde_json::json!({ "key_file": dir.path().join("missing.txt") }),
                "invalid `key_file`: cannot read",
            ),
            (
                serde_json::json!({ "key_file": bad }),
                "invalid `key_file`: invalid key file: line 2",
            ),
            (
                serde_json::json!({ "key_file": empty }),
                "invalid `key_file`: the key file holds no key",
            ),
            (
                serde_json::json!({ "key_file": good, "header": "bad header" }),
                "invalid `header`",
            ),
            (
                serde_json::json!({ "key_file": good, "prefixes": ["Live"] }),
                "invalid `prefixes`",
            ),
            (
                serde_json::json!({ "key_file": good, "prefixes": [] }),
                "invalid `prefixes`: an empty list accepts no key",
            ),
            (
                serde_json::json!({ "key_file": good, "bearer": false, "header": "" }),
                "invalid `sources`",
            ),
            (
                serde_json::json!({ "key_file": good, "realm": "a\"b" }),
                "invalid `realm`",
            ),
        ];
        for (json, expected) in cases {
            let config: ApiKeyConfig = serde_json::from_value(json.clone()).unwrap();
            let err = config.build().unwrap_err().to_string();
            assert!(err.starts_with(expected), "{json}: {err}");
        }
        let allowed: ApiKeyConfig = serde_json::from_value(
            serde_json::json!({ "key_file": empty, "allow_empty_key_file": true }),
        )
        .unwrap();
        assert!(allowed.build().unwrap().store().load().is_empty());
        let unknown = serde_json::from_value::<ApiKeyConfig>(
            serde_json::json!({ "key_file": good, "keys": [] }),
        );
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `keys`")
        );
    }
}
