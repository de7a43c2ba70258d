//! A JWT layer as an operator writes it (feature `serde`).

use std::time::Duration;

use palisade_core::BuildError;
use serde::Deserialize;

use crate::jwks::{JwksPolicy, JwksSource};
use crate::layer::JwtLayer;
use crate::rules::Rules;
use crate::sources::TokenSources;

/// The settings of a [`JwtLayer`] with fetched keys in a configuration file (TOML, JSON, YAML):
/// an OIDC `issuer` whose keys are found by discovery, or a `jwks_url` (then `issuer` is only
/// the `iss` required). A `jwks_url` without `issuer` is refused unless `any_issuer = true`
/// says so: a key set shared by several tenants (an identity provider's common keys) signs tokens of every
/// tenant.
///
/// ```
/// use palisade::jwt::JwtConfig;
///
/// let config: JwtConfig = serde_json::from_value(serde_json::json!({
///     "issuer": "https://login.example.com/tenant",
///     "audiences": ["https://api.example.com"],
///     "types": ["at+jwt"],
///     "leeway": "30s",
///     "cookie": "session",
/// })).unwrap();
/// let layer = config.build().unwrap(); // keys are fetched when first needed
/// # let _ = layer;
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The issuer: its `iss`, and, without `jwks_url`, where OIDC discovery finds its keys.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The JWK set's URL, instead of discovery.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// With `jwks_url` and no `issuer`: accept tokens of any issuer the keys sign for (default
    /// `false`, which refuses that configuration).
    #[serde(default)]
    pub any_issuer: bool,
    /// Audiences of which `aud` must name one (empty: a token with `aud` is refused).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Accepted `typ` values, e.g. `["at+jwt"]` (empty: not checked).
    #[serde(default)]
    pub types: Vec<String>,
    /// Clock skew tolerated (default 60 s).
    #[serde(default, with = "palisade_core::serde_duration::option")]
    pub leeway: Option<Duration>,
    /// A cookie tokens are read from as well (browser sessions).
    #[serde(default)]
    pub cookie: Option<String>,
    /// Plain-HTTP key endpoints beyond loopback (default `false`): keys fetched without TLS
    /// can be replaced by anyone on the path.
    #[serde(default)]
    pub allow_http: bool,
    /// How keys are cached and refreshed (defaults otherwise).
    #[serde(default)]
    pub jwks: Option<JwksPolicy>,
}

impl JwtConfig {
    /// The layer. No key is fetched here: the first request (or [`JwksSource::load`]) does.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming `issuer` (neither it nor `jwks_url` given, or `jwks_url` without
    /// it and without `any_issuer`), `jwks_url` (not HTTPS beyond loopback), `cookie`, or a
    /// field of the layer.
    pub fn build(&self) -> Result<JwtLayer, BuildError> {
        let builder = match (&self.jwks_url, &self.issuer) {
            (Some(_), None) if !self.any_issuer => {
                return Err(BuildError::new(
                    "issuer",
                    "give the issuer whose tokens are accepted (their `iss`), or \
                     `any_issuer = true` to accept every issuer these keys sign for",
                ));
            }
            (Some(url), _) => JwksSource::builder(url),
            (None, Some(issuer)) => JwksSource::oidc(issuer),
            (None, None) => {
                return Err(BuildError::new(
                    "issuer",
                    "give an OIDC issuer (keys by discovery) or a jwks_url",
                ));
            }
        };
        let mut builder = builder.allow_insecure_http(self.allow_http);
        if let Some(policy) = self.jwks.clone() {
            builder = builder.policy(policy);
        }
        let source = builder.build()?;
        let mut rules = Rules::new()
            .with_audiences(self.audiences.iter().cloned())
            .with_types(self.types.iter().cloned());
        if let Some(issuer) = &self.issuer {
            rules = rules.with_issuer(issuer.clone());
        }
        if let Some(leeway) = self.leeway {
            rules = rules.with_leeway(leeway);
        }
        let mut sources = TokenSources::new();
        if let Some(cookie) = &self.cookie {
            if cookie.is_empty() || !cookie.bytes().all(|b| b.is_ascii_graphic() && b != b'=') {
                return Err(BuildError::new(
                    "cookie",
                    "a cookie name is visible ASCII without `=`",
                ));
            }
            sources = sources.with_cookie(cookie.clone());
        }
        JwtLayer::builder()
            .keys(source, rules)
            .sources(sources)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> JwtConfig {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_jwks_url_without_an_issuer_is_refused_unless_any_issuer_says_so() {
        let error = config(serde_json::json!({ "jwks_url": "https://keys.example.com/jwks" }))
            .build()
            .unwrap_err();
        assert_eq!(error.field(), "issuer");
        assert!(error.to_string().contains("any_issuer"), "{error}");

        config(serde_json::json!({
            "jwks_url": "https://keys.example.com/jwks",
            "issuer": "https://login.example.com/tenant",
        }))
        .build()
        .unwrap();
        config(serde_json::json!({
            "jwks_url": "https://keys.example.com/jwks",
            "any_issuer": true,
        }))
        .build()
        .unwrap();
    }
}
