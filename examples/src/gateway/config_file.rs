//! `--config FILE` (`PALISADE_CONFIG`): the gateway's settings from a TOML file, read by
//! `palisade::config` (so the same keys mean the same in every Palisade stack), over the
//! embedded defaults and under the flags: a flag or environment variable given explicitly wins.
//!
//! ```toml
//! [server]
//! timeout = "2s"
//! trusted_proxies = ["10.0.0.0/8"]
//!
//! [server.rate_limit.ip]
//! quota = "20/s burst 40"
//!
//! [server.rate_limit.caller]
//! quota = "600/min burst 100"
//!
//! [server.api_keys]
//! key_file = "keys.txt"
//!
//! [client]
//! attempt_timeout = "1s"
//!
//! [client.retry]
//! max_attempts = 3
//! ```
//!
//! A file that does not parse, a key the gateway does not know, or a value that does not fit is
//! refused with the key and its line, and the gateway exits with 78 (see [`super::flags`]).

use std::path::Path;

use palisade::TrustedProxies;
use palisade::breaker::BreakerConfig;
use palisade::config::Config;
use palisade::retry::RetryConfig;

use super::flags::{ConfigError, Flags};

/// What the file sets that the flags have no place for.
#[derive(Debug, Default)]
pub struct FromFile {
    /// `[server] trusted_proxies`, unless `--trusted-proxies` was given.
    pub trusted_proxies: Option<TrustedProxies>,
    /// `[client.retry]`.
    pub retry: Option<RetryConfig>,
    /// `[client.breaker]`.
    pub breaker: Option<BreakerConfig>,
}

/// Reads the file at `path` into `flags`, for every setting whose flag was not given.
///
/// # Errors
///
/// [`ConfigError`] naming the file, the key and its line.
pub fn apply(flags: &mut Flags, path: &Path) -> Result<FromFile, ConfigError> {
    let fail = |message: String| {
        ConfigError::new(format!("invalid --config {}: {message}", path.display()))
    };
    let text = std::fs::read_to_string(path)
        .map_err(|err| fail(format!("cannot read it: {}", err.kind())))?;
    // `from_file` takes a relative key file from the file's directory.
    let config = Config::from_file(path).map_err(|err| fail(err.to_string()))?;
    // Which keys the file wrote (the parsed settings hold defaults for the rest).
    let table: toml::Table = text
        .parse()
        .map_err(|err: toml::de::Error| fail(err.to_string()))?;
    let has = |path: &[&str]| {
        let mut value: Option<&toml::Value> = None;
        let mut table = Some(&table);
        for key in path {
            value = table.and_then(|t| t.get(*key));
            table = value.and_then(toml::Value::as_table);
        }
        value.is_some()
    };
    let given = |flag: &str| flags.explicit.contains(flag);
    // Keys `palisade::config` knows but the gateway has no use for are refused, not ignored.
    for (name, tier) in &config.server.rate_limit {
        if !matches!(name.as_str(), "ip" | "caller" | "echo") {
            return Err(fail(format!(
                "`server.rate_limit.{name}`: the gateway has the tiers ip, caller and echo"
            )));
        }
        for key in ["key", "route", "method", "cost", "shadow", "keyless"] {
            if has(&["server", "rate_limit", name, key]) {
                return Err(fail(format!(
                    "`server.rate_limit.{name}.{key}`: the gateway sets only each tier's quota"
                )));
            }
        }
        let quota = tier.quota;
        match name.as_str() {
            "ip" if !given("rate_limit_ip") => flags.rate_limit_ip = quota,
            "caller" if !given("rate_limit_caller") => flags.rate_limit_caller = quota,
            "echo" if !given("rate_limit_echo") => flags.rate_limit_echo = quota,
            _ => {}
        }
    }
    if config.server.continue_traces != palisade::config::ContinueTraces::Anyone {
        return Err(fail(
            "`server.continue_traces`: the gateway continues every caller's trace (\"anyone\")"
                .to_owned(),
        ));
    }
    if has(&["server", "timeout"]) && !given("timeout") {
        flags.timeout = config.server.timeout;
    }
    // A file is a real deployment's: it names its credentials, and the demo's (a published key,
    // a signing key in this repository) are never the quiet default of one that forgot them.
    let credentials = config.server.api_keys.is_some()
        || config.server.jwt.is_some()
        || given("api_keys")
        || given("oidc_issuer");
    if !credentials && !flags.demo {
        return Err(fail(
            "it names no credentials: add [server.api_keys] or [server.jwt] (or give --demo to \
             run with the demo's)"
                .to_owned(),
        ));
    }
    let mut from_file = FromFile::default();
    if has(&["server", "trusted_proxies"]) && !given("trusted_proxies") {
        from_file.trusted_proxies = Some(config.server.trusted_proxies.clone());
    }
    if let Some(keys) = &config.server.api_keys {
        for key in [
            "bearer",
            "header",
            "query_parameter",
            "prefixes",
            "accept_legacy_keys",
            "realm",
        ] {
            if has(&["server", "api_keys", key]) {
                return Err(fail(format!(
                    "`server.api_keys.{key}`: the gateway reads only key_file and allow_empty_key_file"
                )));
            }
        }
        if !given("api_keys") {
            flags.api_keys = Some(keys.key_file.clone());
            flags.allow_empty_key_file |= keys.allow_empty_key_file;
        }
    }
    if let Some(jwt) = &config.server.jwt {
        for key in [
            "jwks_url",
            "types",
            "leeway",
            "cookie",
            "allow_http",
            "jwks",
        ] {
            if has(&["server", "jwt", key]) {
                return Err(fail(format!(
                    "`server.jwt.{key}`: the gateway reads only issuer and audiences"
                )));
            }
        }
        // Exactly one: an empty list does not mean the demo's audience.
        if jwt.audiences.len() != 1 && !given("jwt_audience") {
            return Err(fail(
                "`server.jwt.audiences`: the gateway needs exactly one audience".to_owned(),
            ));
        }
        if jwt.issuer.is_none() {
            return Err(fail(
                "`server.jwt.issuer`: the gateway needs the issuer (its keys are found from it)"
                    .to_owned(),
            ));
        }
        if !given("oidc_issuer") {
            flags.oidc_issuer.clone_from(&jwt.issuer);
        }
        if let (Some(audience), false) = (jwt.audiences.first(), given("jwt_audience")) {
            flags.jwt_audience.clone_from(audience);
        }
    }
    if has(&["client", "attempt_timeout"]) && !given("upstream_timeout") {
        flags.upstream_timeout = config.client.attempt_timeout;
    }
    // The client stack is checked whole, as palisade::config builds it.
    config.client.stack().map_err(|err| fail(err.to_string()))?;
    if has(&["client", "retry"]) {
        from_file.retry = Some(config.client.retry.clone());
    }
    if has(&["client", "breaker"]) {
        let mut breaker = config.client.breaker.clone();
        if given("breaker_wait") {
            breaker.wait = Some(flags.breaker_wait);
        }
        from_file.breaker = Some(breaker);
    }
    Ok(from_file)
}
