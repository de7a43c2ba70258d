//! Tiers as an operator writes them (feature `serde`).

use http::{HeaderName, Method};
use palisade_core::BuildError;
use serde::Deserialize;

use crate::key::KeyBy;
use crate::layer::{Keyless, RateLimitBuilder, RateLimitLayer, Tier};
use crate::quota::Quota;

/// One tier in a configuration file (TOML, JSON, YAML).
///
/// `key` names what the tier counts by, as a string: `ip` (the client's network, `/32` and
/// `/64`), `network:<v4 prefix>/<v6 prefix>` (`network:24/48`), `identity` (the
/// authenticated caller), `global`, `route`, `method`, `header:<name>`, or several joined by
/// `+` (`identity+route`). Without it, a tier named `ip` counts by `ip`, one named `caller`
/// by `identity`, one named `global` by `global`; any other name must say.
///
/// ```
/// use palisade::ratelimit::TierConfig;
///
/// let tiers: std::collections::BTreeMap<String, TierConfig> = serde_json::from_value(
///     serde_json::json!({
///         "ip": { "quota": "20/s burst 40" },
///         "export": { "quota": "50/min", "key": "identity", "route": "/export",
///                     "method": "POST", "cost": 5 },
///     }),
/// ).unwrap();
/// let layer = TierConfig::layer(&tiers).unwrap();
/// # let _ = layer;
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// The quota, `"20/s burst 40"`.
    pub quota: Quota,
    /// What the tier counts by (see above).
    #[serde(default)]
    pub key: Option<String>,
    /// Only requests to this route (the matched template under axum, else the path).
    #[serde(default)]
    pub route: Option<String>,
    /// Only requests with this method (with `route`).
    #[serde(default)]
    pub method: Option<String>,
    /// What one request costs (default 1).
    #[serde(default)]
    pub cost: Option<u32>,
    /// Only log and count what it would refuse (default `false`).
    #[serde(default)]
    pub shadow: bool,
    /// What happens to requests without the tier's key (default `shared`).
    #[serde(default)]
    pub keyless: Keyless,
}

impl TierConfig {
    /// The tier named `name`.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming `key` or `method` when it is not understood, or any field the
    /// layer checks when it is built.
    pub fn tier(&self, name: &str) -> Result<Tier, BuildError> {
        let key = match (&self.key, name) {
            (Some(key), _) => parse_key(key)?,
            (None, "ip") => KeyBy::client_ip(),
            (None, "caller") => KeyBy::identity(),
            (None, "global") => KeyBy::global(),
            (None, _) => {
                return Err(BuildError::new(
                    "key",
                    "name what the tier counts by (ip, identity, global, route, method, header:<name>)",
                ));
            }
        };
        let mut tier = Tier::new(name, self.quota, key)
            .shadow(self.shadow)
            .keyless(self.keyless)
            .cost(self.cost.unwrap_or(1));
        match (&self.route, &self.method) {
            (Some(route), method) => {
                let method = method
                    .as_deref()
                    .map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()))
                    .transpose()
                    .map_err(|_| BuildError::new("method", "not an HTTP method"))?;
                tier = tier.route(method, route.clone());
            }
            (None, Some(_)) => {
                return Err(BuildError::new(
                    "method",
                    "a method limits a route: set `route` too",
                ));
            }
            (None, None) => {}
        }
        Ok(tier)
    }

    /// Whether the tier counts by the authenticated caller, so it belongs after
    /// authentication.
    pub fn needs_identity(&self, name: &str) -> bool {
        match &self.key {
            Some(key) => key.split('+').any(|part| part.trim() == "identity"),
            None => name == "caller",
        }
    }

    /// A layer of `tiers` (by name); no tier at all is an [`unlimited`](RateLimitLayer::unlimited)
    /// layer.
    ///
    /// # Errors
    ///
    /// The first [`BuildError`] of a tier, its field prefixed with the tier's name.
    pub fn layer<'a>(
        tiers: impl IntoIterator<Item = (&'a String, &'a Self)>,
    ) -> Result<RateLimitLayer, BuildError> {
        Self::layer_with(tiers, RateLimitLayer::builder())
    }

    /// [`layer`](Self::layer) on a builder carrying other settings (capacity, headers).
    ///
    /// # Errors
    ///
    /// As [`layer`](Self::layer).
    pub fn layer_with<'a>(
        tiers: impl IntoIterator<Item = (&'a String, &'a Self)>,
        mut builder: RateLimitBuilder,
    ) -> Result<RateLimitLayer, BuildError> {
        let mut any = false;
        for (name, config) in tiers {
            any = true;
            let tier = config.tier(name).map_err(|e| e.within(name))?;
            builder = builder.tier(tier);
        }
        if !any {
            return Ok(RateLimitLayer::unlimited());
        }
        builder.build()
    }
}

fn parse_key(text: &str) -> Result<KeyBy, BuildError> {
    let bad = || {
        BuildError::new(
            "key",
            "one of ip, network:<v4>/<v6>, identity, global, route, method, header:<name>, joined by +",
        )
    };
    let mut key: Option<KeyBy> = None;
    for part in text.split('+').map(str::trim) {
        let one = match part {
            "ip" => KeyBy::client_ip(),
            "identity" => KeyBy::identity(),
            "global" => KeyBy::global(),
            "route" => KeyBy::route(),
            "method" => KeyBy::method(),
            _ => {
                if let Some(name) = part.strip_prefix("header:") {
                    KeyBy::header(HeaderName::try_from(name.trim()).map_err(|_| bad())?)
                } else if let Some(prefixes) = part.strip_prefix("network:") {
                    let (v4, v6) = prefixes.split_once('/').ok_or_else(bad)?;
                    let v4 = v4.trim().parse().map_err(|_| bad())?;
                    let v6 = v6.trim().parse().map_err(|_| bad())?;
                    KeyBy::client_network(v4, v6)
                } else {
                    return Err(bad());
                }
            }
        };
        key = Some(match key {
            Some(key) => key.and(one),
            None => one,
        });
    }
    key.ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_bad_ones_say_so() {
        for key in [
            "ip",
            "identity+route",
            "header:x-tenant",
            "network:24/48",
            "global",
        ] {
            assert!(parse_key(key).is_ok(), "{key}");
        }
        for key in ["", "ip+", "header:", "network:33", "network:a/b", "cookie"] {
            assert_eq!(parse_key(key).unwrap_err().field(), "key", "{key:?}");
        }
    }
}
